"""TikTok raw pages -> unified records: validate each item, map it, quarantine what fails.

An account is a profile (its id is the username, as the Research API knows it), a video a post with
one media row, a comment or reply a comment (a reply with ``parent_comment_id``). The Research API
gives no comment author.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from socialsync.networks.base import PostStub, RawPage
from socialsync.networks.tiktok import models as tt
from socialsync.transform.records import Comment, Follow, Like, Media, NormalizedPage, Post, Profile


def _list(payload: dict[str, Any], key: str) -> list[Any]:
    data = payload.get("data")
    items = data.get(key) if isinstance(data, dict) else None
    return items if isinstance(items, list) else []


def permalink(username: str, video_id: str) -> str:
    return f"https://www.tiktok.com/@{username}/video/{video_id}"


def post_stubs(payload: dict[str, Any]) -> list[PostStub]:
    """The videos of a query page, read leniently (a bad item is quarantined later)."""
    stubs = []
    for item in _list(payload, "videos"):
        if not isinstance(item, dict) or item.get("id") is None:
            continue
        created = tt.unix_time(item.get("create_time"))
        count = item.get("comment_count")
        stubs.append(PostStub(str(item["id"]), created if isinstance(created, datetime) else None,
                              count if isinstance(count, int) and not isinstance(count, bool) else None))
    return stubs


def normalize(page: RawPage) -> NormalizedPage:
    out = NormalizedPage()
    if page.kind == "profile":
        _user(page.payload.get("data"), page.parent_id, out)
    elif page.kind == "posts":
        for item in _list(page.payload, "videos"):
            _video(item, out)
    elif page.kind == "comments":
        for item in _list(page.payload, "comments"):
            _comment(item, page.parent_id, out)
    elif page.kind in ("followers", "following"):
        for item in _list(page.payload, f"user_{page.kind}"):
            _follow(item, page.parent_id, page.kind == "followers", out)
    elif page.kind == "liked_videos":
        for item in _list(page.payload, "user_liked_videos"):
            _like(item, page.parent_id, out)
    elif page.kind == "pinned_videos":  # the profile's own videos, whole, with the flag the posts pages lack
        for item in _list(page.payload, "pinned_videos_list"):
            _video(item, out, pinned=True)
    else:
        raise ValueError(f"tiktok has no raw page kind {page.kind!r}")
    return out


def _like(item: Any, username: str, out: NormalizedPage) -> None:
    """A video the profile liked: the like is the profile's, the video its author's (not loaded as a post)."""
    video = out.validated(tt.Video, item, "like")
    if video is None:
        return
    out.likes.append(Like(post_id=video.id, author_id=username, post_author_id=video.username,
                          caption=video.video_description or None))


def _follow(item: Any, username: str, follows_them: bool, out: NormalizedPage) -> None:
    """A listed user: one following the profile (its followers list), or one it follows."""
    user = out.validated(tt.ListedUser, item, "follow")
    if user is None:
        return
    if follows_them:
        out.follows.append(Follow(follower_id=user.username, followee_id=username, follower_name=user.display_name))
    else:
        out.follows.append(Follow(follower_id=username, followee_id=user.username, followee_name=user.display_name))


def _user(item: Any, username: str, out: NormalizedPage) -> None:
    user = out.validated(tt.User, item, "profile")
    if user is None:
        return
    out.profiles.append(Profile(
        profile_id=username, username=username, display_name=user.display_name, bio=user.bio_description,
        followers_count=user.follower_count, following_count=user.following_count, posts_count=user.video_count,
        avatar_url=user.avatar_url or None, website=user.bio_url or None,
    ))
    out.add_metrics("profile", username, (("followers_count", user.follower_count),
                                          ("following_count", user.following_count),
                                          ("posts_count", user.video_count), ("likes_count", user.likes_count)))


def _video(item: Any, out: NormalizedPage, pinned: bool | None = None) -> None:
    video = out.validated(tt.Video, item, "post")
    if video is None:
        return
    link = permalink(video.username, video.id)
    out.posts.append(Post(
        post_id=video.id, profile_id=video.username, kind="video", product_type="video",
        caption=video.video_description or None, permalink=link, created_at=video.create_time,
        like_count=video.like_count, comments_count=video.comment_count, view_count=video.view_count,
        pinned=pinned,
    ))
    out.media.append(Media(media_id=video.id, post_id=video.id, position=0, media_type="video", url=link))
    out.add_metrics("post", video.id, (("view_count", video.view_count), ("like_count", video.like_count),
                                       ("comments_count", video.comment_count), ("share_count", video.share_count)))


def _comment(item: Any, video_id: str, out: NormalizedPage) -> None:
    comment = out.validated(tt.Comment, item, "comment")
    if comment is None:
        return
    parent = comment.parent_comment_id
    out.comments.append(Comment(
        comment_id=comment.id, post_id=comment.video_id or video_id,
        parent_comment_id=None if parent in (None, comment.video_id) else parent,
        content=comment.text, created_at=comment.create_time, like_count=comment.like_count,
        reply_count=comment.reply_count if parent in (None, comment.video_id) else None,
    ))
