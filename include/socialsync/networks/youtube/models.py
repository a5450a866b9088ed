"""Pydantic models of the YouTube Data API v3 payloads: the boundary every answer is checked at."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

ResourceId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[0-9A-Za-z_.-]+$")]
_DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$")


def parse_rfc3339(value: object) -> object:
    """``2026-10-01T12:00:00Z`` (fractions and offsets accepted), as an aware UTC datetime."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    return value


def duration_seconds(value: str | None) -> int | None:
    """ISO 8601 durations as YouTube writes them (``PT1M3S``, ``P1DT2H``); ``None`` when unreadable."""
    match = _DURATION.match(value or "")
    if not match or value in ("P", "PT"):
        return None
    d, h, m, s = (int(match.group(k) or 0) for k in "dhms")
    return ((d * 24 + h) * 60 + m) * 60 + s


def count(value: object) -> object:
    """YouTube sends counts as strings of digits."""
    return int(value) if isinstance(value, str) and value.isdigit() else value


Rfc3339 = Annotated[datetime, BeforeValidator(parse_rfc3339)]
Count = Annotated[int | None, BeforeValidator(count), Field(ge=0)]


class _Google(BaseModel):
    # Unknown fields are allowed (and stay in raw): a new API field must never fail a sync.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Thumbnail(_Google):
    url: str


class Thumbnails(_Google):
    default: Thumbnail | None = None
    medium: Thumbnail | None = None
    high: Thumbnail | None = None

    def best(self) -> str | None:
        for size in (self.high, self.medium, self.default):
            if size is not None:
                return size.url
        return None


class ChannelSnippet(_Google):
    title: Annotated[str, Field(min_length=1)]
    description: str | None = None
    customUrl: str | None = None
    publishedAt: Rfc3339 | None = None
    thumbnails: Thumbnails | None = None


class ChannelStatistics(_Google):
    viewCount: Count = None
    subscriberCount: Count = None
    hiddenSubscriberCount: bool = False
    videoCount: Count = None


class Channel(_Google):
    id: ResourceId
    snippet: ChannelSnippet
    statistics: ChannelStatistics | None = None


class VideoSnippet(_Google):
    publishedAt: Rfc3339
    channelId: ResourceId | None = None
    title: str | None = None
    description: str | None = None
    thumbnails: Thumbnails | None = None
    tags: list[str] | None = None


class VideoStatistics(_Google):
    viewCount: Count = None
    likeCount: Count = None
    commentCount: Count = None


class VideoDetails(_Google):
    duration: str | None = None


class Video(_Google):
    id: ResourceId
    snippet: VideoSnippet
    statistics: VideoStatistics | None = None
    contentDetails: VideoDetails | None = None


class AuthorChannel(_Google):
    value: str | None = None


class CommentSnippet(_Google):
    textOriginal: str | None = None
    textDisplay: str | None = None
    authorDisplayName: str | None = None
    authorChannelId: AuthorChannel | None = None
    likeCount: Count = None
    publishedAt: Rfc3339
    parentId: ResourceId | None = None
    videoId: ResourceId | None = None


class Comment(_Google):
    id: ResourceId
    snippet: CommentSnippet


class ThreadSnippet(_Google):
    videoId: ResourceId | None = None
    topLevelComment: Comment
    totalReplyCount: Count = None


class ThreadReplies(_Google):
    comments: list[Comment] = Field(default_factory=list)


class CommentThread(_Google):
    id: ResourceId
    snippet: ThreadSnippet
    replies: ThreadReplies | None = None


class SubscribedChannel(_Google):
    kind: str | None = None
    channel_id: ResourceId = Field(alias="channelId")


class SubscriptionSnippet(_Google):
    title: str | None = None
    published_at: Rfc3339 | None = Field(default=None, alias="publishedAt")
    resource: SubscribedChannel = Field(alias="resourceId")


class Subscription(_Google):
    id: str
    snippet: SubscriptionSnippet
