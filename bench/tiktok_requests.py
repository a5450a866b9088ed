"""TikTok Research API requests and records per scenario, against the sandbox.

    .venv/bin/python bench/tiktok_requests.py

The dataset is the suite's SMALL one (6 accounts, one of them with a video past the 1,000-comment
cap); the first sync is compared with the fewest requests the dataset allows (every account in one
video query, windows newest first until each has seen all its videos).
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
from socialsync.networks.tiktok import NETWORK as TIKTOK
from socialsync.networks.tiktok.client import TikTokClient
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.planning import track_entities
from tests.integration.conftest import SMALL
from tests.integration.sync_helpers import day
from tests.integration.tiktok_truth import calls, calls_since, first_sync_requests

OPTIONS = {"login": "sandbox-client", "horizon_days": 1100}


def main() -> int:
    with tempfile.TemporaryDirectory() as work, SandboxServer(SandboxConfig(spec=SMALL)) as sandbox:
        data = sandbox.app.state.tiktok.data
        ids = [data.user(p).username for p in range(SMALL.profiles)]
        engine = warehouse_engine(f"sqlite:///{Path(work) / 'warehouse.db'}")
        with engine.begin() as conn:
            track_entities(conn, "tiktok", ids, day(0))

        def run(what: str, as_of: datetime, **window: Any) -> None:
            before, records = calls(sandbox.counters), sandbox.counters["tiktok:records"]
            client = TikTokClient(ApiCredentials(f"{sandbox.url}/tiktok/v2", "sandbox-secret", OPTIONS))
            inline.sync(engine, TIKTOK, client, ids, what, as_of, **window)
            spent = calls_since(sandbox.counters, before)
            print(f"| {what} | {sum(spent.values())} | {sandbox.counters['tiktok:records'] - records} | "
                  f"{', '.join(f'{c} {n}' for c, n in spent.items())} |")

        print(f"{SMALL.profiles} accounts, totals {data.totals()}\n")
        print("| scenario | requests | records | by call |\n|---|---|---|---|")
        run("first sync", day(0))
        fewest = first_sync_requests(data, list(range(SMALL.profiles)), day(0).date())
        print(f"| (the fewest the dataset allows) | {sum(fewest.values())} | | |")
        run("quiet next run (nothing changed)", day(0) + timedelta(hours=6))
        data.dataset.epoch = 1
        run("the next day, incremental", day(1))
        data.dataset.epoch = 2
        run("a day later, full_refresh", day(2), full_refresh=True)
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
