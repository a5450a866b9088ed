"""TikTok's view of the generated dataset: accounts, videos spread over years, comments with their replies.

The lists of an account (followers, following, liked and pinned videos) live in ``tiktok_lists``.

Account ``p`` is profile ``p`` of the ``Dataset`` (its id on TikTok is the dataset's username), a video is
post ``(p, j)`` and a top-level comment is comment ``(p, j, k)``, so every network shares one seed and one
``epoch``. What only TikTok has (create times stretched over years, replies, the filtered entries of a
search, the order of the comment list) is again a pure function of (seed, indexes, epoch).

Ids are 19-digit numbers, as TikTok's are, that decode back to their indexes. This module spells them as
strings; the API sends them as JSON integers, as TikTok does.
"""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import TypeAlias

from socialsync.sandbox import words
from socialsync.sandbox.dataset import REFERENCE_NOW, Dataset
from socialsync.sandbox.tiktok_lists import FollowTruth, LikeKey, TikTokLists

COMMENT_CAP = 1000  # the comment list reaches its 1,000 newest entries and no further
WINDOW_DAYS = 30  # a video query's end_date is at most 30 days after its start_date
# Replies forced onto threads k of the busiest video of account 0, so that its comments and replies pass
# COMMENT_CAP (about 1,150 entries at epoch 0): the one place a client meets the cap.
BUSIEST_REPLIES = {0: 700, 1: 300, 2: 100}
FILTERED_BLOCK = 200  # filtered entries in a row: every page size up to 100 meets a wholly empty page
LONG_HISTORY_EVERY = 3  # accounts p with p % 3 == 1 have videos one to three years old
_REGIONS = ("US", "GB", "DE", "FR", "BR", "JP", "IN", "CA", "MX", "ID")
_REF = int(REFERENCE_NOW.timestamp())
_DAY = 86400
_SPACE, _LEAD = 10**18, 7 * 10**18  # ids are 7 followed by 18 digits: below 2**63, as TikTok's int64 ids

VideoKey: TypeAlias = tuple[int, int]  # (p, j)
CommentKey: TypeAlias = tuple[int, int | None]  # (k, r) on one video: r None for the top comment k itself


@dataclass(frozen=True)
class TikTokUserTruth:
    index: int
    username: str
    display_name: str
    bio_description: str
    avatar_url: str
    is_verified: bool
    follower_count: int
    following_count: int
    likes_count: int
    video_count: int  # visible videos
    bio_url: str  # "" when the bio has no link


@dataclass(frozen=True)
class TikTokVideoTruth:
    account_index: int
    index: int
    id: str
    username: str
    video_description: str  # the post's caption, "" without one
    create_time: int  # Unix seconds
    region_code: str
    view_count: int
    like_count: int
    comment_count: int  # visible comments plus their replies, reachable or not
    share_count: int
    hashtag_names: tuple[str, ...]
    music_id: str


@dataclass(frozen=True)
class TikTokCommentTruth:
    id: str
    video_id: str
    text: str
    like_count: int
    reply_count: int  # 0 on a reply
    parent_comment_id: str  # the top comment's id for a reply; the VIDEO's id for a top comment, as TikTok does
    create_time: int


def _affine(seed: int, kind: str) -> tuple[int, int, int]:
    """A keyed bijection of [0, 10**18): ids look random yet decode without lookups."""
    digest = hashlib.blake2b(f"{seed}/tiktok/{kind}".encode(), digest_size=16).digest()
    a = int.from_bytes(digest[:8], "big") % _SPACE
    while math.gcd(a, 10) != 1:
        a += 1
    return a, int.from_bytes(digest[8:], "big") % _SPACE, pow(a, -1, _SPACE)


