"""A large deterministic dataset derived lazily from a seed: nothing is held in memory.

Every value is a pure function of (seed, indexes), so any page of any profile can be served in
O(page) time and a test can compute the exact ground truth of what a sync must load.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from socialsync.sandbox import words

# The sandbox's "now": generated timestamps lie before it, so runs are reproducible on any day.
REFERENCE_NOW = datetime(2026, 11, 1, tzinfo=UTC)

# Id layout (kind prefix + fixed-width indexes) lets the server decode any id without lookups.
_PROFILE, _POST, _CHILD, _COMMENT, _AUTHOR = "1784", "1790", "1791", "1800", "1785"
_P, _J, _C, _K = 7, 7, 2, 6


@dataclass(frozen=True)
class DatasetSpec:
    """Size and shape of the generated dataset; posts and comments follow long-tailed laws."""

    seed: int = 20261101
    profiles: int = 12
    posts_median: int = 30
    posts_max: int = 2000
    comments_median: int = 4
    comments_max: int = 400
    carousel_max: int = 10


@dataclass(frozen=True)
class ProfileTruth:
    index: int
    id: str
    username: str
    name: str
    biography: str
    followers_count: int
    follows_count: int
    media_count: int
    profile_picture_url: str
    website: str | None


@dataclass(frozen=True)
class MediaTruth:
    id: str
    media_type: str  # IMAGE | VIDEO
    media_url: str
    thumbnail_url: str | None
    position: int


@dataclass(frozen=True)
class PostTruth:
    profile_index: int
    index: int
    id: str
    owner_id: str
    username: str
    caption: str | None
    media_type: str  # IMAGE | VIDEO | CAROUSEL_ALBUM
    media_product_type: str  # FEED | REELS
    media_url: str
    thumbnail_url: str | None
    permalink: str
    timestamp: datetime
    like_count: int
    comments_count: int
    children: tuple[MediaTruth, ...] = field(default=())

    @property
    def media(self) -> tuple[MediaTruth, ...]:
        """The media items a post carries: its children, or itself for a single photo or video."""
        if self.children:
            return self.children
        single = MediaTruth(self.id, self.media_type, self.media_url, self.thumbnail_url, 0)
        return (single,)


@dataclass(frozen=True)
class CommentTruth:
    id: str
    post_id: str
    text: str
    timestamp: datetime
    username: str
    author_id: str
    like_count: int


def graph_time(value: datetime) -> str:
    """Graph API's timestamp form: ``2024-05-01T12:00:00+0000``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


