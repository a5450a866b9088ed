"""Extract -> normalize without Airflow, on SQLite and a real PostgreSQL: checkpoints and memory."""

from __future__ import annotations

import gc
import json
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import Engine, func, select

from socialsync.extract import runner
from socialsync.networks import get_network
from socialsync.networks.base import ApiCredentials, CommentHistory, FetchedPage, TransientError
from socialsync.networks.instagram.client import InstagramClient
from socialsync.sandbox.dataset import Dataset, DatasetSpec
from socialsync.sandbox.instagram_dataset import InstagramDataset
from socialsync.sandbox.server import SandboxServer
from socialsync.storage import jobs as bookkeeping
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.schema import raw_pages, sync_jobs
from socialsync.transform.pipeline import normalize_jobs
from tests.integration.sync_helpers import checksums, open_batch, tracked_ids
from tests.integration.truth import assert_warehouse_matches

NOW = datetime(2026, 11, 1, tzinfo=UTC)
ALL = runner.ExtractWindow(scope=frozenset({"profile", "posts", "comments", "stories"}), as_of=NOW)
INSTAGRAM = get_network("instagram")


def _clock() -> datetime:
    return datetime.now(UTC)


def _open(engine: Engine, entity_ids: list[str], run_id: str = "run") -> list[bookkeeping.JobRef]:
    return open_batch(engine, entity_ids, run_id, NOW)


def _client(sandbox: SandboxServer, page_size: int = 10) -> InstagramClient:
    return InstagramClient(ApiCredentials(f"{sandbox.url}/v21.0", "sandbox-token",
                                          {"page_size": page_size, "max_attempts": 1,
                                           "ig_user_id": Dataset.profile_id(0)}))


def test_extract_and_normalize_reproduce_the_ground_truth(sandbox: SandboxServer, warehouse: Engine) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    jobs = _open(warehouse, tracked_ids(dataset))
    client = _client(sandbox)
    runner.extract_posts(warehouse, INSTAGRAM, client, jobs, ALL, _clock)
    runner.extract_comments(warehouse, INSTAGRAM, client, jobs, ALL, _clock)
    report = normalize_jobs(warehouse, INSTAGRAM, [j.id for j in jobs])
    assert report.rejects == 0
    assert_warehouse_matches(warehouse, dataset, enrich=False)
    before = checksums(warehouse)
    # Normalizing again (a cleared task) changes nothing.
    normalize_jobs(warehouse, INSTAGRAM, [j.id for j in jobs])
    assert checksums(warehouse) == before


class _CrashAfter:
    """Wraps a client: the k-th post page raises, as a killed or disconnected worker would."""

    def __init__(self, client: InstagramClient, pages: int) -> None:
        self.client, self.left = client, pages
        self.budget = client.budget

    @property
    def requests(self) -> int:
        return self.client.requests

    @property
    def units(self) -> float:
        return self.client.units

    @property
    def max_list_items(self) -> int:
        return self.client.max_list_items

    def fetch_profiles(self, entity_ids: Sequence[str]) -> list[FetchedPage]:
        return self.client.fetch_profiles(entity_ids)

    def post_pages(self, entity_id: str, cursor: str | None) -> Iterator[FetchedPage]:
        for page in self.client.post_pages(entity_id, cursor):
            if self.left == 0:
                raise TransientError("connection reset", retryable=True)
            self.left -= 1
            yield page

    def comment_pages(self, post_id: str, cursor: str | None,
                      history: CommentHistory | None = None) -> Iterator[FetchedPage]:
        return self.client.comment_pages(post_id, cursor, history)

    def list_pages(self, kind: str, entity_id: str, cursor: str | None) -> Iterator[FetchedPage]:
        return self.client.list_pages(kind, entity_id, cursor)

    def close(self) -> None:
        self.client.close()


def test_a_retried_extract_resumes_from_its_cursor(sandbox: SandboxServer, tmp_path) -> None:
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'w.db'}")
    dataset: Dataset = sandbox.app.state.dataset
    p = max(InstagramDataset(dataset).managed_profiles(), key=dataset.post_count)
    jobs = _open(engine, [dataset.profile_id(p)])
    with pytest.raises(runner.RetryLater):
        runner.extract_posts(engine, INSTAGRAM, _CrashAfter(_client(sandbox, 5), 3), jobs, ALL, _clock,
                             last_try=False)
    before = dict(sandbox.counters)
    with engine.connect() as conn:
        jobs = bookkeeping.jobs_in_batch(conn, "instagram", "run", 0)
        assert conn.scalar(select(sync_jobs.c.cursor).where(sync_jobs.c.id == jobs[0].id))["posts_after"]
    runner.extract_posts(engine, INSTAGRAM, _client(sandbox, 5), jobs, ALL, _clock)
    pages_total = -(-dataset.post_count(p) // 5)  # at least this many; short pages add more
    with engine.connect() as conn:
        stored = conn.scalar(select(func.count()).select_from(raw_pages).where(raw_pages.c.kind == "posts"))
    refetched = sandbox.counters["graph:media"] - before.get("graph:media", 0)
    assert stored == 3 + refetched  # nothing fetched twice: the retry started after page 3
    assert stored >= pages_total
    assert sandbox.counters["graph:node"] == 1  # the profile, fetched before the crash, is not again


@contextmanager
def _sandbox_process(posts: int) -> Iterator[str]:
    """The sandbox in its own process, so that only the extract's memory is measured here."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "socialsync.sandbox", "--port", str(port), "--seed", "7",
                                "--profiles", "1", "--posts-median", str(posts), "--posts-max", str(posts),
                                "--comments-median", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{url}/_sandbox/stats", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _extract_memory(posts: int, tmp_path, name: str) -> tuple[int, int, int, int]:
    """Posts, memory retained after the extract, its peak, and the bytes of every page it fetched."""
    engine = warehouse_engine(f"sqlite:///{tmp_path / name}")
    dataset = Dataset(DatasetSpec(seed=7, profiles=1, posts_median=posts, posts_max=posts, comments_median=0))
    with _sandbox_process(posts) as url:
        jobs = _open(engine, dataset.profile_ids())
        client = InstagramClient(ApiCredentials(f"{url}/v21.0", "sandbox-token", {"page_size": 50}))
        tracemalloc.start()
        runner.extract_posts(engine, INSTAGRAM, client, jobs, ALL, _clock)
        gc.collect()  # count what is kept, not garbage awaiting collection
        retained, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    with engine.connect() as conn:
        fetched = sum(len(json.dumps(p)) for p in conn.scalars(select(raw_pages.c.payload)))
    return dataset.post_count(0), retained, peak, fetched


def test_extract_memory_does_not_grow_with_posts_per_profile(tmp_path) -> None:
    _extract_memory(100, tmp_path, "warm-up.db")  # imports and statement caches, paid once
    small_posts, small_retained, small_peak, _ = _extract_memory(100, tmp_path, "small.db")
    big_posts, big_retained, big_peak, big_fetched = _extract_memory(2000, tmp_path, "big.db")
    assert big_posts >= 10 * small_posts
    # Twenty times the posts: nothing is kept, and the peak (a page or two plus garbage awaiting the
    # collector) stays far from the tenfold and more that holding the pages would take.
    assert big_retained < small_retained + 131_072, (small_retained, big_retained)
    assert big_peak < small_peak * 5, (small_peak, big_peak, big_fetched)
