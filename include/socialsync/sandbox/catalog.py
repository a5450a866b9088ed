"""What the sandbox serves for each network it speaks: the entities to track and the truth to expect.

The demo walks the network registry and asks this catalog for each network; a registered network
the sandbox does not speak is named in a clear error, never skipped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from socialsync.sandbox.dataset import Dataset
from socialsync.sandbox.instagram_dataset import InstagramDataset
from socialsync.sandbox.tiktok_dataset import TikTokDataset
from socialsync.sandbox.youtube_dataset import YouTubeDataset


@dataclass(frozen=True)
class SandboxNetwork:
    entity_ids: Callable[[Dataset], list[str]]
    expected_counts: Callable[[Dataset], dict[str, int]]  # rows each warehouse table should hold


def _instagram_ids(dataset: Dataset) -> list[str]:
    return InstagramDataset(dataset).tracked_ids()  # owned accounts by id, public ones by @username


def _instagram_counts(dataset: Dataset) -> dict[str, int]:
    """A first sync's rows: every account's profile and media, an owned account's comments with their
    replies and its live stories (business discovery gives neither)."""
    ig = InstagramDataset(dataset)
    totals = dataset.totals()
    owned = ig.managed_profiles()
    captions = sum(dataset.post(p, j).caption is not None
                   for p in range(dataset.spec.profiles) for j in dataset.posts_newest_first(p))
    stories = [story for p in owned for story in ig.live_stories(p)]
    comments = sum(ig.comments_count(p, j) for p in owned for j in dataset.posts_newest_first(p))
    return {"profiles": totals["profiles"], "follows": 0, "likes": 0, "posts": totals["posts"] + len(stories),
            "media": totals["media"] + len(stories), "comments": comments,
            "enrichments (ml)": dataset.spec.profiles + captions + sum(s.caption is not None for s in stories),
            "enrichments (vision)": totals["media"] + len(stories), "sync_jobs succeeded": dataset.spec.profiles}


def _youtube_ids(dataset: Dataset) -> list[str]:
    data = YouTubeDataset(dataset)
    return [data.channel_id(p) for p in range(dataset.spec.profiles)]


def _youtube_counts(dataset: Dataset) -> dict[str, int]:
    data = YouTubeDataset(dataset)
    totals = data.totals()
    # The channels each public list subscribes to (a private one is skipped, its job still succeeds).
    follows = sum(len(data.subscriptions(p)) for p in range(dataset.spec.profiles) if not data.subscriptions_private(p))
    # Every video has a title (its caption) and one media item (the video, with its thumbnail).
    return {"profiles": totals["channels"], "follows": follows, "likes": 0, "posts": totals["videos"],
            "media": totals["videos"],
            "comments": totals["comments"] + totals["replies"],
            "enrichments (ml)": totals["channels"] + totals["videos"], "enrichments (vision)": totals["videos"],
            "sync_jobs succeeded": totals["channels"]}


def _tiktok_ids(dataset: Dataset) -> list[str]:
    return [dataset.username(p) for p in range(dataset.spec.profiles)]  # TikTok's research API keys on usernames


def _tiktok_counts(dataset: Dataset) -> dict[str, int]:
    data = TikTokDataset(dataset)
    totals = data.totals()
    # An account with a video past the 1,000-comment cap ends partial: its job vouches for what is reachable.
    capped = len({p for p in range(dataset.spec.profiles) for j in data.videos_newest_first(p)
                  if len(data.comments_in_list_order(p, j)) > len(data.reachable_comments(p, j))})
    described = sum(data.video(p, j).video_description != ""
                    for p in range(dataset.spec.profiles) for j in data.videos_newest_first(p))
    # Comments and replies past the comment list's 1,000-entry cap cannot be fetched, so cannot be loaded.
    return {"profiles": totals["accounts"], "follows": _tiktok_follows(data), "likes": _tiktok_likes(data),
            "posts": totals["videos"], "media": totals["videos"],
            "comments": totals["reachable_comments"], "enrichments (ml)": totals["accounts"] + described,
            "enrichments (vision)": totals["videos"], "sync_jobs succeeded": totals["accounts"] - capped,
            "sync_jobs other": capped}


# The ``max_list_items`` of the sandbox's tiktok_api connection in airflow_settings.yaml (what make demo uses).
DEMO_MAX_LIST_ITEMS = 1000


def _tiktok_follows(data: TikTokDataset) -> int:
    """Follows of every list a sync walks (public, within the demo's max_list_items), each pair once:
    two of the dataset's accounts following each other show on both sides."""
    pairs = set()
    for p in range(data.dataset.spec.profiles):
        me = data.user(p).username
        for kind in ("followers", "following"):
            if data.list_private(p, kind) or data.follow_count(p, kind, data.dataset.epoch) > DEMO_MAX_LIST_ITEMS:
                continue
            for follow in data.followers(p) if kind == "followers" else data.following(p):
                pairs.add((follow.username, me) if kind == "followers" else (me, follow.username))
    return len(pairs)


def _tiktok_likes(data: TikTokDataset) -> int:
    return sum(len(data.liked_videos(p)) for p in range(data.dataset.spec.profiles)
               if not data.list_private(p, "liked_videos"))


CATALOG: dict[str, SandboxNetwork] = {
    "instagram": SandboxNetwork(_instagram_ids, _instagram_counts),
    "youtube": SandboxNetwork(_youtube_ids, _youtube_counts),
    "tiktok": SandboxNetwork(_tiktok_ids, _tiktok_counts),
}


def sandbox_network(name: str) -> SandboxNetwork:
    try:
        return CATALOG[name]
    except KeyError:
        raise KeyError(f"the sandbox does not speak {name!r}'s API (it serves {', '.join(sorted(CATALOG))})") from None