class Dataset:
    """The ground truth the sandbox serves, addressable by index or by id.

    ``epoch`` is the dataset's day: each epoch after 0 adds posts and comments, deletes a few,
    and moves counts, all derived from the seed, so runs before and after a mutation can be
    checked against exact truths.
    """

    def __init__(self, spec: DatasetSpec | None = None, epoch: int = 0) -> None:
        self.spec = spec or DatasetSpec()
        self.epoch = epoch
        self.removed: set[tuple[int, int]] = set()  # posts deleted right now, between two page requests

    def delete_post(self, p: int, j: int) -> None:
        """Delete post ``j`` of profile ``p`` at once (as a user can, in the middle of someone's paging)."""
        self.removed.add((p, j))

    def _rng(self, *key: object) -> random.Random:
        return random.Random("/".join(map(str, (self.spec.seed, *key))))

    # --- ids ------------------------------------------------------------------------------------
    @staticmethod
    def profile_id(p: int) -> str:
        return f"{_PROFILE}{p:0{_P + _J}d}"

    @staticmethod
    def post_id(p: int, j: int) -> str:
        return f"{_POST}{p:0{_P}d}{j:0{_J}d}"

    @staticmethod
    def child_id(p: int, j: int, c: int) -> str:
        return f"{_CHILD}{p:0{_P}d}{j:0{_J}d}{c:0{_C}d}"

    @staticmethod
    def comment_id(p: int, j: int, k: int) -> str:
        return f"{_COMMENT}{p:0{_P}d}{j:0{_J}d}{k:0{_K}d}"

    def parse_profile_id(self, node_id: str) -> int | None:
        if len(node_id) == 4 + _P + _J and node_id.startswith(_PROFILE) and node_id.isdigit():
            p = int(node_id[4:])
            return p if p < self.spec.profiles else None
        return None

    def parse_post_id(self, node_id: str) -> tuple[int, int] | None:
        if len(node_id) == 4 + _P + _J and node_id.startswith(_POST) and node_id.isdigit():
            p, j = int(node_id[4 : 4 + _P]), int(node_id[4 + _P :])
            if p < self.spec.profiles and j < self.post_count(p) and j not in self.deleted_posts(p):
                return p, j
        return None

    def profile_ids(self) -> list[str]:
        return [self.profile_id(p) for p in range(self.spec.profiles)]

    # --- profiles -------------------------------------------------------------------------------
    def post_count(self, p: int) -> int:
        """Posts ever created up to this epoch (deleted ones included: indexes never move)."""
        return self._post_count(p, self.epoch)

    @lru_cache(maxsize=65536)  # noqa: B019 - the dataset lives as long as the server; bounded cache
    def _post_count(self, p: int, epoch: int) -> int:
        return self.base_post_count(p) + sum(self._new_posts(p, e) for e in range(1, epoch + 1))

    def _new_posts(self, p: int, e: int) -> int:
        rng = self._rng("newposts", p, e)
        return 0 if rng.random() < 0.4 else rng.randint(1, 3)

    def _post_origin(self, p: int, j: int) -> tuple[int, int]:
        """The epoch post ``j`` appeared in, and its rank among that epoch's new posts."""
        first = self.base_post_count(p)
        if j < first:
            return 0, j
        for e in range(1, self.epoch + 1):
            new = self._new_posts(p, e)
            if j < first + new:
                return e, j - first
            first += new
        raise IndexError(f"post {j} of profile {p} does not exist at epoch {self.epoch}")

    def deleted_posts(self, p: int) -> frozenset[int]:
        return self._deleted_posts(p, self.epoch) | {j for q, j in self.removed if q == p}

    @lru_cache(maxsize=65536)  # noqa: B019
    def _deleted_posts(self, p: int, epoch: int) -> frozenset[int]:
        gone: set[int] = set()
        base = self.base_post_count(p)
        for e in range(1, epoch + 1):
            rng = self._rng("delpost", p, e)
            if base > 4 and rng.random() < 0.25:
                gone.add(rng.randrange(base - 2))  # an older post, never the newest ones
        return frozenset(gone)

    @lru_cache(maxsize=65536)  # noqa: B019
    def base_post_count(self, p: int) -> int:
        rng = self._rng("posts", p)
        if p % 11 == 5:  # some profiles have never posted: the empty edge must work
            return 0
        count = int(self.spec.posts_median * rng.lognormvariate(0.0, 1.0))
        return max(1, min(self.spec.posts_max, count))

    def profile(self, p: int) -> ProfileTruth:
        rng = self._rng("profile", p)
        username = self.username(p)
        bio = self._text(rng, 6, 16, mention_chance=0.5)
        return ProfileTruth(
            index=p,
            id=self.profile_id(p),
            username=username,
            name=username.replace("_", " ").title(),
            biography=bio,
            followers_count=int(500 * rng.lognormvariate(0.0, 2.0)) + 7 * self.epoch * (p % 5),
            follows_count=rng.randint(0, 3000),
            media_count=self.post_count(p) - len(self.deleted_posts(p)),
            profile_picture_url=f"https://cdn.sandbox.invalid/avatars/{self.profile_id(p)}.jpg",
            website=f"https://{username.replace('_', '')}.example" if rng.random() < 0.6 else None,
        )

    def username(self, p: int) -> str:
        rng = self._rng("username", p)
        return f"{rng.choice(words.ADJECTIVES)}_{rng.choice(words.NOUNS)}_{p}"

    # --- posts ----------------------------------------------------------------------------------
    def post(self, p: int, j: int) -> PostTruth:
        """Post ``j`` of profile ``p``; ``j`` grows with time, so new posts never renumber old ones."""
        rng = self._rng("post", p, j)
        pid = self.post_id(p, j)
        roll = rng.random()
        media_type = "IMAGE" if roll < 0.55 else "VIDEO" if roll < 0.75 else "CAROUSEL_ALBUM"
        product = "REELS" if media_type == "VIDEO" and rng.random() < 0.7 else "FEED"
        children: tuple[MediaTruth, ...] = ()
        if media_type == "CAROUSEL_ALBUM":
            n = rng.randint(2, max(2, self.spec.carousel_max))
            children = tuple(self._child(p, j, c) for c in range(n))
            media_url, thumb = children[0].media_url, None
        else:
            media_url, thumb = self._urls(pid, media_type)
        caption = None if rng.random() < 0.08 else self._text(rng, 3, 30, mention_chance=0.35)
        return PostTruth(
            profile_index=p,
            index=j,
            id=pid,
            owner_id=self.profile_id(p),
            username=self.username(p),
            caption=caption,
            media_type=media_type,
            media_product_type=product,
            media_url=media_url,
            thumbnail_url=thumb,
            permalink=f"https://www.instagram.com/p/{_shortcode(pid)}/",
            timestamp=self.post_time(p, j),
            like_count=int(40 * rng.lognormvariate(0.0, 1.5)) + sum(
                self._rng("likes", p, j, e).randint(0, 5) for e in range(1, self.epoch + 1)),
            comments_count=self.comment_count(p, j),
            children=children,
        )

    def post_time(self, p: int, j: int) -> datetime:
        epoch, rank = self._post_origin(p, j)
        if epoch:  # posted during day ``epoch`` after the reference time
            return REFERENCE_NOW + timedelta(days=epoch - 1, hours=3 * (rank + 1))
        rng = self._rng("gap", p)
        gap_hours = rng.uniform(6.0, 96.0)
        start = REFERENCE_NOW - timedelta(hours=gap_hours * (self.base_post_count(p) + 1))
        jitter = self._rng("jitter", p, j).uniform(0.0, gap_hours * 0.4)
        return (start + timedelta(hours=gap_hours * j + jitter)).replace(microsecond=0)

    def posts_newest_first(self, p: int, before: int | None = None) -> Iterator[int]:
        """Visible post indexes, newest first, strictly older than index ``before`` when given."""
        top = self.post_count(p) if before is None else min(before, self.post_count(p))
        gone = self.deleted_posts(p)
        return (j for j in range(top - 1, -1, -1) if j not in gone)

    def _child(self, p: int, j: int, c: int) -> MediaTruth:
        cid = self.child_id(p, j, c)
        media_type = "VIDEO" if self._rng("child", p, j, c).random() < 0.2 else "IMAGE"
        url, thumb = self._urls(cid, media_type)
        return MediaTruth(cid, media_type, url, thumb, c)

    @staticmethod
    def _urls(media_id: str, media_type: str) -> tuple[str, str | None]:
        if media_type == "VIDEO":
            return (f"https://cdn.sandbox.invalid/v/{media_id}.mp4",
                    f"https://cdn.sandbox.invalid/t/{media_id}.jpg")
        return f"https://cdn.sandbox.invalid/i/{media_id}.jpg", None

    # --- comments -------------------------------------------------------------------------------
    def comment_count(self, p: int, j: int) -> int:
        """Visible comments of post ``j`` (what Graph reports as ``comments_count``)."""
        return self.comment_total(p, j) - len(self.deleted_comments(p, j))

    def comment_total(self, p: int, j: int) -> int:
        """Comments ever written on post ``j`` up to this epoch (indexes never move)."""
        return self._comment_total(p, j, self.epoch)

    @lru_cache(maxsize=65536)  # noqa: B019
    def _comment_total(self, p: int, j: int, epoch: int) -> int:
        born = self._post_origin(p, j)[0]
        return self._base_comments(p, j) + sum(self._new_comments(p, j, e) for e in range(born + 1, epoch + 1))

    def _base_comments(self, p: int, j: int) -> int:
        rng = self._rng("ncomments", p, j)
        if rng.random() < 0.15:
            return 0
        count = int(self.spec.comments_median * rng.lognormvariate(0.0, 1.2))
        return min(self.spec.comments_max, count)

    def _new_comments(self, p: int, j: int, e: int) -> int:
        rng = self._rng("newcomments", p, j, e)
        return rng.randint(1, 4) if rng.random() < 0.08 else 0

    def deleted_comments(self, p: int, j: int) -> frozenset[int]:
        return self._deleted_comments(p, j, self.epoch)

    @lru_cache(maxsize=65536)  # noqa: B019
    def _deleted_comments(self, p: int, j: int, epoch: int) -> frozenset[int]:
        gone: set[int] = set()
        for e in range(1, epoch + 1):
            rng = self._rng("delcomment", p, j, e)
            total = self._comment_total(p, j, e - 1)
            if total and rng.random() < 0.03:
                gone.add(rng.randrange(total))
        return frozenset(gone)

    def comment(self, p: int, j: int, k: int) -> CommentTruth:
        """Comment ``k`` of post ``j``; ``k`` grows with time."""
        rng = self._rng("comment", p, j, k)
        posted = self.post_time(p, j)
        base = self._base_comments(p, j)
        if k < base and posted < REFERENCE_NOW:
            span = max(60.0, (REFERENCE_NOW - posted).total_seconds() * 0.9)
            written = posted + timedelta(seconds=span / (base + 1) * (k + 1))
        else:  # written after the reference time: minutes apart, after the post
            written = max(posted, REFERENCE_NOW) + timedelta(minutes=7 * (k + 1))
        author = rng.randint(0, 50_000)
        return CommentTruth(
            id=self.comment_id(p, j, k),
            post_id=self.post_id(p, j),
            text=self._text(rng, 1, 18, mention_chance=0.2),
            timestamp=written.replace(microsecond=0),
            username=f"fan_{author}",
            author_id=f"{_AUTHOR}{author:0{_P + _J}d}",
            like_count=int(rng.expovariate(0.5)),
        )

    def comments_newest_first(self, p: int, j: int, before: int | None = None) -> Iterator[int]:
        total = self.comment_total(p, j)
        top = total if before is None else min(before, total)
        gone = self.deleted_comments(p, j)
        return (k for k in range(top - 1, -1, -1) if k not in gone)

    # --- texts ----------------------------------------------------------------------------------
    def _text(self, rng: random.Random, low: int, high: int, mention_chance: float) -> str:
        parts = [rng.choice(words.WORDS) for _ in range(rng.randint(low, high))]
        if rng.random() < mention_chance and self.spec.profiles:
            parts.insert(rng.randrange(len(parts) + 1), "@" + self.username(rng.randrange(self.spec.profiles)))
        parts += ["#" + rng.choice(words.HASHTAGS) for _ in range(rng.randint(0, 3))]
        return " ".join(parts)

    # --- totals (ground truth for tests and the demo) --------------------------------------------
    def totals(self) -> dict[str, int]:
        posts = media = comments = 0
        for p in range(self.spec.profiles):
            for j in self.posts_newest_first(p):
                post = self.post(p, j)
                posts += 1
                media += len(post.media)
                comments += post.comments_count
        return {"profiles": self.spec.profiles, "posts": posts, "media": media, "comments": comments}


def _shortcode(media_id: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    n, out = int(media_id), []
    while n:
        n, r = divmod(n, 64)
        out.append(alphabet[r])
    return "".join(reversed(out))
