"""Instagram raw pages -> unified records: validate each item, map it, quarantine what fails.

Pages come in the shapes Graph answers in: an owned account's node and edges (``data`` lists), a
business discovery answer (the profile, its media page nested in ``business_discovery.media``) and
a comments page with the ``/replies`` answers of its comments (``socialsync#commentsPage``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from socialsync.networks.base import PostStub, RawPage
from socialsync.networks.instagram.models import (
    IgComment,
    IgMedia,
    IgProfile,
    IgReply,
    IgStory,
    parse_graph_time,
)
from socialsync.transform.records import Comment, Media, NormalizedPage, Post, Profile, Reject

_KIND = {"IMAGE": "image", "VIDEO": "video", "CAROUSEL_ALBUM": "carousel"}
STORY = "story"  # the product type stories are kept under: they stay after they expire upstream


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _discovered(payload: dict[str, Any]) -> dict[str, Any] | None:
    account = payload.get("business_discovery")
    return account if isinstance(account, dict) else None


def _items(payload: dict[str, Any]) -> list[Any]:
    """The listed items of a page, whichever shape it came in."""
    account = _discovered(payload)
    if account is not None:
        media = account.get("media")
        return _list(media.get("data")) if isinstance(media, dict) else []
    if payload.get("kind") == "socialsync#commentsPage":
        comments = payload.get("comments")
        return _list(comments.get("data")) if isinstance(comments, dict) else []
    return _list(payload.get("data"))


def post_stubs(payload: dict[str, Any]) -> list[PostStub]:
    """The posts of a media page, read leniently: a bad item is quarantined later, not here."""
    stubs = []
    for item in _items(payload):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        created = parse_graph_time(item.get("timestamp"))
        count = item.get("comments_count")
        stubs.append(PostStub(item["id"], created if isinstance(created, datetime) else None,
                              count if isinstance(count, int) else None))
    return stubs


def normalize(page: RawPage) -> NormalizedPage:
    out = NormalizedPage()
    account = _discovered(page.payload)
    if page.kind == "profile":
        _profile(account if account is not None else page.payload, out)
    elif page.kind == "posts":
        # A discovered account's media belong to the IG user id the answer names, not to ``@username``.
        owner = account.get("id") if account is not None else page.parent_id
        if isinstance(owner, str) and owner:
            for item in _items(page.payload):
                _post(item, owner, out)
    elif page.kind == "comments":
        for item in _items(page.payload):
            _comment(item, page.parent_id, out)
        for answers in (page.payload.get("replies") or {}).values():
            for answer in _list(answers):
                for item in _list(answer.get("data") if isinstance(answer, dict) else None):
                    _reply(item, page.parent_id, None, out)
    elif page.kind == "stories":
        for item in _items(page.payload):
            _story(item, page.parent_id, out)
    else:
        raise ValueError(f"instagram has no raw page kind {page.kind!r}")
    return out


def _profile(payload: dict[str, Any], out: NormalizedPage) -> None:
    ig = out.validated(IgProfile, {k: v for k, v in payload.items() if k != "media"}, "profile")
    if ig is None:
        return
    out.profiles.append(Profile(
        profile_id=ig.id, username=ig.username, display_name=ig.name, bio=ig.biography,
        followers_count=ig.followers_count, following_count=ig.follows_count, posts_count=ig.media_count,
        avatar_url=ig.profile_picture_url, website=ig.website,
    ))
    out.add_metrics("profile", ig.id, (("followers_count", ig.followers_count),
                                       ("following_count", ig.follows_count), ("posts_count", ig.media_count)))


def _post(item: Any, profile_id: str, out: NormalizedPage) -> None:
    ig = out.validated(IgMedia, item, "post")
    if ig is None:
        return
    out.posts.append(Post(
        post_id=ig.id, profile_id=profile_id, kind=_KIND[ig.media_type],  # type: ignore[arg-type]
        product_type=ig.media_product_type.lower() if ig.media_product_type else None,
        caption=ig.caption, permalink=ig.permalink, created_at=ig.timestamp,
        like_count=ig.like_count, comments_count=ig.comments_count,
    ))
    if ig.children is not None:
        for position, child in enumerate(ig.children.data):
            out.media.append(Media(media_id=child.id, post_id=ig.id, position=position,
                                   media_type=_KIND[child.media_type],  # type: ignore[arg-type]
                                   url=child.media_url, thumbnail_url=child.thumbnail_url))
    elif ig.media_type != "CAROUSEL_ALBUM":
        out.media.append(Media(media_id=ig.id, post_id=ig.id, position=0,
                               media_type=_KIND[ig.media_type],  # type: ignore[arg-type]
                               url=ig.media_url, thumbnail_url=ig.thumbnail_url))
    # A like count the owner hid is absent: no snapshot, never a zero.
    out.add_metrics("post", ig.id, (("like_count", ig.like_count), ("comments_count", ig.comments_count)))


def _story(item: Any, profile_id: str, out: NormalizedPage) -> None:
    ig = out.validated(IgStory, item, "story")
    if ig is None:
        return
    out.posts.append(Post(post_id=ig.id, profile_id=profile_id, kind=_KIND[ig.media_type],  # type: ignore[arg-type]
                          product_type=STORY, caption=ig.caption, permalink=ig.permalink, created_at=ig.timestamp))
    out.media.append(Media(media_id=ig.id, post_id=ig.id, position=0,
                           media_type=_KIND[ig.media_type],  # type: ignore[arg-type]
                           url=ig.media_url, thumbnail_url=ig.thumbnail_url))


def _comment(item: Any, post_id: str, out: NormalizedPage) -> None:
    ig = out.validated(IgComment, item, "comment")
    if ig is None:
        return
    out.comments.append(_record(ig, post_id, None))
    replies = item.get("replies") if isinstance(item, dict) else None
    for reply in _list(replies.get("data") if isinstance(replies, dict) else None):
        _reply(reply, post_id, ig.id, out)


def _reply(item: Any, post_id: str, parent_id: str | None, out: NormalizedPage) -> None:
    ig = out.validated(IgReply, item, "reply")
    if ig is None:
        return
    parent = ig.parent_id or parent_id
    if parent is None:
        out.rejects.append(_orphan(item))
        return
    out.comments.append(_record(ig, post_id, parent))


def _record(ig: IgComment, post_id: str, parent_id: str | None) -> Comment:
    return Comment(
        comment_id=ig.id, post_id=post_id, parent_comment_id=parent_id, author_id=ig.author.id if ig.author else None,
        author_username=ig.username or (ig.author.username if ig.author else None),
        content=ig.text, created_at=ig.timestamp, like_count=ig.like_count,
    )


def _orphan(item: Any) -> Reject:
    return Reject("reply", str(item.get("id"))[:128] if isinstance(item, dict) else None,
                  "parent_id: a reply from /replies must name the comment it replies to",
                  item if isinstance(item, dict) else {"value": item})