def _day_start(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


class TikTokDataset:
    """TikTok's ground truth over a ``Dataset``, sharing its epoch (and its immediate deletions).

    Like ``YouTubeDataset`` it reads the dataset's per-epoch counts (``_post_origin``, ``_comment_total``) so
    that replies are born no earlier than the comment they answer.
    """

    def __init__(self, dataset: Dataset) -> None:
        if dataset.spec.profiles > 10**4:
            raise ValueError("TikTok's comment ids hold at most 10,000 accounts")
        self.dataset = dataset
        self.seed = dataset.spec.seed
        self._video_ids = _affine(self.seed, "video")
        self._comment_ids = _affine(self.seed, "comment")
        self._totals: tuple[tuple[int, frozenset[tuple[int, int]]], dict[str, int]] | None = None
        self._busiest: list[VideoKey | None] = []  # computed once, on first use
        self.lists = TikTokLists(self)

    @property
    def epoch(self) -> int:
        return self.dataset.epoch

    def today(self) -> date:
        """The sandbox's current UTC day: the one new videos of this epoch are posted on."""
        return (REFERENCE_NOW + timedelta(days=self.epoch - 1)).date()

    def _rng(self, *key: object) -> random.Random:
        return random.Random("/".join(map(str, (self.seed, "tt", *key))))

    # --- ids ------------------------------------------------------------------------------------
    def _encode(self, kind: tuple[int, int, int], payload: int) -> str:
        a, b, _ = kind
        return str(_LEAD + (a * payload + b) % _SPACE)

    @staticmethod
    def _decode(kind: tuple[int, int, int], value: str | int) -> int | None:
        text = str(value)
        if not text.isdigit() or len(text) != 19 or not 0 <= int(text) - _LEAD < _SPACE:
            return None
        _, b, inverse = kind
        return (int(text) - _LEAD - b) * inverse % _SPACE

    def video_id(self, p: int, j: int) -> str:
        return self._encode(self._video_ids, p * 10**6 + j)

    def comment_id(self, p: int, j: int, k: int, r: int | None = None) -> str:
        if p >= 10**4 or j >= 10**5 or k >= 10**5 or (r or 0) >= 10**4 - 1:
            raise ValueError(f"comment ({p}, {j}, {k}, {r}) is past the id layout")
        return self._encode(self._comment_ids, ((p * 10**5 + j) * 10**5 + k) * 10**4 + (0 if r is None else r + 1))

    def parse_username(self, username: str) -> int | None:
        _, _, tail = username.lower().rpartition("_")
        if not tail.isdigit() or int(tail) >= self.dataset.spec.profiles:
            return None
        return int(tail) if self.dataset.username(int(tail)) == username.lower() else None

    def parse_video_id(self, value: str | int) -> VideoKey | None:
        """``(p, j)`` of a visible video; None for garbage, unknown and deleted ones."""
        payload = self._decode(self._video_ids, value)
        if payload is None or payload >= 10**11:
            return None
        p, j = divmod(payload, 10**6)
        return (p, j) if self.video_visible(p, j) else None

    def parse_comment_id(self, value: str | int) -> tuple[int, int, int, int | None] | None:
        """``(p, j, k, r)`` of a visible comment (r None) or reply; None otherwise."""
        payload = self._decode(self._comment_ids, value)
        if payload is None:
            return None
        rest, reply = divmod(payload, 10**4)
        rest, k = divmod(rest, 10**5)
        p, j = divmod(rest, 10**5)
        r = None if reply == 0 else reply - 1
        visible = self.video_visible(p, j) and self.comment_visible(p, j, k)
        return (p, j, k, r) if visible and (r is None or r < self.reply_count(p, j, k)) else None

    def video_visible(self, p: int, j: int) -> bool:
        return (p < self.dataset.spec.profiles and j < self.dataset.post_count(p)
                and j not in self.dataset.deleted_posts(p))

    def comment_visible(self, p: int, j: int, k: int) -> bool:
        return k < self.dataset.comment_total(p, j) and k not in self.dataset.deleted_comments(p, j)

    # --- accounts -------------------------------------------------------------------------------
    def user(self, p: int) -> TikTokUserTruth:
        profile = self.dataset.profile(p)
        likes = self._user_rolls(p)[1]
        return TikTokUserTruth(
            index=p, username=profile.username, display_name=profile.name, bio_description=profile.biography,
            avatar_url=f"https://p16-sign.sandbox.invalid/tos-avt/{profile.username}.jpeg",
            is_verified=p % 5 == 0, follower_count=self.follow_count(p, "followers", self.epoch),
            following_count=self.follow_count(p, "following", self.epoch),
            likes_count=likes + self.epoch * (likes // 90 + 17), video_count=self.video_count(p),
            bio_url=profile.website or "",
        )

    @lru_cache(maxsize=16384)  # noqa: B019
    def _user_rolls(self, p: int) -> tuple[int, int, int]:
        """Account ``p``'s followers and likes at epoch 0, and its following (drawn in this order)."""
        rng = self._rng("user", p)
        followers = int(900 * rng.lognormvariate(0.0, 2.1))
        return followers, int(followers * rng.uniform(2.0, 40.0)), rng.randint(0, 2500)

    def follow_count(self, p: int, kind: str, epoch: int) -> int:
        """``follower_count`` (kind ``followers``) or ``following_count`` at ``epoch``: the lists' sizes.

        Followers grow by a fixed number a day; following stays put (each day's new follows make up its unfollows).
        """
        followers, _, following = self._user_rolls(p)
        if kind == "followers":
            return followers + epoch * (followers // 60 + 2 * (p % 7))
        return following

    def video_count(self, p: int) -> int:
        return self.dataset.post_count(p) - len(self.dataset.deleted_posts(p))

    def videos_newest_first(self, p: int, before: int | None = None) -> Iterator[int]:
        """Visible video indexes of account ``p``, newest first, strictly older than ``before`` when given."""
        return self.dataset.posts_newest_first(p, before)

    # --- videos ---------------------------------------------------------------------------------
    @lru_cache(maxsize=4096)  # noqa: B019 - the dataset lives as long as the server; bounded cache
    def _stretch(self, p: int) -> float:
        """How much TikTok spreads account ``p``'s history: a few months, or one to three years."""
        if not self.dataset.base_post_count(p):
            return 1.0
        rng = self._rng("span", p)
        days = rng.uniform(400, 1100) if p % LONG_HISTORY_EVERY == 1 else rng.uniform(70, 300)
        return days * _DAY / max(1.0, (REFERENCE_NOW - self.dataset.post_time(p, 0)).total_seconds())

    def create_time(self, p: int, j: int) -> int:
        """Unix seconds; grows with ``j``. Videos of later epochs keep the dataset's time (after REFERENCE_NOW)."""
        posted = self.dataset.post_time(p, j)
        if self.dataset._post_origin(p, j)[0]:
            return int(posted.timestamp())
        return _REF - int((REFERENCE_NOW - posted).total_seconds() * self._stretch(p))

    def video(self, p: int, j: int) -> TikTokVideoTruth:
        post = self.dataset.post(p, j)
        rng = self._rng("video", p, j)
        base_views, growth, shares = int(400 * rng.lognormvariate(0.0, 2.0)), rng.uniform(0.01, 0.05), rng.random()
        music = rng.randrange(500)
        age = max(0, self.epoch - self.dataset._post_origin(p, j)[0])
        views = max(base_views + age * max(1, int(base_views * growth)), 3 * post.like_count)
        tags = [w[1:] for w in (post.caption or "").split() if w.startswith("#") and len(w) > 1]
        return TikTokVideoTruth(
            account_index=p, index=j, id=self.video_id(p, j), username=post.username,
            video_description=post.caption or "", create_time=self.create_time(p, j),
            region_code=self._rng("region", p).choice(_REGIONS), view_count=views, like_count=post.like_count,
            comment_count=self.comment_count(p, j), share_count=int(views * shares * 0.02) + age,
            hashtag_names=tuple(dict.fromkeys(tags)), music_id=str(6_900_000_000_000_000_000 + music * 7_919_113),
        )

    def busiest_video(self) -> VideoKey | None:
        """The video of account 0 with the most comments at epoch 0: where ``BUSIEST_REPLIES`` live."""
        if not self._busiest:
            base = self.dataset.base_post_count(0) if self.dataset.spec.profiles else 0
            top = max(range(base), key=lambda j: self.dataset._comment_total(0, j, 0)) if base else None
            self._busiest.append(None if top is None else (0, top))
        return self._busiest[0]

    # --- comments and replies -------------------------------------------------------------------
    def comment_count(self, p: int, j: int) -> int:
        """Visible top comments plus their replies (a deleted comment takes its replies along)."""
        total = self.dataset.comment_total(p, j)
        gone = self.dataset.deleted_comments(p, j)
        return sum(1 + self.reply_count(p, j, k) for k in range(total) if k not in gone)

    def reply_count(self, p: int, j: int, k: int) -> int:
        return self._reply_total(p, j, k, self.epoch)

    def _base_replies(self, p: int, j: int, k: int) -> int:
        if (p, j) == self.busiest_video() and k in BUSIEST_REPLIES:
            return BUSIEST_REPLIES[k]
        chance = (roll := self._rng("replies", p, j, k)).random()
        if chance < 0.7:
            return 0
        return roll.randint(1, 3) if chance < 0.92 else roll.randint(4, 15) if chance < 0.99 else roll.randint(16, 80)

    def _new_replies(self, p: int, j: int, k: int, e: int) -> int:
        rng = self._rng("newreplies", p, j, k, e)
        return rng.randint(1, 3) if rng.random() < 0.1 else 0

    def _comment_birth(self, p: int, j: int, k: int) -> int:
        """The epoch comment ``k`` was written in."""
        e = self.dataset._post_origin(p, j)[0]
        while e < self.epoch and self.dataset._comment_total(p, j, e) <= k:
            e += 1
        return e

    @lru_cache(maxsize=65536)  # noqa: B019 - bounded, keyed by epoch like the dataset's
    def _reply_total(self, p: int, j: int, k: int, epoch: int) -> int:
        born = self._comment_birth(p, j, k)
        return self._base_replies(p, j, k) + sum(self._new_replies(p, j, k, e) for e in range(born + 1, epoch + 1))

    def _reply_birth(self, p: int, j: int, k: int, r: int) -> int:
        e = self._comment_birth(p, j, k)
        while e < self.epoch and self._reply_total(p, j, k, e) <= r:
            e += 1
        return e

    @staticmethod
    def _spread(start: int, end: int, rank: int, count: int) -> int:
        """The ``rank``-th of ``count`` moments spread over [start, end), never at ``start`` itself."""
        return start + max(1, (end - start) * (rank + 1) // (count + 1))

    def comment_time(self, p: int, j: int, k: int) -> int:
        """Comments of a day lie within it; a video's first comments lie between it and REFERENCE_NOW."""
        born, e = self.dataset._post_origin(p, j)[0], self._comment_birth(p, j, k)
        first = 0 if e == born else self.dataset._comment_total(p, j, e - 1)
        count = self.dataset._comment_total(p, j, e) - first
        posted = self.create_time(p, j)
        start = posted if e == born else max(posted, _REF + (e - 1) * _DAY)
        return self._spread(start, _REF + e * _DAY, k - first, count)

    def reply_time(self, p: int, j: int, k: int, r: int) -> int:
        written, born, e = self.comment_time(p, j, k), self._comment_birth(p, j, k), self._reply_birth(p, j, k, r)
        first = 0 if e == born else self._reply_total(p, j, k, e - 1)
        count = self._reply_total(p, j, k, e) - first
        start = written if e == born else max(written, _REF + (e - 1) * _DAY)
        return self._spread(start, _REF + e * _DAY, r - first, count)

    def comment(self, p: int, j: int, k: int, r: int | None = None) -> TikTokCommentTruth:
        """Top comment ``k`` of video ``(p, j)``, or its reply ``r`` (``r`` grows with time)."""
        if r is None:
            source = self.dataset.comment(p, j, k)
            return TikTokCommentTruth(
                id=self.comment_id(p, j, k), video_id=self.video_id(p, j), text=source.text,
                like_count=source.like_count, reply_count=self.reply_count(p, j, k),
                parent_comment_id=self.video_id(p, j), create_time=self.comment_time(p, j, k))
        rng = self._rng("reply", p, j, k, r)
        return TikTokCommentTruth(
            id=self.comment_id(p, j, k, r), video_id=self.video_id(p, j),
            text=" ".join(rng.choice(words.WORDS) for _ in range(rng.randint(1, 12))),
            like_count=int(rng.expovariate(0.7)), reply_count=0, parent_comment_id=self.comment_id(p, j, k),
            create_time=self.reply_time(p, j, k, r))

    def comment_slots(self, p: int, j: int) -> tuple[CommentKey, ...]:
        """The comment list of video ``(p, j)``: every comment and reply ever written, NEWEST FIRST.

        Deleted comments (and their replies) keep their place: the API skips them, so pages come back short.
        Ties in time go to the higher ``(k, r)``, a top comment before its replies.
        """
        return self._comment_slots(p, j, self.epoch)

    @lru_cache(maxsize=512)  # noqa: B019
    def _comment_slots(self, p: int, j: int, epoch: int) -> tuple[CommentKey, ...]:
        entries: list[tuple[int, int, int]] = []
        for k in range(self.dataset._comment_total(p, j, epoch)):
            entries.append((self.comment_time(p, j, k), k, -1))
            entries += [(self.reply_time(p, j, k, r), k, r) for r in range(self._reply_total(p, j, k, epoch))]
        entries.sort(key=lambda e: (e[0], e[1], -e[2]), reverse=True)
        return tuple((k, None if r < 0 else r) for _, k, r in entries)

    def comments_in_list_order(self, p: int, j: int) -> list[CommentKey]:
        """Visible comments and replies in the order the comment list serves them, ignoring the cap."""
        return [key for key in self.comment_slots(p, j) if self.comment_visible(p, j, key[0])]

    def reachable_comments(self, p: int, j: int) -> list[CommentKey]:
        """What a client can fetch at all: the visible ones among the first ``COMMENT_CAP`` entries."""
        return [key for key in self.comment_slots(p, j)[:COMMENT_CAP] if self.comment_visible(p, j, key[0])]

    def comment_page(self, p: int, j: int, cursor: int, max_count: int) -> tuple[list[CommentKey], int, bool]:
        """One page of the comment list: visible entries of [cursor, cursor + max_count), next cursor, has_more."""
        slots = self.comment_slots(p, j)
        end = max(cursor, min(cursor + max_count, len(slots)))
        shown = [key for key in slots[cursor:end] if self.comment_visible(p, j, key[0])]
        return shown, end, end < min(len(slots), COMMENT_CAP)

    def comment_pages(self, p: int, j: int, max_count: int) -> list[list[CommentKey]]:
        """Every page a client walking the list gets, asking for at most ``COMMENT_CAP - cursor`` near the cap."""
        pages, cursor, more = [], 0, True
        while more:
            shown, cursor, more = self.comment_page(p, j, cursor, min(max_count, COMMENT_CAP - cursor))
            pages.append(shown)
        return pages

    # --- video search ---------------------------------------------------------------------------
    def filtered_before(self, p: int, j: int) -> int:
        """Entries TikTok's index holds just before video ``(p, j)`` but filters out (private, under review)."""
        if (p, j) == self.busiest_video():
            return FILTERED_BLOCK
        roll = self._rng("filtered", p, j).random()
        return FILTERED_BLOCK if roll < 0.02 else 1 + int(roll * 1000) % 3 if roll < 0.15 else 0

    def videos_between(self, p: int, start: date, end: date) -> range:
        """Indexes of account ``p``'s videos (deleted ones too) created on UTC days ``start`` to ``end``."""
        every = range(self.dataset.post_count(p))
        low = bisect_left(every, _day_start(start), key=lambda j: self.create_time(p, j))
        return range(low, bisect_left(every, _day_start(end) + _DAY, lo=low, key=lambda j: self.create_time(p, j)))

    def search_slots(self, accounts: Sequence[int], start: date, end: date) -> tuple[VideoKey | None, ...]:
        """What a video query over ``accounts`` and days ``start``..``end`` pages through, newest first.

        None is an entry TikTok filters out; deleted videos keep their place too (the API skips them).
        """
        return self._search_slots(tuple(sorted(set(accounts))), start, end, self.epoch)

    @lru_cache(maxsize=256)  # noqa: B019
    def _search_slots(self, accounts: tuple[int, ...], start: date, end: date, epoch: int
                      ) -> tuple[VideoKey | None, ...]:
        found = sorted(((self.create_time(p, j), p, j) for p in accounts for j in self.videos_between(p, start, end)),
                       reverse=True)
        slots: list[VideoKey | None] = []
        for _, p, j in found:
            slots += [None] * self.filtered_before(p, j)
            slots.append((p, j))
        tail = hashlib.blake2b(f"{self.seed}/{accounts}/{start}/{end}".encode(), digest_size=1).digest()[0] % 3
        return (*slots, *[None] * tail)

    def query_page(self, slots: Sequence[VideoKey | None], cursor: int, max_count: int
                   ) -> tuple[list[VideoKey], int, bool]:
        """One page of a search: the visible videos of [cursor, cursor + max_count), next cursor, has_more."""
        end = max(cursor, min(cursor + max_count, len(slots)))
        shown = [key for key in slots[cursor:end] if key is not None and self.video_visible(*key)]
        return shown, end, end < len(slots)

    def query_pages(self, accounts: Sequence[int], start: date, end: date, max_count: int) -> list[list[VideoKey]]:
        """Every page a client following cursor and search_id until has_more is false gets (at least one)."""
        slots, pages, cursor, more = self.search_slots(accounts, start, end), [], 0, True
        while more:
            shown, cursor, more = self.query_page(slots, cursor, max_count)
            pages.append(shown)
        return pages

    def videos_in_window(self, accounts: Sequence[int], start: date, end: date) -> list[VideoKey]:
        return [key for page in self.query_pages(accounts, start, end, 100) for key in page]

    def first_video_day(self, p: int) -> date | None:
        """The UTC day of account ``p``'s oldest visible video."""
        oldest = min(self.videos_newest_first(p), default=None)
        return None if oldest is None else datetime.fromtimestamp(self.create_time(p, oldest), UTC).date()

    @staticmethod
    def covering_windows(first: date, last: date) -> list[tuple[date, date]]:
        """The fewest query windows covering days ``first``..``last``, newest first."""
        windows: list[tuple[date, date]] = []
        while last >= first:
            start = max(first, last - timedelta(days=WINDOW_DAYS))
            windows.append((start, last))
            last = start - timedelta(days=1)
        return windows

    # --- lists (see tiktok_lists) ---------------------------------------------------------------
    def followers(self, p: int) -> list[FollowTruth]:
        """Account ``p``'s followers, newest follow first (as ``user/followers`` serves them)."""
        return self.lists.follows(p, "followers")

    def following(self, p: int) -> list[FollowTruth]:
        return self.lists.follows(p, "following")

    def liked_videos(self, p: int) -> list[LikeKey]:
        """``(author, j, liked_at)`` of the visible videos account ``p`` likes, newest like first."""
        return self.lists.liked(p)

    def pinned_videos(self, p: int) -> list[int]:
        """Indexes ``j`` of account ``p``'s own videos it pins, in the order shown."""
        return self.lists.pinned(p)

    def list_private(self, p: int, kind: str) -> bool:
        """Whether account ``p`` hides its list ``kind`` (followers, following, liked_videos, pinned_videos)."""
        return self.lists.private(p, kind)

    def list_pages(self, p: int, kind: str, max_count: int) -> int:
        """Requests a client walking the whole list makes (1 for an empty, private or pinned list)."""
        return self.lists.pages(p, kind, max_count)

    def list_pages_until(self, p: int, kind: str, max_count: int, known: set[str]) -> int:
        """Requests a walk makes until a page shows a known entry (a username, or a video id for videos)."""
        return self.lists.pages(p, kind, max_count, known)

    # --- totals (ground truth for tests and the demo) --------------------------------------------
    def totals(self) -> dict[str, int]:
        """Accounts, visible videos, top comments, replies, and the comments and replies reachable under the cap."""
        key = (self.epoch, frozenset(self.dataset.removed))
        if self._totals is not None and self._totals[0] == key:
            return dict(self._totals[1])
        videos = comments = replies = reachable = 0
        for p in range(self.dataset.spec.profiles):
            for j in self.videos_newest_first(p):
                videos += 1
                for k in range(self.dataset.comment_total(p, j)):
                    if self.comment_visible(p, j, k):
                        comments += 1
                        replies += self.reply_count(p, j, k)
                reachable += len(self.reachable_comments(p, j))
        totals = {"accounts": self.dataset.spec.profiles, "videos": videos, "comments": comments,
                  "replies": replies, "reachable_comments": reachable}
        self._totals = (key, totals)
        return dict(totals)
