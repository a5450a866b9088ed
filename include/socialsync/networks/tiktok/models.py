"""Pydantic models of the TikTok Research API payloads: the boundary every answer is checked at."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def unix_time(value: object) -> object:
    """``create_time`` is Unix seconds; an aware UTC datetime here."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 2**40:
        return datetime.fromtimestamp(value, UTC)
    return value


def id_text(value: object) -> object:
    """Ids come as JSON integers (or strings of digits); they are kept as text."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else value


TikTokId = Annotated[str, BeforeValidator(id_text), Field(min_length=1, max_length=64, pattern=r"^[0-9]+$")]
UnixTime = Annotated[datetime, BeforeValidator(unix_time)]
Count = Annotated[int | None, Field(ge=0)]


class _TikTok(BaseModel):
    # Unknown fields are allowed (and stay in raw): a new API field must never fail a sync.
    model_config = ConfigDict(extra="allow")


class User(_TikTok):
    display_name: str | None = None
    bio_description: str | None = None
    avatar_url: str | None = None
    is_verified: bool | None = None
    follower_count: Count = None
    following_count: Count = None
    likes_count: Count = None
    video_count: Count = None
    bio_url: str | None = None


class Video(_TikTok):
    id: TikTokId
    username: str = Field(min_length=1, max_length=128)
    create_time: UnixTime
    video_description: str | None = None
    region_code: str | None = None
    view_count: Count = None
    like_count: Count = None
    comment_count: Count = None
    share_count: Count = None
    hashtag_names: list[str] | None = None
    music_id: TikTokId | None = None


class Comment(_TikTok):
    id: TikTokId
    video_id: TikTokId
    create_time: UnixTime
    text: str | None = None
    like_count: Count = None
    reply_count: Count = None
    parent_comment_id: TikTokId | None = None  # a top comment's is its video's id


class ListedUser(_TikTok):
    """A user as the followers and following lists name one."""

    username: Annotated[str, Field(min_length=1, max_length=128)]
    display_name: str | None = None
