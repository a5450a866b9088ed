"""TikTok's per-account lists over the generated dataset: followers, following, liked videos, pinned videos."""

from __future__ import annotations

import hashlib
import heapq
import random
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, islice
from typing import TYPE_CHECKING, TypeAlias

from socialsync.sandbox import words
from socialsync.sandbox.dataset import REFERENCE_NOW

if TYPE_CHECKING:
    from socialsync.sandbox.tiktok_dataset import TikTokDataset

LIST_KINDS = ("followers", "following", "liked_videos", "pinned_videos")
PRIVATE_SHARE = 0.15  # accounts hiding one kind of list (drawn per kind)
# Of the newest GONE_WINDOW follows at epoch 0, GONE_SHARE were undone before it (the fan left or was banned):
# they keep their place and the API skips them, so pages come back short, as TikTok's do.
GONE_SHARE, GONE_WINDOW = 0.03, 3000
OWN_MIN = 10  # an account with fewer followers (or follows) at epoch 0 has no dataset account on that list
PINNED_MAX, LIKES_MAX = 3, 1000
_REF, _DAY = int(REFERENCE_NOW.timestamp()), 86400
_OWN_SPAN = 2_000_003  # a prime: follows between dataset accounts lie within 4 * this many seconds before _REF
_FAN_SPACE = 10**9  # fans are fan_0 .. fan_999999999

Entry: TypeAlias = tuple[int, int]  # (Unix time, key); a follow list's key is a fan slot f >= 0 or -1 - q
LikeKey: TypeAlias = tuple[int, int, int]  # (author p, video j, liked_at)


@dataclass(frozen=True)
class FollowTruth:
    username: str
    display_name: str
    followed_at: int  # Unix seconds, distinct within one list
    account_index: int | None  # the dataset's account; None for an outside fan


@dataclass(frozen=True)
class _Timed:
    """A list served newest first by a time cursor: every entry ever made, hidden ones keeping their place."""

    older: Callable[[int | None], Iterator[Entry]]  # newest first, strictly older than the time (None: all)
    newer: Callable[[int], Iterator[Entry]]  # oldest first, at or after the time
    visible: Callable[[int], bool]
    size: int  # entries ever made, hidden ones included


def _hash(*key: object) -> int:
    return int.from_bytes(hashlib.blake2b("/".join(map(str, key)).encode(), digest_size=8).digest(), "big")


def _time_of(entry: Entry) -> int:
    return entry[0]


def _page(timed: _Timed, cursor: int | None, max_count: int, repeat: bool = False) -> tuple[list[Entry], int, bool]:
    """The visible entries among the next ``max_count`` older than ``cursor``, the next cursor, and has_more.

    The next cursor is the time of the last entry the page covers (hidden or not), so a page never ties with
    the next one; under ``repeat`` the last visible entry of the previous page comes again at the top.
    """
    entries = timed.older(cursor)
    covered = list(islice(entries, max_count))
    more = next(entries, None) is not None
    shown = [entry for entry in covered if timed.visible(entry[1])]
    if repeat and cursor is not None:
        earlier = next((entry for entry in timed.newer(cursor) if timed.visible(entry[1])), None)
        shown = shown if earlier is None else [earlier, *shown]
    return shown, covered[-1][0] if covered else cursor or 0, more


def _walk(timed: _Timed, max_count: int, stop: Callable[[list[Entry]], bool]) -> int:
    """Requests a client following the cursor makes until has_more is false or a page ``stop``s it."""
    cursor: int | None = None
    requests = 0
    while True:
        shown, cursor, more = _page(timed, cursor, max_count)
        requests += 1
        if not more or stop(shown):
            return requests


