"""The unified normalized records every network maps its payloads to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Profile(_Record):
    profile_id: str
    username: str
    display_name: str | None = None
    bio: str | None = None
    followers_count: int | None = None
    following_count: int | None = None
    posts_count: int | None = None
    avatar_url: str | None = None
    website: str | None = None


class Post(_Record):
    post_id: str
    profile_id: str
    kind: Literal["image", "video", "carousel", "text"]
    product_type: str | None = None
    caption: str | None = None
    permalink: str | None = None
    created_at: datetime
    like_count: int | None = None
    comments_count: int | None = None
    view_count: int | None = None
    # On the profile's pinned list (TikTok's pinned videos): True from that list; None from a posts
    # page, which does not say (the held value is kept). A complete walk of the list turns it False.
    pinned: bool | None = None


class Media(_Record):
    media_id: str
    post_id: str
    position: int
    media_type: Literal["image", "video"]
    url: str | None = None
    thumbnail_url: str | None = None


class Comment(_Record):
    comment_id: str
    post_id: str
    parent_comment_id: str | None = None  # the comment replied to; None for a top-level comment
    author_id: str | None = None
    author_username: str | None = None
    content: str | None = None
    created_at: datetime
    like_count: int | None = None
    reply_count: int | None = None  # replies the thread had when listed (YouTube's totalReplyCount)


class Follow(_Record):
    """One account following another (a YouTube subscription, a TikTok follow); either side may be
    a profile nobody tracks, named as the list named it."""

    follower_id: str
    followee_id: str
    follower_name: str | None = None
    followee_name: str | None = None


class Like(_Record):
    """A post a tracked profile liked (seed 003's likes: the post, and the profile that liked it as
    ``author_id``), with the liked post's author and caption as the list gave them."""

    post_id: str
    author_id: str
    post_author_id: str | None = None
    caption: str | None = None


class Metric(_Record):
    entity_kind: Literal["profile", "post"]
    entity_id: str
    metric: str
    value: float


@dataclass(frozen=True)
class Reject:
    """A record that failed validation: kept with its reason, never silently dropped."""

    record_kind: str
    record_id: str | None
    reason: str
    record: dict[str, Any]


@dataclass
class NormalizedPage:
    profiles: list[Profile] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    follows: list[Follow] = field(default_factory=list)
    likes: list[Like] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    def validated(self, model: type[M], item: Any, record_kind: str) -> M | None:
        """``item`` checked against the API's ``model``; one that fails is quarantined with its reason."""
        try:
            return model.model_validate(item)
        except ValidationError as exc:
            reason = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors())
            key = item.get("id") if isinstance(item, dict) else None
            self.rejects.append(Reject(record_kind, str(key)[:128] if key is not None else None, reason,
                                       item if isinstance(item, dict) else {"value": item}))
            return None

    def add_metrics(self, entity_kind: Literal["profile", "post"], entity_id: str,
                    values: Iterable[tuple[str, float | None]]) -> None:
        """Today's snapshot of each count the API gave (a hidden one is absent, not zero)."""
        self.metrics += [Metric(entity_kind=entity_kind, entity_id=entity_id, metric=metric, value=value)
                         for metric, value in values if value is not None]
