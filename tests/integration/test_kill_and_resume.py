"""kill -9 in the middle of an extract loses nothing and re-fetches at most one page."""

from __future__ import annotations

from sqlalchemy import func, select

from socialsync.extract import runner
from socialsync.sandbox.dataset import Dataset, DatasetSpec
from socialsync.sandbox.graph_api import walk_pages
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.storage import jobs as bookkeeping
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.schema import raw_pages
from socialsync.transform.pipeline import normalize_jobs
from tests.conftest import ROOT
from tests.hostile import HostileProxy
from tests.integration.sync_helpers import INSTAGRAM, SCOPE, client_for, clock, day, kill_when, open_batch
from tests.integration.truth import assert_warehouse_matches

PAGE = 5
KILL_AFTER = 8  # committed post pages, across the profiles in flight

# The extract task's body, as a worker process would run it.
CHILD = """
import sys
from datetime import UTC, datetime
from socialsync.extract import runner
from socialsync.networks import get_network
from socialsync.networks.base import ApiCredentials
from socialsync.networks.instagram.client import InstagramClient
from socialsync.storage import jobs
from socialsync.storage.engine import warehouse_engine
url, base, run_id, as_of = sys.argv[1:5]
engine = warehouse_engine(url)
with engine.connect() as conn:
    batch = jobs.jobs_in_batch(conn, "instagram", run_id, 0)
client = InstagramClient(ApiCredentials(base, "sandbox-token", {"page_size": PAGE}))
window = runner.ExtractWindow(scope=frozenset({"profile", "posts", "comments"}),
                              as_of=datetime.fromisoformat(as_of))
runner.extract_posts(engine, get_network("instagram"), client, batch, window, lambda: datetime.now(UTC))
""".replace("PAGE", str(PAGE))


def _posts_pages(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(raw_pages).where(raw_pages.c.kind == "posts")))


def test_sigkill_mid_extract_then_retry_loses_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Four profiles in flight at once; killed mid-pass, each re-fetches at most the one page it had
    in flight (counted per profile from the requests a proxy saw)."""
    spec = DatasetSpec(seed=99, profiles=4, posts_median=80, posts_max=200, comments_median=3)
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = warehouse_engine(url)
    with SandboxServer(SandboxConfig(spec=spec, latency_ms=40)) as sandbox, HostileProxy(sandbox.url) as proxy:
        dataset: Dataset = sandbox.app.state.dataset
        profiles = dataset.profile_ids()
        open_batch(engine, profiles, "run", day(1))
        kill_when(CHILD, [url, f"{proxy.url}/v21.0", "run", day(1).isoformat()], ROOT,
                  lambda: _posts_pages(engine) >= KILL_AFTER)
        stored_at_kill = _posts_pages(engine)
        in_flight_at_kill = {_profile_of(r.path) for r in proxy.requests}

        # Airflow retries the task: it continues from the cursor committed with the last page.
        with engine.connect() as conn:
            jobs = bookkeeping.jobs_in_batch(conn, "instagram", "run", 0)
        client = client_for(proxy, page_size=PAGE)
        window = runner.ExtractWindow(scope=SCOPE, as_of=day(1))
        runner.extract_posts(engine, INSTAGRAM, client, jobs, window, clock)
        runner.extract_comments(engine, INSTAGRAM, client, jobs, window, clock)
        normalize_jobs(engine, INSTAGRAM, [job.id for job in jobs])

        print(f"\nkill -9 with {len(in_flight_at_kill)} profile(s) started, after {stored_at_kill} committed pages")
        assert len(in_flight_at_kill) > 1, "the profiles should have been worked concurrently"
        for p, profile in enumerate(profiles):
            pages = len(walk_pages(lambda b, p=p: dataset.posts_newest_first(p, b), profile, PAGE))
            asked = [r for r in proxy.requests if _profile_of(r.path) == profile]
            media = sum(r.path.endswith("/media") for r in asked)
            nodes = len(asked) - media
            print(f"  profile {p}: {pages} pages, {media} media and {nodes} profile request(s)")
            assert (media - pages) + (nodes - 1) <= 1, f"profile {p} re-fetched more than one page"
        assert _posts_pages(engine) == sum(
            len(walk_pages(lambda b, p=p: dataset.posts_newest_first(p, b), e, PAGE))
            for p, e in enumerate(profiles))  # every page stored once
        assert stored_at_kill >= KILL_AFTER
        assert_warehouse_matches(engine, dataset, enrich=False)


def _profile_of(path: str) -> str:
    return path.removeprefix("/v21.0/").split("/")[0]
