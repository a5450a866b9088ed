"""kill -9 in the middle of a TikTok video walk loses nothing and asks again for at most the one
answer that was in flight: the walk's window, cursor and search id were committed with each answer."""

from __future__ import annotations

from sqlalchemy import func, select

from socialsync.extract import runner
from socialsync.local import inline
from socialsync.networks.base import ApiCredentials
from socialsync.networks.tiktok import NETWORK as TIKTOK
from socialsync.networks.tiktok.client import TikTokClient
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.sandbox.tiktok_dataset import TikTokDataset
from socialsync.storage import jobs as bookkeeping
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.schema import raw_pages
from socialsync.transform.pipeline import normalize_jobs
from tests.conftest import ROOT
from tests.integration.conftest import SMALL
from tests.integration.sync_helpers import SCOPE, clock, day, kill_when
from tests.integration.tiktok_truth import (
    LIST_KINDS,
    assert_tiktok_matches,
    first_sync_requests,
    follow_truth,
    held_follows,
    held_names,
    walked,
)

PAGE = 10
KILL_AFTER = 12  # committed video pages (a page per account an answer had videos of)
OPTIONS = {"page_size": PAGE, "login": "sandbox-client", "horizon_days": 1100}

CHILD = """
import sys
from datetime import UTC, datetime
from socialsync.extract import runner
from socialsync.networks.base import ApiCredentials
from socialsync.networks.tiktok import NETWORK
from socialsync.networks.tiktok.client import TikTokClient
from socialsync.storage import jobs
from socialsync.storage.engine import warehouse_engine
url, base, run_id, as_of = sys.argv[1:5]
engine = warehouse_engine(url)
with engine.connect() as conn:
    batch = jobs.jobs_in_batch(conn, "tiktok", run_id, 0)
client = TikTokClient(ApiCredentials(base, "sandbox-secret", OPTIONS))
window = runner.ExtractWindow(scope=frozenset({"profile", "posts", "comments"}),
                              as_of=datetime.fromisoformat(as_of))
runner.extract_posts(engine, NETWORK, client, batch, window, lambda: datetime.now(UTC))
""".replace("OPTIONS", repr(OPTIONS))


def _video_pages(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(raw_pages).where(raw_pages.c.kind == "posts")))


def test_sigkill_mid_walk_then_retry_loses_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = warehouse_engine(url)
    with SandboxServer(SandboxConfig(spec=SMALL, latency_ms=40)) as sandbox:
        data: TikTokDataset = sandbox.app.state.tiktok.data
        accounts = list(range(data.dataset.spec.profiles))
        inline.open_batch(engine, "tiktok", [data.user(p).username for p in accounts], "run", day(0))
        kill_when(CHILD, [url, f"{sandbox.url}/tiktok/v2", "run", day(0).isoformat()], ROOT,
                  lambda: _video_pages(engine) >= KILL_AFTER)
        queries_at_kill = sandbox.counters["tiktok:video_query"]

        with engine.connect() as conn:
            jobs = bookkeeping.jobs_in_batch(conn, "tiktok", "run", 0)
        client = TikTokClient(ApiCredentials(f"{sandbox.url}/tiktok/v2", "sandbox-secret", OPTIONS))
        window = runner.ExtractWindow(scope=SCOPE, as_of=day(0))
        runner.extract_posts(engine, TIKTOK, client, jobs, window, clock)
        runner.extract_comments(engine, TIKTOK, client, jobs, window, clock)
        normalize_jobs(engine, TIKTOK, [job.id for job in jobs])

        fewest = first_sync_requests(data, accounts, day(0).date(), PAGE)["video_query"]
        assert 0 < queries_at_kill < fewest
        assert sandbox.counters["tiktok:video_query"] <= fewest + 1  # at most the answer in flight, again
        assert_tiktok_matches(engine, data)


LISTS_CHILD = CHILD.replace('frozenset({"profile", "posts", "comments"})', 'frozenset({"profile", "subscriptions"})')


def _list_pages(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(raw_pages).where(
            raw_pages.c.kind.in_(LIST_KINDS))))


def test_sigkill_mid_follower_walks_then_retry_loses_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Followers and following lists of every account walked at once, killed mid-walk: the retry goes on
    from each list's committed cursor, asking again at most the one page each list had in flight."""
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = warehouse_engine(url)
    with SandboxServer(SandboxConfig(spec=SMALL, latency_ms=40)) as sandbox:
        data: TikTokDataset = sandbox.app.state.tiktok.data
        accounts = list(range(data.dataset.spec.profiles))
        lists = [(p, kind) for p in accounts for kind in LIST_KINDS if walked(data, p, kind)]
        fewest = sum(data.list_pages(p, kind, 100) for p, kind in lists)
        assert fewest > 30
        scope = frozenset({"profile", "subscriptions"})
        inline.open_batch(engine, "tiktok", [data.user(p).username for p in accounts], "run", day(0), scope=scope)
        kill_when(LISTS_CHILD, [url, f"{sandbox.url}/tiktok/v2", "run", day(0).isoformat()], ROOT,
                  lambda: _list_pages(engine) >= 20)
        asked_at_kill = sum(sandbox.counters[f"tiktok:{kind}"] for kind in LIST_KINDS)

        with engine.connect() as conn:
            jobs = bookkeeping.jobs_in_batch(conn, "tiktok", "run", 0)
        client = TikTokClient(ApiCredentials(f"{sandbox.url}/tiktok/v2", "sandbox-secret", OPTIONS))
        runner.extract_posts(engine, TIKTOK, client, jobs, runner.ExtractWindow(scope=scope, as_of=day(0)), clock)
        normalize_jobs(engine, TIKTOK, [job.id for job in jobs])

        private = sum(1 for p in accounts for kind in LIST_KINDS if data.list_private(p, kind))
        asked = sum(sandbox.counters[f"tiktok:{kind}"] for kind in LIST_KINDS) - private
        assert 0 < asked_at_kill < fewest + private
        assert asked <= fewest + len(lists)  # at most a page in flight per list, asked again
        assert _list_pages(engine) == fewest  # every page stored once
        assert held_names(held_follows(engine), data, accounts) == follow_truth(data, accounts)
