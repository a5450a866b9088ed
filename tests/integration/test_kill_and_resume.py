"""kill -9 in the middle of an extract loses nothing and re-fetches at most one page."""

from __future__ import annotations

from sqlalchemy import func, select

from socialsync.extract import runner
from socialsync.sandbox.dataset import Dataset, DatasetSpec
from socialsync.sandbox.graph_api import discovery_pages, walk_pages
from socialsync.sandbox.instagram_dataset import InstagramDataset
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.storage import jobs as bookkeeping
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.schema import raw_pages
from socialsync.transform.pipeline import normalize_jobs
from tests.conftest import ROOT
from tests.hostile import HostileProxy
from tests.integration.sync_helpers import (
    INSTAGRAM,
    SCOPE,
    app_user,
    client_for,
    clock,
    day,
    graph_entity,
    kill_when,
    open_batch,
)
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
client = InstagramClient(ApiCredentials(base, "sandbox-token", {"page_size": PAGE, "ig_user_id": sys.argv[5]}))
window = runner.ExtractWindow(scope=frozenset({"profile", "posts", "comments", "stories"}),
                              as_of=datetime.fromisoformat(as_of))
runner.extract_posts(engine, get_network("instagram"), client, batch, window, lambda: datetime.now(UTC))
""".replace("PAGE", str(PAGE))


def _posts_pages(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(raw_pages).where(raw_pages.c.kind == "posts")))


def test_sigkill_mid_extract_then_retry_loses_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Four profiles in flight at once (three owned, one public, walked through business discovery);
    killed mid-pass, each re-fetches at most the one page it had in flight (counted per profile from
    the requests a proxy saw)."""
    spec = DatasetSpec(seed=99, profiles=4, posts_median=80, posts_max=200, comments_median=3)
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = warehouse_engine(url)
    with SandboxServer(SandboxConfig(spec=spec, latency_ms=40)) as sandbox, HostileProxy(sandbox.url) as proxy:
        dataset: Dataset = sandbox.app.state.dataset
        ig = InstagramDataset(dataset)
        profiles = ig.tracked_ids()
        assert any(e.startswith("@") for e in profiles)
        open_batch(engine, profiles, "run", day(1))
        kill_when(CHILD, [url, f"{proxy.url}/v21.0", "run", day(1).isoformat(), app_user(sandbox)], ROOT,
                  lambda: _posts_pages(engine) >= KILL_AFTER)
        stored_at_kill = _posts_pages(engine)
        in_flight_at_kill = {graph_entity(r) for r in proxy.requests}

        # Airflow retries the task: it continues from the cursor committed with the last page.
        with engine.connect() as conn:
            jobs = bookkeeping.jobs_in_batch(conn, "instagram", "run", 0)
        client = client_for(proxy, page_size=PAGE, ig_user_id=app_user(sandbox))
        window = runner.ExtractWindow(scope=SCOPE, as_of=day(1))
        runner.extract_posts(engine, INSTAGRAM, client, jobs, window, clock)
        runner.extract_comments(engine, INSTAGRAM, client, jobs, window, clock)
        normalize_jobs(engine, INSTAGRAM, [job.id for job in jobs])

        print(f"\nkill -9 with {len(in_flight_at_kill)} profile(s) started, after {stored_at_kill} committed pages")
        assert len(in_flight_at_kill) > 1, "the profiles should have been worked concurrently"
        for p, entity in enumerate(profiles):
            pages = _pages(ig, p)
            asked = [r for r in proxy.requests if graph_entity(r) == entity]
            if ig.public_only(p):  # the first discovery answer is the profile and the first media page
                media, nodes = len(asked), 1
            else:
                media = sum(r.path.endswith("/media") for r in asked)
                nodes = sum(r.path == f"/v21.0/{entity}" for r in asked)
            print(f"  profile {p}: {pages} pages, {media} media and {nodes} profile request(s)")
            assert (media - pages) + (nodes - 1) <= 1, f"profile {p} re-fetched more than one page"
        assert _posts_pages(engine) == sum(_pages(ig, p) for p in range(len(profiles)))  # every page stored once
        assert stored_at_kill >= KILL_AFTER
        assert_warehouse_matches(engine, dataset, enrich=False)


def _pages(ig: InstagramDataset, p: int) -> int:
    if ig.public_only(p):
        return len(discovery_pages(ig, p, PAGE))
    return len(walk_pages(lambda b: ig.posts_newest_first(p, b), ig.dataset.profile_id(p), PAGE))
