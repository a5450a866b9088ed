"""Requests per scenario of the lists under a profile: TikTok's followers, following, liked and pinned
videos, YouTube's subscriptions.

    .venv/bin/python bench/list_requests.py

The dataset is the suite's SMALL one; each scenario syncs only the lists (the profile and its lists,
no posts walk) and prints what it cost next to the fewest requests the dataset allows: every page of
each walked list on a first sync or a complete walk, on a day between complete walks only the pages
up to the first known follow or like, and one whole answer a day of each account's pinned videos.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the suite's dataset and truth helpers

from socialsync.local import inline
from socialsync.networks.base import ApiCredentials
from socialsync.networks.tiktok import NETWORK as TIKTOK
from socialsync.networks.tiktok.client import MAX_PAGE, TikTokClient
from socialsync.networks.youtube import NETWORK as YOUTUBE
from socialsync.networks.youtube.client import MAX_SUBSCRIPTIONS_PAGE, YouTubeClient
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.storage.engine import warehouse_engine
from tests.integration.conftest import SMALL
from tests.integration.sync_helpers import day
from tests.integration.tiktok_truth import LIST_KINDS, walked

SCOPE = frozenset({"profile", "subscriptions", "likes", "pinned"})
KINDS = (*LIST_KINDS, "liked_videos")  # the paged lists; pinned_videos comes whole


def main() -> int:
    with tempfile.TemporaryDirectory() as work, SandboxServer(SandboxConfig(spec=SMALL)) as sandbox:
        tiktok, youtube = sandbox.app.state.tiktok.data, sandbox.app.state.youtube.data
        accounts = list(range(SMALL.profiles))
        users = [tiktok.user(p).username for p in accounts]
        channels = [youtube.channel_id(p) for p in accounts]
        engine = warehouse_engine(f"sqlite:///{Path(work) / 'warehouse.db'}")
        counters = [f"tiktok:{kind}" for kind in (*KINDS, "pinned_videos")] + ["youtube:subscriptions"]

        def run(what: str, as_of: datetime, fewest: dict[str, int], **window: Any) -> None:
            before = {c: sandbox.counters[c] for c in counters}
            tt = TikTokClient(ApiCredentials(f"{sandbox.url}/tiktok/v2", "sandbox-secret", {"login": "sandbox-client"}))
            inline.sync(engine, TIKTOK, tt, users, what, as_of, quota_units=100_000, scope=SCOPE, **window)
            yt = YouTubeClient(ApiCredentials(f"{sandbox.url}/youtube/v3", "sandbox-key", {}))
            inline.sync(engine, YOUTUBE, yt, channels, what, as_of, scope=SCOPE, **window)
            spent = {c: sandbox.counters[c] - before[c] for c in counters}
            print(f"| {what} | " + " | ".join(f"{spent[c]} ({fewest[c]})" for c in counters) + " |")

        def listed(p: int, kind: str) -> bool:  # asked at all: a private list answers one refusal
            return kind == "liked_videos" or tiktok.list_private(p, kind) or walked(tiktok, p, kind)

        def complete() -> dict[str, int]:
            out = {f"tiktok:{kind}": sum(tiktok.list_pages(p, kind, MAX_PAGE) for p in accounts if listed(p, kind))
                   for kind in KINDS}
            out["tiktok:pinned_videos"] = len(accounts)
            out["youtube:subscriptions"] = sum(youtube.subscription_pages(p, MAX_SUBSCRIPTIONS_PAGE) for p in accounts)
            return out

        def until_known(known: dict[tuple[int, str], set[str]]) -> dict[str, int]:
            out = {f"tiktok:{kind}": sum(tiktok.list_pages_until(p, kind, MAX_PAGE, known[(p, kind)]) for p in accounts
                                         if listed(p, kind)) for kind in KINDS}
            out["tiktok:pinned_videos"] = len(accounts)
            out["youtube:subscriptions"] = complete()["youtube:subscriptions"]  # no time order: always whole
            return out

        def known() -> dict[tuple[int, str], set[str]]:
            out = {(p, kind): {f.username for f in (tiktok.followers(p) if kind == "followers"
                                                    else tiktok.following(p))}
                   for p in accounts for kind in LIST_KINDS}
            out.update({(p, "liked_videos"): {tiktok.video_id(a, j) for a, j, _ in tiktok.liked_videos(p)}
                        for p in accounts})
            return out

        print(f"{SMALL.profiles} TikTok accounts and YouTube channels; each cell: requests spent (the fewest)\n")
        print("| scenario | " + " | ".join(counters) + " |\n|---|" + "---|" * len(counters))
        run("first sync", day(0), complete())
        run("quiet next day (nothing changed)", day(1), until_known(known()))
        held = known()
        tiktok.dataset.epoch = 2
        run("two days of follows, unfollows, likes and unlikes", day(2), until_known(held))
        run("complete walk (full_refresh)", day(2), complete(), full_refresh=True)
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
