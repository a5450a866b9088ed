"""Instagram's own view of the generated dataset: managed and public accounts, renames, replies, stories.

Profile ``p``, post ``(p, j)`` and top-level comment ``(p, j, k)`` are the ``Dataset``'s, unchanged, so every
network shares one seed and one ``epoch``. What only Instagram has (accounts no token manages, renamed
usernames, hidden like counts, one level of replies, 24-hour stories) is again a pure function of
(seed, indexes, epoch): nothing is held per item.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from socialsync.sandbox import words
from socialsync.sandbox.dataset import REFERENCE_NOW, CommentTruth, Dataset

# Id layout, as the dataset's: a kind prefix and fixed-width indexes, so ids decode without lookups.
_REPLY, _STORY, _COMMENT = "1801", "1792", "1800"
_P, _J, _K, _R, _E, _S = 7, 7, 6, 4, 4, 2
_AUTHOR = "1785"

PUBLIC_ONLY_EVERY = 4  # profiles p with p % 4 == 3 are managed by no token: business discovery only
RENAMED_EVERY = 8  # profiles p with p % 8 == 7 (all public-only) change their username ...
RENAME_EPOCH = 2  # ... at this epoch, to ``<old>_v2``
RENAME_SUFFIX = "_v2"
PERSONAL_PREFIX = "personal_"  # such usernames exist, but are no business or creator account
LIKES_HIDDEN_SHARE = 0.15
STORY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class ReplyTruth(CommentTruth):
    parent_id: str = ""  # the top-level comment's id


@dataclass(frozen=True)
class StoryTruth:
    id: str
    media_type: str  # IMAGE | VIDEO
    media_product_type: str  # STORY
    media_url: str
    thumbnail_url: str | None  # videos only
    permalink: str
    timestamp: datetime
    caption: str | None


class InstagramDataset:
    """Instagram's ground truth over a ``Dataset``, reading its ``epoch`` live (it moves at run time)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.seed = dataset.spec.seed

    @property
    def epoch(self) -> int:
        return self.dataset.epoch

    @property
    def profiles(self) -> int:
        return self.dataset.spec.profiles

    def _rng(self, *key: object) -> random.Random:
        return random.Random("/".join(map(str, (self.seed, "ig", *key))))

    # --- accounts -------------------------------------------------------------------------------
    @staticmethod
    def public_only(p: int) -> bool:
        return p % PUBLIC_ONLY_EVERY == PUBLIC_ONLY_EVERY - 1

    @staticmethod
    def renamed_at(p: int) -> int | None:
        """The epoch profile ``p`` takes its new username at, None for an account never renamed."""
        return RENAME_EPOCH if p % RENAMED_EVERY == RENAMED_EVERY - 1 else None

    def username(self, p: int) -> str:
        """The current username: the dataset's, with ``_v2`` from the rename on (at most 30 characters)."""
        base = self.dataset.username(p)
        renamed = self.renamed_at(p)
        return base + RENAME_SUFFIX if renamed is not None and self.epoch >= renamed else base

    def tracked_id(self, p: int) -> str:
        """How a sync tracks profile ``p``: its IG user id if a token manages it, else ``@username``."""
        return "@" + self.username(p) if self.public_only(p) else self.dataset.profile_id(p)

    def tracked_ids(self) -> list[str]:
        return [self.tracked_id(p) for p in range(self.profiles)]

    def managed_profiles(self) -> list[int]:
        """Every profile some token may manage (the default token manages them all)."""
        return [p for p in range(self.profiles) if not self.public_only(p)]

    @staticmethod
    def is_personal(username: str) -> bool:
        return username.lower().startswith(PERSONAL_PREFIX)

    def parse_username(self, username: str) -> int | None:
        """The profile whose username is ``username`` right now (old usernames of renamed ones: None)."""
        name = username.lower()
        for stem in (name, name.removesuffix(RENAME_SUFFIX)):
            tail = stem.rpartition("_")[2]
            if tail.isdigit() and int(tail) < self.profiles and self.username(int(tail)) == name:
                return int(tail)
        return None

    # --- posts ----------------------------------------------------------------------------------
    def posts_newest_first(self, p: int, before: int | None = None) -> Iterator[int]:
        """Visible posts, the same for owned ``/media`` and business discovery."""
        return self.dataset.posts_newest_first(p, before)

    def likes_hidden(self, p: int, j: int) -> bool:
        """Whether the owner hid the like count: business discovery then gives no ``like_count``."""
        return self._rng("nolikes", p, j).random() < LIKES_HIDDEN_SHARE

    def comments_count(self, p: int, j: int) -> int:
        """Graph's ``comments_count``: visible top-level comments and their visible replies."""
        return self._comments_count(p, j, self.epoch)

    @lru_cache(maxsize=65536)  # noqa: B019 - the dataset lives as long as the server; bounded cache
    def _comments_count(self, p: int, j: int, epoch: int) -> int:
        gone = self.dataset._deleted_comments(p, j, epoch)
        return sum(1 + self._reply_total(p, j, k, epoch) - len(self._deleted_replies(p, j, k, epoch))
                   for k in range(self.dataset._comment_total(p, j, epoch)) if k not in gone)

    # --- comments and replies -------------------------------------------------------------------
    def parse_comment_id(self, node_id: str) -> tuple[int, int, int] | None:
        """``(p, j, k)`` of a visible top-level comment (``Dataset.comment_id``'s layout), else None."""
        if len(node_id) != 4 + _P + _J + _K or not node_id.startswith(_COMMENT) or not node_id.isdigit():
            return None
        p, j, k = int(node_id[4 : 4 + _P]), int(node_id[4 + _P : 4 + _P + _J]), int(node_id[4 + _P + _J :])
        return (p, j, k) if self._comment_visible(p, j, k) else None

    def _comment_visible(self, p: int, j: int, k: int) -> bool:
        return (p < self.profiles and self.dataset.parse_post_id(self.dataset.post_id(p, j)) is not None
                and k < self.dataset.comment_total(p, j) and k not in self.dataset.deleted_comments(p, j))

    @staticmethod
    def reply_id(p: int, j: int, k: int, r: int) -> str:
        return f"{_REPLY}{p:0{_P}d}{j:0{_J}d}{k:0{_K}d}{r:0{_R}d}"

    def parse_reply_id(self, node_id: str) -> tuple[int, int, int, int] | None:
        """``(p, j, k, r)`` of a visible reply of a visible comment, else None."""
        if len(node_id) != 4 + _P + _J + _K + _R or not node_id.startswith(_REPLY) or not node_id.isdigit():
            return None
        comment = self.parse_comment_id(_COMMENT + node_id[4 : -_R])
        r = int(node_id[-_R:])
        if comment is None or r >= self.reply_total(*comment) or r in self.deleted_replies(*comment):
            return None
        return (*comment, r)

    def reply_total(self, p: int, j: int, k: int) -> int:
        """Replies ever written on comment ``k`` up to this epoch (deleted ones included: indexes never move)."""
        return self._reply_total(p, j, k, self.epoch)

    def deleted_replies(self, p: int, j: int, k: int) -> frozenset[int]:
        return self._deleted_replies(p, j, k, self.epoch)

    def replies_oldest_first(self, p: int, j: int, k: int, after: int | None = None) -> Iterator[int]:
        """Visible reply indexes of comment ``k``, oldest first, strictly newer than index ``after``."""
        gone = self.deleted_replies(p, j, k)
        start = 0 if after is None else after + 1
        return (r for r in range(start, self.reply_total(p, j, k)) if r not in gone)

    def reply(self, p: int, j: int, k: int, r: int) -> ReplyTruth:
        """Reply ``r`` of comment ``(p, j, k)``: later indexes are newer, all newer than the comment."""
        rng = self._rng("reply", p, j, k, r)
        comment = self.dataset.comment(p, j, k)
        gap = timedelta(minutes=self._rng("replygap", p, j, k).randint(2, 45))
        born = self._comment_birth(p, j, k, self.epoch) or 0
        days = self._reply_birth(p, j, k, r, born) - born
        if rng.random() < 0.15:  # the account answers its own commenters
            username, author_id = self.username(p), self.dataset.profile_id(p)
        else:
            fan = rng.randint(0, 50_000)
            username, author_id = f"fan_{fan}", f"{_AUTHOR}{fan:0{_P + _J}d}"
        return ReplyTruth(
            id=self.reply_id(p, j, k, r), parent_id=comment.id, post_id=comment.post_id,
            text=" ".join(rng.choice(words.WORDS) for _ in range(rng.randint(1, 12))),
            timestamp=comment.timestamp + gap * (r + 1) + timedelta(days=days),
            username=username, author_id=author_id, like_count=int(rng.expovariate(0.7)),
        )

    def _comment_birth(self, p: int, j: int, k: int, epoch: int) -> int | None:
        """The epoch comment ``k`` was written in, None if not yet written at ``epoch``."""
        e = self.dataset._post_origin(p, j)[0]
        while e <= epoch and self.dataset._comment_total(p, j, e) <= k:
            e += 1
        return e if e <= epoch else None

    def _base_replies(self, p: int, j: int, k: int) -> int:
        """Replies a comment has when written: a long tail, some past what comes inline."""
        rng = self._rng("replies", p, j, k)
        roll = rng.random()
        if roll < 0.55:
            return 0
        return rng.randint(1, 4) if roll < 0.90 else rng.randint(6, 30)

    def _new_replies(self, p: int, j: int, k: int, e: int) -> int:
        rng = self._rng("newreplies", p, j, k, e)
        return rng.randint(1, 3) if rng.random() < 0.1 else 0

    @lru_cache(maxsize=65536)  # noqa: B019
    def _reply_total(self, p: int, j: int, k: int, epoch: int) -> int:
        born = self._comment_birth(p, j, k, epoch)
        if born is None:
            return 0
        return self._base_replies(p, j, k) + sum(self._new_replies(p, j, k, e) for e in range(born + 1, epoch + 1))

    @lru_cache(maxsize=65536)  # noqa: B019
    def _deleted_replies(self, p: int, j: int, k: int, epoch: int) -> frozenset[int]:
        """Each epoch a few comments lose one of their visible replies (never one not yet written)."""
        born = self._comment_birth(p, j, k, epoch)
        if born is None or epoch <= born:
            return frozenset()
        before = self._deleted_replies(p, j, k, epoch - 1)
        rng = self._rng("delreply", p, j, k, epoch)
        if rng.random() >= 0.05:
            return before
        visible = [r for r in range(self._reply_total(p, j, k, epoch - 1)) if r not in before]
        return before | {visible[rng.randrange(len(visible))]} if visible else before

    def _reply_birth(self, p: int, j: int, k: int, r: int, born: int) -> int:
        """The epoch reply ``r`` was written in (``born``, its comment's epoch, for the first replies)."""
        e = born
        while e < self.epoch and self._reply_total(p, j, k, e) <= r:
            e += 1
        return e

    # --- stories --------------------------------------------------------------------------------
    def _story_count(self, p: int, e: int) -> int:
        rng = self._rng("stories", p, e)
        return 0 if rng.random() < 0.3 else rng.randint(1, 3)

    @staticmethod
    def story_id(p: int, e: int, s: int) -> str:
        return f"{_STORY}{p:0{_P}d}{e:0{_E}d}{s:0{_S}d}"

    def parse_story_id(self, node_id: str) -> tuple[int, int, int] | None:
        """``(p, e, s)`` of a story posted on or before this epoch's day (live or expired), else None."""
        if len(node_id) != 4 + _P + _E + _S or not node_id.startswith(_STORY) or not node_id.isdigit():
            return None
        p, e, s = int(node_id[4 : 4 + _P]), int(node_id[4 + _P : 4 + _P + _E]), int(node_id[4 + _P + _E :])
        if p >= self.profiles or self.public_only(p) or e > self.epoch or s >= self._story_count(p, e):
            return None
        return p, e, s

    def stories_of_epoch(self, p: int, e: int) -> list[StoryTruth]:
        """The stories of the 24 hours before ``REFERENCE_NOW + e days``, newest first."""
        if self.public_only(p) or e < 0:
            return []
        count = self._story_count(p, e)
        start = REFERENCE_NOW + timedelta(days=e) - STORY_WINDOW
        offsets = sorted(self._rng("storytimes", p, e).uniform(60.0, STORY_WINDOW.total_seconds() - 60.0)
                         for _ in range(count))
        return [self._story(p, e, s, start + timedelta(seconds=int(offsets[s])))
                for s in range(count - 1, -1, -1)]

    def live_stories(self, p: int) -> list[StoryTruth]:
        """What ``/stories`` shows now: the stories of the current epoch's last 24 hours."""
        return self.stories_of_epoch(p, self.epoch)

    def _story(self, p: int, e: int, s: int, posted: datetime) -> StoryTruth:
        rng = self._rng("story", p, e, s)
        sid = self.story_id(p, e, s)
        video = rng.random() < 0.35
        caption = None if rng.random() < 0.6 else " ".join(rng.choice(words.WORDS) for _ in range(rng.randint(1, 8)))
        return StoryTruth(
            id=sid, media_type="VIDEO" if video else "IMAGE", media_product_type="STORY",
            media_url=f"https://cdn.sandbox.invalid/s/{sid}.{'mp4' if video else 'jpg'}",
            thumbnail_url=f"https://cdn.sandbox.invalid/st/{sid}.jpg" if video else None,
            permalink=f"https://www.instagram.com/stories/{self.username(p)}/{sid}/",
            timestamp=posted, caption=caption,
        )