def _fan_name(fan: int) -> str:
    adjective, noun = words.ADJECTIVES[fan % len(words.ADJECTIVES)], words.NOUNS[fan // 7 % len(words.NOUNS)]
    return f"{adjective.title()} {noun.title()} {fan % 1000}"


class TikTokLists:
    """The lists of every account, each a pure function of (seed, indexes, epoch).

    A follow list is a stream of fan slots ``f`` (``fan_N``, N a keyed bijection of ``f``) merged with a few
    follows between the dataset's own accounts (the same moment on both sides). Its size is the account's
    ``follower_count`` / ``following_count`` at every epoch: each day adds follows (timed in that day) and
    takes some back (an unfollow keeps its place, hidden). Likes are kept per account (a few hundred at most)
    over the videos of its favourite accounts; pinned videos are re-chosen now and then.
    """

    def __init__(self, data: TikTokDataset) -> None:
        self.data = data
        self.seed = data.seed

    @property
    def epoch(self) -> int:
        return self.data.epoch

    def _rng(self, *key: object) -> random.Random:
        return random.Random("/".join(map(str, (self.seed, "tt-lists", *key))))

    def _roll(self, *key: object) -> float:
        return _hash(self.seed, *key) / 2**64

    def private(self, p: int, kind: str) -> bool:
        if kind not in LIST_KINDS:
            raise ValueError(f"no list kind {kind!r}")
        return self._roll("private", kind, p) < PRIVATE_SHARE

    # --- follows between the dataset's accounts -------------------------------------------------
    @lru_cache(maxsize=16384)  # noqa: B019 - the dataset lives as long as the server; bounded cache
    def _own_picks(self, q: int) -> tuple[int, ...]:
        """The dataset's accounts ``q`` tries to follow (up to three), before the followed side caps them."""
        profiles = self.data.dataset.spec.profiles
        if profiles < 2 or self.data.follow_count(q, "following", 0) < OWN_MIN:
            return ()
        rng = self._rng("own", q)
        picks = rng.sample(range(profiles - 1), min(profiles - 1, rng.randint(0, 3)))
        return tuple(sorted(x + (x >= q) for x in picks))

    @lru_cache(maxsize=16384)  # noqa: B019
    def _own_followers(self, p: int) -> tuple[int, ...]:
        """The dataset's accounts following ``p``: at most half its followers at epoch 0; they never unfollow."""
        followers = self.data.follow_count(p, "followers", 0)
        fans = [q for q in range(self.data.dataset.spec.profiles) if p in self._own_picks(q)]
        return tuple(fans[: followers // 2 if followers >= OWN_MIN else 0])

    def _own(self, p: int, kind: str) -> tuple[int, ...]:
        if kind == "followers":
            return self._own_followers(p)
        return tuple(q for q in self._own_picks(p) if p in self._own_followers(q))

    def _own_time(self, follower: int, followed: int) -> int:
        """An odd second (fans' epoch-0 follows are even), unique in both lists: ``g`` is injective on accounts."""
        a, b = 1 + _hash(self.seed, "own-a") % (_OWN_SPAN - 1), _hash(self.seed, "own-b") % _OWN_SPAN
        return _REF - 1 - 2 * ((a * follower + b) % _OWN_SPAN + (a * followed + b) % _OWN_SPAN)

    @lru_cache(maxsize=16384)  # noqa: B019
    def _own_entries(self, p: int, kind: str) -> tuple[Entry, ...]:
        """The dataset accounts on the list, newest follow first."""
        times = [(self._own_time(q, p) if kind == "followers" else self._own_time(p, q), -1 - q)
                 for q in self._own(p, kind)]
        return tuple(sorted(times, reverse=True))

    # --- the fan stream -------------------------------------------------------------------------
    @lru_cache(maxsize=16384)  # noqa: B019
    def _fan_start(self, p: int, kind: str) -> tuple[int, int]:
        """Fan slots at epoch 0 (the undone ones included), and the seconds between two (spread over 120..1500 days)."""
        want = self.data.follow_count(p, kind, 0) - len(self._own(p, kind))
        visible = depth = 0
        while visible < want and depth < GONE_WINDOW:
            visible += not self._gone_at_start(p, kind, depth)
            depth += 1
        slots = depth + want - visible
        span = int(self._rng("span", kind, p).uniform(120, 1500) * _DAY)
        return slots, max(1, span // (2 * max(1, slots)))

    def _gone_at_start(self, p: int, kind: str, depth: int) -> bool:
        """Whether the follow ``depth`` places below the newest of epoch 0 was undone before epoch 0."""
        return depth < GONE_WINDOW and self._roll("gone", kind, p, depth) < GONE_SHARE

    @lru_cache(maxsize=16384)  # noqa: B019 - keyed by epoch like the dataset's
    def _fan_days(self, p: int, kind: str, epoch: int) -> tuple[tuple[int, ...], frozenset[int]]:
        """Where each epoch's fan slots start (the last entry: slots ever made), and the slots unfollowed since 0.

        A day takes back 0..2 standing follows and adds what keeps the list the size user info reports.
        """
        starts, gone = [self._fan_start(p, kind)[0]], set[int]()
        own = len(self._own(p, kind))
        for e in range(1, epoch + 1):
            roll = self._roll("unfollows", kind, p, e)
            unfollows = min(self.data.follow_count(p, kind, e - 1) - own, 0 if roll < 0.55 else 1 if roll < 0.85 else 2)
            rng = self._rng("unfollowed", kind, p, e)
            for _ in range(unfollows):
                gone.add(self._standing(p, kind, rng.randrange(starts[-1]), gone, starts[-1]))
            grown = self.data.follow_count(p, kind, e) - self.data.follow_count(p, kind, e - 1)
            starts.append(starts[-1] + grown + unfollows)
        return tuple(starts), frozenset(gone)

    def _standing(self, p: int, kind: str, f: int, gone: set[int], total: int) -> int:
        """The standing follow nearest ``f`` (below first): what an unfollow takes back."""
        base = self._fan_start(p, kind)[0]
        return next(g for g in chain(range(f, -1, -1), range(f + 1, total))
                    if g not in gone and not (g < base and self._gone_at_start(p, kind, base - 1 - g)))

    def _fan_time(self, p: int, kind: str, f: int, starts: tuple[int, ...]) -> int:
        base, gap = self._fan_start(p, kind)
        if f < base:
            return _REF - 2 * gap * (base - f)
        e = bisect_right(starts, f)  # made during day e: starts[e - 1] <= f < starts[e]
        first, count = starts[e - 1], starts[e] - starts[e - 1]
        return _REF + (e - 1) * _DAY + (f - first + 1) * _DAY // (count + 1)

    @lru_cache(maxsize=16384)  # noqa: B019
    def _fan_affine(self, p: int, kind: str) -> tuple[int, int]:
        a = _hash(self.seed, "fan-a", kind, p) % _FAN_SPACE
        while a % 2 == 0 or a % 5 == 0:  # coprime with 10**9: a bijection, so a fan is on a list once
            a += 1
        return a, _hash(self.seed, "fan-b", kind, p) % _FAN_SPACE

    def _follow_timed(self, p: int, kind: str) -> _Timed:
        starts, gone = self._fan_days(p, kind, self.epoch)
        base, total, own = starts[0], starts[-1], self._own_entries(p, kind)

        def time(f: int) -> int:
            return self._fan_time(p, kind, f, starts)

        def older(before: int | None) -> Iterator[Entry]:
            top = total if before is None else bisect_left(range(total), before, key=time)
            mine = (entry for entry in own if before is None or entry[0] < before)
            return heapq.merge(((time(f), f) for f in range(top - 1, -1, -1)), mine, key=_time_of, reverse=True)

        def newer(since: int) -> Iterator[Entry]:
            fans = ((time(f), f) for f in range(bisect_left(range(total), since, key=time), total))
            return heapq.merge(fans, (entry for entry in reversed(own) if entry[0] >= since), key=_time_of)

        def visible(key: int) -> bool:
            return key < 0 or not (key in gone or (key < base and self._gone_at_start(p, kind, base - 1 - key)))

        return _Timed(older, newer, visible, total + len(own))

    def _follow_truth(self, p: int, kind: str, entry: Entry) -> FollowTruth:
        at, key = entry
        if key < 0:
            profile = self.data.dataset.profile(-1 - key)
            return FollowTruth(profile.username, profile.name, at, -1 - key)
        a, b = self._fan_affine(p, kind)
        fan = (a * key + b) % _FAN_SPACE
        return FollowTruth(f"fan_{fan}", _fan_name(fan), at, None)

    # --- liked videos ---------------------------------------------------------------------------
    @lru_cache(maxsize=16384)  # noqa: B019
    def _favourites(self, p: int) -> tuple[int, ...]:
        """The accounts whose videos ``p`` likes (its own among them, sometimes)."""
        profiles = self.data.dataset.spec.profiles
        rng = self._rng("favourites", p)
        return tuple(sorted(rng.sample(range(profiles), min(profiles, rng.randint(1, 6)))))

    def _first_likes(self, p: int) -> list[LikeKey]:
        """Likes given before epoch 0, oldest first, each after its video and a distinct second."""
        rng = self._rng("likes", p, 0)
        pool = [(q, j) for q in self._favourites(p) for j in range(self.data.dataset.base_post_count(q))]
        count = 0 if rng.random() < 0.25 else min(len(pool), LIKES_MAX, int(25 * rng.lognormvariate(0.0, 1.1)))
        timed = []
        for q, j in rng.sample(pool, count):
            made = self.data.create_time(q, j)
            timed.append((made + 1 + int(rng.random() * max(0, _REF - 3600 - made - 1)), q, j))
        likes: list[LikeKey] = []
        for at, q, j in sorted(timed):
            likes.append((q, j, max(at, likes[-1][2] + 1) if likes else at))
        return likes

    def _day_likes(self, p: int, e: int, rng: random.Random, liked: set[tuple[int, int]]) -> list[LikeKey]:
        """Day ``e``'s new likes: 0..3 videos standing that day and never liked before, liked after they were made."""
        dataset, day = self.data.dataset, _REF + (e - 1) * _DAY
        pool = [(q, j) for q in self._favourites(p) for j in range(dataset._post_count(q, e))
                if j not in dataset._deleted_posts(q, e) and (q, j) not in liked]
        wanted = 0 if rng.random() < 0.5 else rng.randint(1, 3)
        chosen = sorted(rng.sample(pool, min(wanted, len(pool))), key=lambda v: self.data.create_time(*v))
        likes: list[LikeKey] = []
        for rank, (q, j) in enumerate(chosen):
            at = max(day + (rank + 1) * _DAY // (len(chosen) + 2), self.data.create_time(q, j) + 60)
            likes.append((q, j, max(at, likes[-1][2] + 1) if likes else at))
        return likes

    @lru_cache(maxsize=4096)  # noqa: B019 - keyed by epoch like the dataset's
    def _likes(self, p: int, epoch: int) -> tuple[tuple[LikeKey, ...], frozenset[int]]:
        """Every like ``p`` gave up to ``epoch``, oldest first (indexes never move), and the ones taken back."""
        likes, gone = self._first_likes(p), set[int]()
        for e in range(1, epoch + 1):
            rng = self._rng("likes", p, e)
            kept = [n for n in range(len(likes)) if n not in gone]
            if kept and rng.random() < 0.2:
                gone.add(rng.choice(kept))
            likes += self._day_likes(p, e, rng, {(q, j) for q, j, _ in likes})
        return tuple(likes), frozenset(gone)

    def _liked_timed(self, p: int) -> _Timed:
        likes, gone = self._likes(p, self.epoch)
        times = [at for _, _, at in likes]

        def older(before: int | None) -> Iterator[Entry]:
            top = len(likes) if before is None else bisect_left(times, before)
            return ((times[n], n) for n in range(top - 1, -1, -1))

        def newer(since: int) -> Iterator[Entry]:
            return ((times[n], n) for n in range(bisect_left(times, since), len(likes)))

        def visible(n: int) -> bool:  # taken back, or its video deleted since
            return n not in gone and self.data.video_visible(likes[n][0], likes[n][1])

        return _Timed(older, newer, visible, len(likes))

    # --- pinned videos --------------------------------------------------------------------------
    def pinned(self, p: int) -> list[int]:
        """0..3 of ``p``'s own videos, chosen on the last day it re-pinned (rarely); deleted ones drop out."""
        day = max((e for e in range(1, self.epoch + 1) if self._roll("repin", p, e) < 0.1), default=0)
        roll = self._roll("pins", p)
        count = 0 if roll < 0.35 else min(PINNED_MAX, 1 + int((roll - 0.35) / 0.65 * PINNED_MAX))
        dataset = self.data.dataset
        standing = [j for j in range(dataset._post_count(p, day)) if j not in dataset._deleted_posts(p, day)]
        chosen = self._rng("pins", p, day).sample(standing, min(count, len(standing)))
        return [j for j in chosen if self.data.video_visible(p, j)]

    # --- what the API and tests use -------------------------------------------------------------
    def follows(self, p: int, kind: str) -> list[FollowTruth]:
        timed = self._follow_timed(p, kind)
        return [self._follow_truth(p, kind, entry) for entry in timed.older(None) if timed.visible(entry[1])]

    def liked(self, p: int) -> list[LikeKey]:
        likes, timed = self._likes(p, self.epoch)[0], self._liked_timed(p)
        return [likes[n] for _, n in timed.older(None) if timed.visible(n)]

    def follow_page(self, p: int, kind: str, cursor: int | None, max_count: int,
                    repeat: bool = False) -> tuple[list[FollowTruth], int, bool]:
        shown, following, more = _page(self._follow_timed(p, kind), cursor, max_count, repeat)
        return [self._follow_truth(p, kind, entry) for entry in shown], following, more

    def liked_page(self, p: int, cursor: int | None, max_count: int,
                   repeat: bool = False) -> tuple[list[LikeKey], int, bool]:
        likes = self._likes(p, self.epoch)[0]
        shown, following, more = _page(self._liked_timed(p), cursor, max_count, repeat)
        return [likes[n] for _, n in shown], following, more

    def pages(self, p: int, kind: str, max_count: int, known: set[str] | None = None) -> int:
        """Requests a walk makes: to the end, or (``known``) until a page shows a known username or video id."""
        if self.private(p, kind) or kind == "pinned_videos":
            return 1  # one call: the refusal, or the whole (unpaged) list
        timed = self._follow_timed(p, kind) if kind != "liked_videos" else self._liked_timed(p)
        if known is None:  # every page covers max_count entries, hidden ones included
            return max(1, -(-timed.size // max_count))
        names = {str(name) for name in known}
        return _walk(timed, max_count, lambda shown: any(self._name(p, kind, entry) in names for entry in shown))

    def _name(self, p: int, kind: str, entry: Entry) -> str:
        if kind == "liked_videos":
            q, j, _ = self._likes(p, self.epoch)[0][entry[1]]
            return self.data.video_id(q, j)
        return self._follow_truth(p, kind, entry).username
