"""The unified normalized records every network maps its payloads to."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


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
    rejects: list[Reject] = field(default_factory=list)
