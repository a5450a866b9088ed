"""YouTube subscriptions over the generated dataset: the channels each channel subscribes to, lazily per channel."""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from socialsync.sandbox import words
from socialsync.sandbox.dataset import REFERENCE_NOW
from socialsync.sandbox.graph_api import walk_pages

if TYPE_CHECKING:
    from socialsync.sandbox.youtube_dataset import Thumbnail, YouTubeDataset

SUBSCRIPTIONS_DEFAULT, SUBSCRIPTIONS_MAX = 5, 50
SUBSCRIPTION_ORDERS = ("relevance", "alphabetical", "unread")  # relevance first: the API's default
PRIVATE_SHARE = 0.15  # channels that keep their subscriptions private
OWN_SHARE = 0.3  # subscriptions that try a channel of the dataset (the rest, and repeats, go outside)
OUTSIDE_POOL = 10**6  # outside channels subscriptions point at, shared by every subscriber
_SUFFIXES = ("TV", "Official", "Daily", "Lab", "Channel", "Stories", "Live", "Clips")


@dataclass(frozen=True)
class SubscriptionTruth:
    subscriber_index: int  # the channel that subscribes
    index: int  # ``s``: grows with time, never reused
    id: str
    channel_id: str  # the channel subscribed to
    channel_index: int | None  # that channel in the dataset; None for an outside channel
    title: str  # the subscribed channel's title
    description: str
    published_at: datetime  # when the subscription was made
    thumbnails: tuple[Thumbnail, ...]
    video_count: int  # the subscribed channel's videos (contentDetails.totalItemCount)


def _hash(*key: object) -> int:
    return int.from_bytes(hashlib.blake2b("/".join(map(str, key)).encode(), digest_size=8).digest(), "big")


