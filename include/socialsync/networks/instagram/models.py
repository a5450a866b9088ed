"""Pydantic models of the Instagram Graph API payloads: the boundary every answer is checked at."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def parse_graph_time(value: object) -> object:
    """Graph writes ``2024-05-01T12:00:00+0000``; ISO forms and epoch seconds are accepted too.

    ``fromisoformat`` reads Graph's form (a ``strptime`` costs ten times as much, once per record); a
    time without an offset, or what it cannot read, is left to pydantic's own rules."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    return value


GraphTime = Annotated[datetime, BeforeValidator(parse_graph_time)]
NodeId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[0-9A-Za-z_-]+$")]

T = TypeVar("T")


class _Graph(BaseModel):
    # Unknown fields are allowed (and stay in raw): a new Graph field must never fail a sync.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Edge(_Graph, Generic[T]):
    data: list[T]


class IgUser(_Graph):
    id: NodeId
    username: str | None = None


class IgProfile(_Graph):
    id: NodeId
    username: Annotated[str, Field(min_length=1)]
    name: str | None = None
    biography: str | None = None
    followers_count: int | None = Field(default=None, ge=0)
    follows_count: int | None = Field(default=None, ge=0)
    media_count: int | None = Field(default=None, ge=0)
    profile_picture_url: str | None = None
    website: str | None = None


class IgChild(_Graph):
    id: NodeId
    media_type: Literal["IMAGE", "VIDEO"]
    media_url: str | None = None
    thumbnail_url: str | None = None


class IgMedia(_Graph):
    id: NodeId
    caption: str | None = None
    media_type: Literal["IMAGE", "VIDEO", "CAROUSEL_ALBUM"]
    media_product_type: str | None = None
    media_url: str | None = None
    thumbnail_url: str | None = None
    permalink: str | None = None
    timestamp: GraphTime
    like_count: int | None = Field(default=None, ge=0)
    comments_count: int | None = Field(default=None, ge=0)
    children: Edge[IgChild] | None = None


class IgStory(_Graph):
    id: NodeId
    media_type: Literal["IMAGE", "VIDEO"]
    media_product_type: str | None = None
    media_url: str | None = None
    thumbnail_url: str | None = None
    permalink: str | None = None
    timestamp: GraphTime
    caption: str | None = None


class IgComment(_Graph):
    id: NodeId
    text: str | None = None
    timestamp: GraphTime
    username: str | None = None
    like_count: int | None = Field(default=None, ge=0)
    author: IgUser | None = Field(default=None, alias="from")


class IgReply(IgComment):
    parent_id: NodeId | None = None  # the comment replied to
