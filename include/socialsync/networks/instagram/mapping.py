"""Instagram raw pages -> unified records: validate each item, map it, quarantine what fails."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from socialsync.networks.base import PostStub, RawPage
from socialsync.networks.instagram.models import IgComment, IgMedia, IgProfile, parse_graph_time
from socialsync.transform.records import Comment, Media, NormalizedPage, Post, Profile

_KIND = {"IMAGE": "image", "VIDEO": "video", "CAROUSEL_ALBUM": "carousel"}


def _items(payload: dict[str, Any]) -> list[Any]:
    data = payload.get("data")
    return data if isinstance(data, list) else []


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
    if page.kind == "profile":
        _profile(page.payload, out)
    elif page.kind == "posts":
        for item in _items(page.payload):
            _post(item, page.parent_id, out)
    elif page.kind == "comments":
        for item in _items(page.payload):
            _comment(item, page.parent_id, out)
    else:
        raise ValueError(f"instagram has no raw page kind {page.kind!r}")
    return out


def _profile(payload: dict[str, Any], out: NormalizedPage) -> None:
    ig = out.validated(IgProfile, payload, "profile")
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
    out.add_metrics("post", ig.id, (("like_count", ig.like_count), ("comments_count", ig.comments_count)))


def _comment(item: Any, post_id: str, out: NormalizedPage) -> None:
    ig = out.validated(IgComment, item, "comment")
    if ig is None:
        return
    out.comments.append(Comment(
        comment_id=ig.id, post_id=post_id, author_id=ig.author.id if ig.author else None,
        author_username=ig.username or (ig.author.username if ig.author else None),
        content=ig.text, created_at=ig.timestamp, like_count=ig.like_count,
    ))
