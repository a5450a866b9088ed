"""YouTube's view of the generated dataset: channels, uploads, videos, comment threads, replies, subscriptions.

A channel is profile ``p``, a video is post ``(p, j)``, a top-level comment is comment ``(p, j, k)`` of the
``Dataset``, so both networks share one seed and one ``epoch`` (new and deleted videos and comments come
from the dataset). What only YouTube has (durations, hidden counts, disabled comments, replies) is again
a pure function of (seed, indexes, epoch): nothing is held per item.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from socialsync.sandbox import words
from socialsync.sandbox.dataset import REFERENCE_NOW, Dataset
from socialsync.sandbox.youtube_subscriptions import Subscriptions, SubscriptionTruth

INLINE_REPLIES = 5  # replies a comment thread carries inline; the rest only through comments?parentId
# Forced reply counts of threads k of the busiest video of channel 0 (the boundaries a client must get
# right: five replies all inline, six = one past inline, and more than one page of comments?parentId).
# The 5 and 6 stay as they are at every epoch; the long thread, like any other, gains replies.
BOUNDARY_REPLIES = {0: 237, 1: 6, 2: 5}
HIDDEN_SUBSCRIBERS_EVERY = 10  # channels p with p % 10 == 2 hide their subscriber count
_THUMBS = {"channel": (("default", 88, 88), ("medium", 240, 240), ("high", 800, 800)),
           "video": (("default", 120, 90), ("medium", 320, 180), ("high", 480, 360))}


@dataclass(frozen=True)
class Thumbnail:
    name: str  # default | medium | high
    url: str
    width: int
    height: int


@dataclass(frozen=True)
class ChannelTruth:
    index: int
    id: str
    uploads_playlist_id: str
    handle: str  # "@" + the dataset's username; also the channel's customUrl
    title: str
    description: str
    published_at: datetime
    thumbnails: tuple[Thumbnail, ...]
    view_count: int  # the channel's lifetime views, not the sum of its listed videos
    subscriber_count: int | None  # None when hidden; else rounded down to 3 significant digits, as YouTube does
    video_count: int  # visible videos


@dataclass(frozen=True)
class VideoTruth:
    channel_index: int
    index: int
    id: str
    channel_id: str
    channel_title: str
    title: str
    description: str
    published_at: datetime
    tags: tuple[str, ...] | None  # None: the video has no tags and the API omits the key
    duration_s: int
    duration: str  # ISO 8601, as contentDetails.duration
    is_short: bool  # duration <= 60 s
    definition: str  # hd | sd
    thumbnails: tuple[Thumbnail, ...]
    view_count: int
    like_count: int | None  # None: likes hidden
    comment_count: int | None  # visible threads + their replies; None: comments disabled
    comments_disabled: bool


@dataclass(frozen=True)
class CommentAuthor:
    display_name: str  # "@handle", as YouTube shows authors since handles
    channel_id: str


@dataclass(frozen=True)
class ThreadTruth:
    """A comment thread, i.e. its top-level comment (the thread and that comment share one id)."""

    channel_index: int
    video_index: int
    index: int
    id: str
    video_id: str
    channel_id: str  # the video's channel
    text: str
    author: CommentAuthor
    like_count: int
    published_at: datetime
    updated_at: datetime
    total_reply_count: int


@dataclass(frozen=True)
class ReplyTruth:
    index: int
    id: str
    parent_id: str
    video_id: str
    channel_id: str
    text: str
    author: CommentAuthor
    like_count: int
    published_at: datetime
    updated_at: datetime


def youtube_time(value: datetime) -> str:
    """YouTube's timestamp form, RFC 3339 in UTC: ``2026-10-01T12:00:00Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_duration(seconds: int) -> str:
    """``contentDetails.duration``: ``PT45S``, ``PT1M3S``, ``PT1H2M3S``, ``P0D`` for nothing."""
    if seconds <= 0:
        return "P0D"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")


