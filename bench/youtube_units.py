"""YouTube quota units (= requests: every call is one list call) per scenario, against the sandbox.

    .venv/bin/python bench/youtube_units.py

The dataset is the suite's SMALL one (6 channels); the first sync is compared with the fewest calls
the dataset allows (channels 50 to a call, every page of every list walked once).
"""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the suite's dataset and truth helpers

from socialsync.local import inline
from socialsync.networks.base import ApiCredentials
from socialsync.networks.youtube import NETWORK as YOUTUBE
from socialsync.networks.youtube.client import YouTubeClient
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.storage.engine import warehouse_engine
from tests.integration.conftest import SMALL
from tests.integration.sync_helpers import day
from tests.integration.youtube_truth import calls, calls_since, minimum_calls


def main() -> int:
    with tempfile.TemporaryDirectory() as work, SandboxServer(SandboxConfig(spec=SMALL)) as sandbox:
        data = sandbox.app.state.youtube.data
        ids = [data.channel_id(p) for p in range(SMALL.profiles)]
        engine = warehouse_engine(f"sqlite:///{Path(work) / 'warehouse.db'}")

        def run(what: str, as_of: datetime, **window: Any) -> None:
            before = calls(sandbox.counters)
            client = YouTubeClient(ApiCredentials(f"{sandbox.url}/youtube/v3", "sandbox-key", {}))
            inline.sync(engine, YOUTUBE, client, ids, what, as_of, **window)
            spent = calls_since(sandbox.counters, before)
            print(f"| {what} | {sum(spent.values())} | {', '.join(f'{c} {n}' for c, n in spent.items())} |")

        print(f"{SMALL.profiles} channels, totals {data.totals()}\n")
        print("| scenario | units | by call |\n|---|---|---|")
        run("first sync", day(0))
        fewest = sum(minimum_calls(data, list(range(SMALL.profiles))).values())
        print(f"| (the fewest the dataset allows) | {fewest} | |")
        run("quiet next run (nothing changed)", day(0) + timedelta(hours=6))
        data.dataset.epoch = 1
        run("the next day, incremental", day(1))
        data.dataset.epoch = 2
        run("a day later, full_refresh", day(2), full_refresh=True)
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
