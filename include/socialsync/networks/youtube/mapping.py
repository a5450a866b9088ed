"""YouTube raw pages -> unified records: validate each item, map it, quarantine what fails.

A channel is a profile, a video a post (``product_type`` ``short`` or ``video``) whose one media item
is the video with its best thumbnail, a comment thread's top-level comment a comment and each reply
a comment with ``parent_comment_id``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from socialsync.networks.base import PostStub, RawPage
from socialsync.networks.youtube import models as yt
from socialsync.transform.records import Comment, Follow, Media, NormalizedPage, Post, Profile

SHORT_MAX_S = 60  # a Short is at most a minute long


def _items(answer: Any) -> list[Any]:
    items = answer.get("items") if isinstance(answer, dict) else None
    return items if isinstance(items, list) else []


def post_stubs(payload: dict[str, Any]) -> list[PostStub]:
    """The videos of an uploads page, newest first, read leniently (a bad item is quarantined later).

    A video whose ``commentCount`` is absent (comments turned off, or hidden) has no comments to walk.
    """
    listed = [item.get("contentDetails", {}) for item in _items(payload.get("playlistItems"))
              if isinstance(item, dict) and isinstance(item.get("contentDetails"), dict)]
    details = {item["id"]: item for item in _items(payload.get("videos"))
               if isinstance(item, dict) and isinstance(item.get("id"), str)}
    stubs = []
    for entry in listed:
        video_id = entry.get("videoId")
        video = details.get(video_id) if isinstance(video_id, str) else None
        if video is None:
            continue  # private or deleted since it was listed: not a post of this pass
        snippet, statistics = _part(video, "snippet"), _part(video, "statistics")
        created = yt.parse_rfc3339(snippet.get("publishedAt") or entry.get("videoPublishedAt"))
        count = yt.count(statistics.get("commentCount"))
        stubs.append(PostStub(video_id, created if isinstance(created, datetime) else None,
                              count if isinstance(count, int) else None))
    return stubs


def _part(item: dict[str, Any], name: str) -> dict[str, Any]:
    part = item.get(name)
    return part if isinstance(part, dict) else {}


def normalize(page: RawPage) -> NormalizedPage:
    out = NormalizedPage()
    if page.kind == "profile":
        for item in _items(page.payload):
            _channel(item, out)
    elif page.kind == "posts":
        listed = {entry.get("contentDetails", {}).get("videoId") for entry in _items(page.payload.get("playlistItems"))
                  if isinstance(entry, dict) and isinstance(entry.get("contentDetails"), dict)}
        for item in _items(page.payload.get("videos")):
            if isinstance(item, dict) and item.get("id") in listed:
                _video(item, page.parent_id, out)
    elif page.kind == "comments":
        for thread in _items(page.payload.get("commentThreads")):
            _thread(thread, page.parent_id, out)
        replies = page.payload.get("replies")
        for answers in (replies.values() if isinstance(replies, dict) else []):
            for answer in answers if isinstance(answers, list) else []:
                for item in _items(answer):
                    _comment(item, page.parent_id, None, out)
    elif page.kind == "subscriptions":
        for item in _items(page.payload):
            _subscription(item, page.parent_id, out)
    else:
        raise ValueError(f"youtube has no raw page kind {page.kind!r}")
    return out


def _subscription(item: Any, channel_id: str, out: NormalizedPage) -> None:
    """A channel the profile subscribes to: the profile follows it."""
    subscription = out.validated(yt.Subscription, item, "subscription")
    if subscription is None:
        return
    out.follows.append(Follow(follower_id=channel_id, followee_id=subscription.snippet.resource.channel_id,
                              followee_name=subscription.snippet.title))


def _channel(item: Any, out: NormalizedPage) -> None:
    channel = out.validated(yt.Channel, item, "profile")
    if channel is None:
        return
    stats = channel.statistics or yt.ChannelStatistics()
    subscribers = None if stats.hiddenSubscriberCount else stats.subscriberCount
    snippet = channel.snippet
    out.profiles.append(Profile(
        profile_id=channel.id, username=snippet.customUrl or snippet.title, display_name=snippet.title,
        bio=snippet.description, followers_count=subscribers, posts_count=stats.videoCount,
        avatar_url=snippet.thumbnails.best() if snippet.thumbnails else None,
    ))
    out.add_metrics("profile", channel.id, (("followers_count", subscribers), ("posts_count", stats.videoCount),
                                            ("view_count", stats.viewCount)))


def _video(item: Any, channel_id: str, out: NormalizedPage) -> None:
    video = out.validated(yt.Video, item, "post")
    if video is None:
        return
    seconds = yt.duration_seconds(video.contentDetails.duration if video.contentDetails else None)
    short = seconds is not None and seconds <= SHORT_MAX_S
    stats = video.statistics or yt.VideoStatistics()
    snippet = video.snippet
    caption = "\n\n".join(part for part in (snippet.title, snippet.description) if part) or None
    permalink = f"https://www.youtube.com/{'shorts/' if short else 'watch?v='}{video.id}"
    out.posts.append(Post(
        post_id=video.id, profile_id=snippet.channelId or channel_id, kind="video",
        product_type="short" if short else "video", caption=caption, permalink=permalink,
        created_at=snippet.publishedAt, like_count=stats.likeCount, comments_count=stats.commentCount,
        view_count=stats.viewCount,
    ))
    out.media.append(Media(media_id=video.id, post_id=video.id, position=0, media_type="video", url=permalink,
                           thumbnail_url=snippet.thumbnails.best() if snippet.thumbnails else None))
    out.add_metrics("post", video.id, (("view_count", stats.viewCount), ("like_count", stats.likeCount),
                                       ("comments_count", stats.commentCount)))


def _thread(item: Any, video_id: str, out: NormalizedPage) -> None:
    thread = out.validated(yt.CommentThread, item, "comment")
    if thread is None:
        return
    _comment(thread.snippet.topLevelComment, video_id, None, out, thread.snippet.totalReplyCount)
    for reply in thread.replies.comments if thread.replies else []:
        _comment(reply, video_id, thread.id, out)


def _comment(item: Any, video_id: str, parent_id: str | None, out: NormalizedPage,
             reply_count: int | None = None) -> None:
    comment = item if isinstance(item, yt.Comment) else out.validated(yt.Comment, item, "comment")
    if comment is None:
        return
    snippet = comment.snippet
    out.comments.append(Comment(
        comment_id=comment.id, post_id=snippet.videoId or video_id,
        parent_comment_id=snippet.parentId or parent_id,
        author_id=snippet.authorChannelId.value if snippet.authorChannelId else None,
        author_username=snippet.authorDisplayName,
        content=snippet.textOriginal if snippet.textOriginal is not None else snippet.textDisplay,
        created_at=snippet.publishedAt, like_count=snippet.likeCount, reply_count=reply_count,
    ))