# --- ids: sealed, so they look like YouTube's and decode without lookups --------------------------------
def _digest(seed: int, kind: str, data: bytes) -> bytes:
    return hashlib.blake2b(f"{seed}/{kind}/".encode() + data, digest_size=16).digest()


def _seal(seed: int, kind: str, payload: bytes, tag_len: int) -> str:
    """``tag + payload XOR pad(tag)`` in URL-safe base64: random-looking, and checked on the way back."""
    tag = _digest(seed, kind, payload)[:tag_len]
    pad = _digest(seed, kind + "/pad", tag)
    body = bytes(b ^ pad[i % len(pad)] for i, b in enumerate(payload))
    return base64.urlsafe_b64encode(tag + body).decode().rstrip("=")


def _unseal(seed: int, kind: str, text: str, tag_len: int, size: int) -> bytes | None:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != tag_len + size:
        return None
    tag, pad = raw[:tag_len], _digest(seed, kind + "/pad", raw[:tag_len])
    payload = bytes(b ^ pad[i % len(pad)] for i, b in enumerate(raw[tag_len:]))
    # The re-encoding check refuses every other spelling of the same bytes (padding bits, '+', '/').
    if _digest(seed, kind, payload)[:tag_len] != tag or _seal(seed, kind, payload, tag_len) != text:
        return None
    return payload


def _ints(payload: bytes, *widths: int) -> tuple[int, ...]:
    out, at = [], 0
    for width in widths:
        out.append(int.from_bytes(payload[at : at + width], "big"))
        at += width
    return tuple(out)