class Subscriptions:
    """Subscription ``(p, s)``: channel ``p``'s ``s``-th subscription ever made.

    Epoch 0 holds a long-tailed number per channel; each later epoch adds 0..3 (made on that day) and takes
    back one with ``unsubscribe`` odds. Removed ones are a set, so indexes never move. The API serves them in
    no time order (relevance, alphabetical, unread are hashes and titles), so a new one lands on any page.
    """

    unsubscribe = 0.15

    def __init__(self, youtube: YouTubeDataset) -> None:
        self.yt = youtube
        self.seed = youtube.seed

    def _rng(self, *key: object) -> random.Random:
        return random.Random("/".join(map(str, (self.seed, "yt-subs", *key))))

    def private(self, p: int) -> bool:
        return _hash(self.seed, "subs-private", p) / 2**64 < PRIVATE_SHARE

    # --- which subscriptions exist --------------------------------------------------------------
    def _base_count(self, p: int) -> int:
        rng = self._rng("count", p)
        if rng.random() < 0.1:
            return 0
        return min(300, max(1, int(12 * rng.lognormvariate(0.0, 1.1))))  # most 1..40, a few up to 300

    @lru_cache(maxsize=16384)  # noqa: B019 - bounded, keyed by epoch like the dataset's
    def _state(self, p: int, epoch: int) -> tuple[tuple[int, ...], frozenset[int]]:
        """Where each epoch's subscriptions start (the last entry is the count ever made), and the removed ones."""
        starts, gone = [self._base_count(p)], set()
        for e in range(1, epoch + 1):
            rng = self._rng("day", p, e)
            alive = [s for s in range(starts[-1]) if s not in gone]
            if alive and rng.random() < self.unsubscribe:
                gone.add(rng.choice(alive))  # one made before this day
            starts.append(starts[-1] + rng.randint(0, 3))
        return tuple(starts), frozenset(gone)

    def visible(self, p: int) -> list[int]:
        starts, gone = self._state(p, self.yt.epoch)
        return [s for s in range(starts[-1]) if s not in gone]

    @lru_cache(maxsize=4096)  # noqa: B019
    def _targets(self, p: int, count: int) -> tuple[int, ...]:
        """The dataset channel each of the first ``count`` subscriptions points at, -1 for an outside one.

        A channel is subscribed to once: a draw that repeats one (or is ``p`` itself) goes outside instead.
        """
        profiles, used, out = self.yt.dataset.spec.profiles, set[int](), []
        for s in range(count):
            rng = self._rng("target", p, s)
            q = -1
            if profiles > 1 and rng.random() < OWN_SHARE:
                q = rng.randrange(profiles - 1)
                q = -1 if q + (q >= p) in used else q + (q >= p)
            if q >= 0:
                used.add(q)
            out.append(q)
        return tuple(out)

    def _outside(self, p: int, s: int) -> int:
        """Subscription ``s``'s outside channel: an affine bijection of ``s``, so one channel never repeats."""
        a = _hash(self.seed, "outside-a", p) % OUTSIDE_POOL
        while a % 2 == 0 or a % 5 == 0:  # coprime with 10**6
            a += 1
        return (a * s + _hash(self.seed, "outside-b", p)) % OUTSIDE_POOL

    # --- one subscription -----------------------------------------------------------------------
    def published_at(self, p: int, s: int) -> datetime:
        starts, _ = self._state(p, self.yt.epoch)
        e = bisect_right(starts, s)  # s < starts[0]: epoch 0; else made during day e
        if e == 0:
            created = self.yt.channel(p).published_at
            span = (REFERENCE_NOW - created) * ((s + 1) / (starts[0] + 1))
            jitter = timedelta(seconds=self._rng("jitter", p, s).randrange(3600))
            return (created + span - jitter).replace(microsecond=0)
        rank, count = s - starts[e - 1], starts[e] - starts[e - 1]
        return REFERENCE_NOW + timedelta(days=e - 1, seconds=86400 * (rank + 1) // (count + 1))

    def subscription(self, p: int, s: int) -> SubscriptionTruth:
        starts, _ = self._state(p, self.yt.epoch)
        q = self._targets(p, starts[-1])[s]
        if q >= 0:
            channel = self.yt.channel(q)
            channel_id, title, thumbnails, videos = channel.id, channel.title, channel.thumbnails, channel.video_count
        else:
            x = self._outside(p, s)
            rng = self._rng("outside", x)
            channel_id = self.yt.outside_channel_id(x)
            title = f"{rng.choice(words.ADJECTIVES).title()} {rng.choice(words.NOUNS).title()} {rng.choice(_SUFFIXES)}"
            thumbnails = self.yt._thumbnails("channel", f"https://yt3.sandbox.invalid/{channel_id}")
            videos = int(40 * rng.lognormvariate(0.0, 1.3))
        return SubscriptionTruth(
            subscriber_index=p, index=s, id=self.yt.subscription_id(p, s), channel_id=channel_id,
            channel_index=q if q >= 0 else None, title=title, description="", published_at=self.published_at(p, s),
            thumbnails=thumbnails, video_count=videos)

    # --- the served orders ----------------------------------------------------------------------
    def _key(self, p: int, s: int, order: str) -> tuple[str | int, int]:
        if order == "alphabetical":
            return self.subscription(p, s).title.casefold(), s
        return _hash(self.seed, order, p, s), s

    @lru_cache(maxsize=4096)  # noqa: B019
    def _ordered(self, p: int, order: str, epoch: int) -> tuple[tuple[tuple[str | int, int], ...], tuple[int, ...]]:
        keyed = sorted((self._key(p, s, order), s) for s in self.visible(p))
        return tuple(k for k, _ in keyed), tuple(s for _, s in keyed)

    def ordered(self, p: int, order: str) -> list[int]:
        return list(self._ordered(p, order, self.yt.epoch)[1])

    def after(self, p: int, order: str, after: int | None) -> Iterator[int]:
        keys, ordered = self._ordered(p, order, self.yt.epoch)
        start = 0 if after is None else bisect_right(keys, self._key(p, after, order))
        return iter(ordered[start:])

    def pages(self, p: int, limit: int, order: str) -> int:
        if self.private(p):
            return 1  # one call, answered 403
        limit = min(limit, SUBSCRIPTIONS_MAX)
        return len(walk_pages(lambda after: self.after(p, order, after), self.yt.channel_id(p), limit))