class YouTubeDataset:
    """YouTube's ground truth over a ``Dataset``, sharing its epoch (and its immediate deletions).

    It reads the dataset's per-epoch counts (``_comment_total``, ``_post_origin``) so that replies are
    born no earlier than the comment they answer.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.seed = dataset.spec.seed
        self._totals: tuple[tuple[int, frozenset[tuple[int, int]]], dict[str, int]] | None = None
        self._busiest: list[tuple[int, int] | None] = []  # computed once, on first use
        self.subs = Subscriptions(self)

    @property
    def epoch(self) -> int:
        return self.dataset.epoch

    def _rng(self, *key: object) -> random.Random:
        return random.Random("/".join(map(str, (self.seed, "yt", *key))))

    # --- ids ------------------------------------------------------------------------------------
    def _channel_code(self, p: int) -> str:
        return _seal(self.seed, "channel", p.to_bytes(4, "big"), 12)

    def channel_id(self, p: int) -> str:
        """``UC`` + 22 characters."""
        return "UC" + self._channel_code(p)

    def uploads_playlist_id(self, p: int) -> str:
        """``UU`` + the channel id's 22 characters, as YouTube's uploads playlists are."""
        return "UU" + self._channel_code(p)

    def fan_channel_id(self, fan: int) -> str:
        """The channel of commenter ``fan_N``: a ``UC`` id that is no channel of the dataset."""
        return "UC" + _seal(self.seed, "fan", fan.to_bytes(8, "big"), 8)

    def outside_channel_id(self, x: int) -> str:
        """Channel ``x`` of the outside pool subscriptions point at: a ``UC`` id that is no channel of the dataset."""
        return "UC" + _seal(self.seed, "outside", x.to_bytes(8, "big"), 8)

    def subscription_id(self, p: int, s: int) -> str:
        """43 characters, as YouTube's subscription ids (a 24-byte check, p and s in 4 bytes each)."""
        return _seal(self.seed, "subscription", p.to_bytes(4, "big") + s.to_bytes(4, "big"), 24)

    def video_id(self, p: int, j: int) -> str:
        """11 characters (8 bytes: a 2-byte check, p and j in 3 bytes each)."""
        return _seal(self.seed, "video", p.to_bytes(3, "big") + j.to_bytes(3, "big"), 2)

    def thread_id(self, p: int, j: int, k: int) -> str:
        """``Ug`` + 24 characters (a 6-byte check, p, j and k in 4 bytes each)."""
        payload = p.to_bytes(4, "big") + j.to_bytes(4, "big") + k.to_bytes(4, "big")
        return "Ug" + _seal(self.seed, "thread", payload, 6)

    def reply_id(self, p: int, j: int, k: int, r: int) -> str:
        """``THREAD_ID.`` + 22 characters sealed to that thread."""
        thread = self.thread_id(p, j, k)
        return f"{thread}." + _seal(self.seed, f"reply/{thread}", r.to_bytes(4, "big"), 12)

    def parse_channel_id(self, channel_id: str) -> int | None:
        return self._parse_channel_code(channel_id, "UC")

    def parse_uploads_playlist_id(self, playlist_id: str) -> int | None:
        return self._parse_channel_code(playlist_id, "UU")

    def _parse_channel_code(self, value: str, prefix: str) -> int | None:
        if len(value) != 24 or not value.startswith(prefix):
            return None
        payload = _unseal(self.seed, "channel", value[2:], 12, 4)
        if payload is None:
            return None
        p = _ints(payload, 4)[0]
        return p if p < self.dataset.spec.profiles else None

    def parse_handle(self, handle: str) -> int | None:
        name = handle.removeprefix("@").lower()
        _, _, tail = name.rpartition("_")
        if not tail.isdigit() or int(tail) >= self.dataset.spec.profiles:
            return None
        return int(tail) if self.dataset.username(int(tail)) == name else None

    def parse_video_id(self, video_id: str) -> tuple[int, int] | None:
        """``(p, j)`` of a visible video, None for garbage, unknown and deleted ones."""
        payload = _unseal(self.seed, "video", video_id, 2, 6) if len(video_id) == 11 else None
        if payload is None:
            return None
        p, j = _ints(payload, 3, 3)
        return (p, j) if self.video_visible(p, j) else None

    def parse_thread_id(self, thread_id: str) -> tuple[int, int, int] | None:
        """``(p, j, k)`` of a visible thread (its video visible, with comments enabled), else None."""
        if len(thread_id) != 26 or not thread_id.startswith("Ug"):
            return None
        payload = _unseal(self.seed, "thread", thread_id[2:], 6, 12)
        if payload is None:
            return None
        p, j, k = _ints(payload, 4, 4, 4)
        return (p, j, k) if self.thread_visible(p, j, k) else None

    def parse_reply_id(self, reply_id: str) -> tuple[int, int, int, int] | None:
        thread_id, _, suffix = reply_id.partition(".")
        thread = self.parse_thread_id(thread_id)
        payload = _unseal(self.seed, f"reply/{thread_id}", suffix, 12, 4) if thread and suffix else None
        if thread is None or payload is None:
            return None
        r = _ints(payload, 4)[0]
        return (*thread, r) if r < self.reply_count(*thread) else None

    def video_visible(self, p: int, j: int) -> bool:
        return (p < self.dataset.spec.profiles and j < self.dataset.post_count(p)
                and j not in self.dataset.deleted_posts(p))

    def thread_visible(self, p: int, j: int, k: int) -> bool:
        return (self.video_visible(p, j) and not self.comments_disabled(p, j)
                and k < self.dataset.comment_total(p, j) and k not in self.dataset.deleted_comments(p, j))

    # --- channels -------------------------------------------------------------------------------
    def channel(self, p: int) -> ChannelTruth:
        profile = self.dataset.profile(p)
        rng = self._rng("channel", p)
        created = REFERENCE_NOW - timedelta(days=rng.randint(400, 4000), seconds=rng.randrange(86400))
        if self.dataset.post_count(p):
            created = min(created, self.dataset.post_time(p, 0) - timedelta(days=rng.randint(1, 90)))
        base_subs = int(800 * rng.lognormvariate(0.0, 2.2))
        subscribers = base_subs + self.epoch * (base_subs // 50 + 3 * (p % 5))
        base_views = int(20_000 * rng.lognormvariate(0.0, 2.0))
        hidden = p % HIDDEN_SUBSCRIBERS_EVERY == 2
        return ChannelTruth(
            index=p, id=self.channel_id(p), uploads_playlist_id=self.uploads_playlist_id(p),
            handle="@" + profile.username, title=profile.name, description=profile.biography,
            published_at=created.replace(microsecond=0),
            thumbnails=self._thumbnails("channel", f"https://yt3.sandbox.invalid/{self.channel_id(p)}"),
            view_count=base_views + self.epoch * (base_views // 40 + 11),
            subscriber_count=None if hidden else _three_significant(subscribers),
            video_count=self.video_count(p),
        )

    def video_count(self, p: int) -> int:
        return self.dataset.post_count(p) - len(self.dataset.deleted_posts(p))

    def videos_newest_first(self, p: int, before: int | None = None) -> Iterator[int]:
        """Visible video indexes of channel ``p`` (its uploads playlist), strictly older than ``before``."""
        return self.dataset.posts_newest_first(p, before)

    # --- videos ---------------------------------------------------------------------------------
    def duration_s(self, p: int, j: int) -> int:
        rng = self._rng("duration", p, j)
        if rng.random() < 0.3:  # a short
            return rng.randint(5, 60)
        return max(61, min(4 * 3600, int(600 * rng.lognormvariate(0.0, 0.9))))

    def is_short(self, p: int, j: int) -> bool:
        return self.duration_s(p, j) <= 60

    def comments_disabled(self, p: int, j: int) -> bool:
        """About 5% of videos, never the busiest video of channel 0 (it carries the boundary threads)."""
        return (p, j) != self.busiest_video() and self._rng("nocomments", p, j).random() < 0.05

    def likes_hidden(self, p: int, j: int) -> bool:
        return self._rng("nolikes", p, j).random() < 0.05

    def video(self, p: int, j: int) -> VideoTruth:
        post = self.dataset.post(p, j)
        rng = self._rng("video", p, j)
        vid = self.video_id(p, j)
        text = [w for w in (post.caption or "").split() if w[0] not in "#@"]
        title_words = text[: rng.randint(3, 8)] or [rng.choice(words.WORDS) for _ in range(rng.randint(2, 6))]
        tags: tuple[str, ...] | None = None
        if rng.random() < 0.6:
            tags = tuple(dict.fromkeys([w[1:] for w in (post.caption or "").split() if w.startswith("#")]
                                       + rng.sample(words.HASHTAGS, rng.randint(1, 5))))
        duration = self.duration_s(p, j)
        born = self.dataset._post_origin(p, j)[0]
        base_views = int(300 * rng.lognormvariate(0.0, 2.0))
        views = base_views + max(0, self.epoch - born) * max(1, int(base_views * rng.uniform(0.005, 0.05)))
        disabled = self.comments_disabled(p, j)
        return VideoTruth(
            channel_index=p, index=j, id=vid, channel_id=self.channel_id(p),
            channel_title=self.dataset.profile(p).name,
            title=" ".join(title_words).capitalize()[:100], description=post.caption or "",
            published_at=post.timestamp, tags=tags, duration_s=duration, duration=iso_duration(duration),
            is_short=duration <= 60, definition="hd" if rng.random() < 0.8 else "sd",
            thumbnails=self._thumbnails("video", f"https://i.sandbox.invalid/vi/{vid}"),
            view_count=max(views, 3 * post.like_count),
            like_count=None if self.likes_hidden(p, j) else post.like_count,
            comment_count=None if disabled else self._comments_and_replies(p, j),
            comments_disabled=disabled,
        )

    def _comments_and_replies(self, p: int, j: int) -> int:
        return sum(1 + self.reply_count(p, j, k) for k in self.threads_newest_first(p, j))

    def _thumbnails(self, kind: str, base: str) -> tuple[Thumbnail, ...]:
        return tuple(Thumbnail(name, f"{base}/{name}.jpg", w, h) for name, w, h in _THUMBS[kind])

    # --- comment threads ------------------------------------------------------------------------
    def threads_newest_first(self, p: int, j: int, before: int | None = None) -> Iterator[int]:
        """Visible thread indexes ``k`` of video ``(p, j)``, newest first; none when comments are disabled."""
        if self.comments_disabled(p, j):
            return iter(())
        return self.dataset.comments_newest_first(p, j, before)

    def thread(self, p: int, j: int, k: int) -> ThreadTruth:
        comment = self.dataset.comment(p, j, k)
        edited = self._rng("thread-edit", p, j, k).random() < 0.05
        return ThreadTruth(
            channel_index=p, video_index=j, index=k, id=self.thread_id(p, j, k), video_id=self.video_id(p, j),
            channel_id=self.channel_id(p), text=comment.text,
            author=self._fan(int(comment.username.removeprefix("fan_"))), like_count=comment.like_count,
            published_at=comment.timestamp,
            updated_at=comment.timestamp + timedelta(minutes=13) if edited else comment.timestamp,
            total_reply_count=self.reply_count(p, j, k),
        )

    def _fan(self, fan: int) -> CommentAuthor:
        return CommentAuthor(f"@fan_{fan}", self.fan_channel_id(fan))

    def busiest_video(self) -> tuple[int, int] | None:
        """The video of channel 0 with the most comments at epoch 0: where ``BOUNDARY_REPLIES`` live."""
        if not self._busiest:
            base = self.dataset.base_post_count(0) if self.dataset.spec.profiles else 0
            top = max(range(base), key=lambda j: self.dataset._comment_total(0, j, 0)) if base else None
            self._busiest.append(None if top is None else (0, top))
        return self._busiest[0]

    # --- replies --------------------------------------------------------------------------------
    def reply_count(self, p: int, j: int, k: int) -> int:
        """Replies of thread ``(p, j, k)`` (its ``totalReplyCount``); replies are never deleted."""
        return self._reply_total(p, j, k, self.epoch)

    def _base_replies(self, p: int, j: int, k: int) -> int:
        if (p, j) == self.busiest_video() and k in BOUNDARY_REPLIES:
            return BOUNDARY_REPLIES[k]
        roll = self._rng("replies", p, j, k)
        chance = roll.random()
        if chance < 0.72:
            return 0
        if chance < 0.94:
            return roll.randint(1, 5)
        return roll.randint(6, 20) if chance < 0.99 else roll.randint(21, 300)

    def _new_replies(self, p: int, j: int, k: int, e: int) -> int:
        if (p, j) == self.busiest_video() and BOUNDARY_REPLIES.get(k, 0) in (5, 6):
            return 0
        rng = self._rng("newreplies", p, j, k, e)
        return rng.randint(1, 3) if rng.random() < 0.1 else 0

    def _thread_birth(self, p: int, j: int, k: int) -> int:
        """The epoch comment ``k`` was written in: no reply can be older than its comment."""
        e = self.dataset._post_origin(p, j)[0]
        while e < self.epoch and self.dataset._comment_total(p, j, e) <= k:
            e += 1
        return e

    @lru_cache(maxsize=65536)  # noqa: B019 - bounded, keyed by epoch like the dataset's
    def _reply_total(self, p: int, j: int, k: int, epoch: int) -> int:
        born = self._thread_birth(p, j, k)
        return self._base_replies(p, j, k) + sum(self._new_replies(p, j, k, e) for e in range(born + 1, epoch + 1))

    def _reply_birth(self, p: int, j: int, k: int, r: int) -> int:
        born = self._thread_birth(p, j, k)
        total = self._base_replies(p, j, k)
        e = born
        while r >= total and e < self.epoch:
            e += 1
            total += self._new_replies(p, j, k, e)
        return e - born

    def replies_oldest_first(self, p: int, j: int, k: int, after: int | None = None) -> Iterator[int]:
        """Reply indexes ``r`` of a thread, oldest first, strictly newer than ``after`` when given."""
        return iter(range(0 if after is None else after + 1, self.reply_count(p, j, k)))

    def replies_of(self, p: int, j: int, k: int) -> tuple[ReplyTruth, ...]:
        """Every reply of a thread, newest first (the inline ones are the first ``INLINE_REPLIES``)."""
        return tuple(self.reply(p, j, k, r) for r in range(self.reply_count(p, j, k) - 1, -1, -1))

    def reply(self, p: int, j: int, k: int, r: int) -> ReplyTruth:
        """Reply ``r`` of thread ``(p, j, k)``; ``r`` grows with time, later replies are newer."""
        rng = self._rng("reply", p, j, k, r)
        gap = timedelta(minutes=self._rng("replygap", p, j, k).randint(2, 45))
        thread_time = self.dataset.comment(p, j, k).timestamp
        written = thread_time + gap * (r + 1) + timedelta(days=self._reply_birth(p, j, k, r))
        if rng.random() < 0.15:  # the creator answers
            author = CommentAuthor("@" + self.dataset.username(p), self.channel_id(p))
        else:
            author = self._fan(rng.randint(0, 50_000))
        text = " ".join(rng.choice(words.WORDS) for _ in range(rng.randint(1, 12)))
        return ReplyTruth(
            index=r, id=self.reply_id(p, j, k, r), parent_id=self.thread_id(p, j, k), video_id=self.video_id(p, j),
            channel_id=self.channel_id(p), text=text, author=author, like_count=int(rng.expovariate(0.7)),
            published_at=written,
            updated_at=written + timedelta(minutes=3) if rng.random() < 0.05 else written,
        )

    # --- subscriptions (see youtube_subscriptions) -------------------------------------------------
    def subscriptions(self, p: int, order: str = "relevance") -> list[int]:
        """Visible subscription indexes ``s`` of channel ``p``, in the order ``subscriptions.list`` serves them."""
        return self.subs.ordered(p, order)

    def subscription(self, p: int, s: int) -> SubscriptionTruth:
        return self.subs.subscription(p, s)

    def subscriptions_private(self, p: int) -> bool:
        return self.subs.private(p)

    def subscription_count(self, p: int) -> int:
        return len(self.subs.ordered(p, "relevance"))

    def subscriptions_after(self, p: int, order: str, after: int | None) -> Iterator[int]:
        """The served order from just past subscription ``after`` (None: from the top)."""
        return self.subs.after(p, order, after)

    def subscription_pages(self, p: int, limit: int, order: str = "relevance") -> int:
        """Calls a client walking every page with ``maxResults=limit`` makes (1 for an empty or private list)."""
        return self.subs.pages(p, limit, order)

    # --- totals (ground truth for tests and the demo) --------------------------------------------
    def totals(self) -> dict[str, int]:
        """Visible channels, videos, shorts, top-level comments (on videos open to comments), replies."""
        key = (self.epoch, frozenset(self.dataset.removed))
        if self._totals is not None and self._totals[0] == key:
            return dict(self._totals[1])
        videos = shorts = comments = replies = 0
        for p in range(self.dataset.spec.profiles):
            for j in self.videos_newest_first(p):
                videos += 1
                shorts += self.is_short(p, j)
                for k in self.threads_newest_first(p, j):
                    comments += 1
                    replies += self.reply_count(p, j, k)
        totals = {"channels": self.dataset.spec.profiles, "videos": videos, "shorts": shorts,
                  "comments": comments, "replies": replies}
        self._totals = (key, totals)
        return dict(totals)


def _three_significant(count: int) -> int:
    """YouTube shows subscriber counts rounded down to three significant digits (123456 -> 123000)."""
    if count < 1000:
        return count
    unit = 10 ** (len(str(count)) - 3)
    return count // unit * unit
