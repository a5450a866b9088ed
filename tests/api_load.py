"""The sync API under load: concurrent readers paging its lists while a sync writes the warehouse.

The app runs as its own uvicorn process over the warehouse (Airflow's user and DAG permission replaced by
a user allowed everything, as in tests/unit/test_api_inputs.py: the e2e stack tests the real auth). Each
reader pages one list at a time through to its end (a run's jobs, a profile's posts, a post's comments,
deleted rows included so that nothing may drop out), and again, until the writer is done; a complete pass
must hold each row once (no page repeats a row) and every row the list had before the sync began (no page
skips one). Shared by tests/integration/test_api_under_load.py and ``make bench``.
"""

from __future__ import annotations

import dataclasses
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from socialsync.sandbox.dataset import Dataset, DatasetSpec
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.planning import track_entities
from socialsync.storage.schema import comments, posts, sync_jobs
from tests.e2e.stack import free_port
from tests.integration.sync_helpers import client_for, clock, day, sync, tracked_ids

SERVER = """
import sys
import uvicorn
from airflow.api_fastapi.core_api.security import get_user
from socialsync.api import app as api
from socialsync.storage.engine import warehouse_engine

engine = warehouse_engine(sys.argv[1])
api.app.dependency_overrides[get_user] = lambda: object()
api.app.dependency_overrides[api.warehouse] = lambda: engine
api._allowed = lambda user, network, method: True
api._run_state = lambda dag_id, run_id: "success"  # Airflow's record of the run: every run exists here
uvicorn.run(api.app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


@contextmanager
def api_server(warehouse_url: str) -> Iterator[str]:
    """The sync API's app on a free loopback port; yields its base URL."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SERVER, warehouse_url, str(port)])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "the API server exited"
            try:
                if httpx.get(f"{base}/v1/networks", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API server did not answer within 60 s"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass(frozen=True)
class Listing:
    """One list of the API: its path, the key of its items in the answer and of an item's id, and the ids
    it held before the writer began (each complete pass must include them all)."""

    path: str
    items: str
    key: str
    before: frozenset[Any]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds, one per request
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # server errors, transport errors, repeats, skips
    passes: int = 0
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies)

    def quantile(self, q: float) -> float:
        return statistics.quantiles(self.latencies, n=100)[int(q * 100) - 1] if len(self.latencies) > 1 else 0.0

    def summary(self) -> str:
        return (f"{self.requests} requests by {self.passes} complete passes in {self.seconds:.1f} s: "
                f"{self.requests / self.seconds:.0f} requests/s, p50 {self.quantile(0.5) * 1000:.0f} ms, "
                f"p99 {self.quantile(0.99) * 1000:.0f} ms, statuses {self.statuses}")


def read_while(base: str, listings: list[Listing], writing: Callable[[], bool], readers: int = 32,
               limit: int = 5, min_passes: int = 2) -> LoadResult:
    """``readers`` threads page the ``listings`` (reader ``i`` starts at list ``i``) while ``writing()``
    holds, and each for at least ``min_passes`` complete passes."""
    result = LoadResult()
    lock = threading.Lock()

    def record(seconds: float, status: int | None, error: str | None = None) -> None:
        with lock:
            result.latencies.append(seconds)
            if status is not None:
                result.statuses[status] = result.statuses.get(status, 0) + 1
            if error:
                result.errors.append(error)

    def one_pass(client: httpx.Client, listing: Listing) -> None:
        seen: list[Any] = []
        cursor: str | None = None
        while True:
            params = {**listing.params, "limit": limit, **({"cursor": cursor} if cursor else {})}
            start = time.perf_counter()
            try:
                answer = client.get(listing.path, params=params)
            except httpx.HTTPError as exc:
                record(time.perf_counter() - start, None, f"{listing.path}: {exc!r}")
                return
            record(time.perf_counter() - start, answer.status_code,
                   None if answer.status_code == 200 else f"{listing.path}: {answer.status_code} {answer.text[:200]}")
            if answer.status_code != 200:
                return
            body = answer.json()
            seen += [item[listing.key] for item in body[listing.items]]
            cursor = body["next_cursor"]
            if not cursor:
                break
        repeated = len(seen) - len(set(seen))
        skipped = listing.before - set(seen)
        with lock:
            result.passes += 1
            if repeated:
                result.errors.append(f"{listing.path}: a pass repeated {repeated} row(s)")
            if skipped:
                result.errors.append(f"{listing.path}: a pass skipped {len(skipped)} row(s), e.g. {min(skipped)}")

    def reader(index: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            done = 0
            while writing() or done < min_passes:
                one_pass(client, listings[(index + done) % len(listings)])
                done += 1

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(readers)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    result.seconds = time.perf_counter() - start
    return result


SPEC = dataclasses.replace(DatasetSpec(seed=4242), profiles=12, posts_median=18, comments_median=6, posts_max=60)
BASE = "/v1/networks/instagram"


def listings(engine: Engine, run_id: str, lists: int = 4) -> list[Listing]:
    """A run's jobs, the posts of the profiles with the most and the comments of the posts with the most,
    deleted rows included (a row the sync marks deleted must not drop out of a pass)."""
    with engine.connect() as conn:
        jobs = frozenset(conn.scalars(select(sync_jobs.c.id).where(sync_jobs.c.run_id == run_id)))
        owners = list(conn.scalars(select(posts.c.profile_id).group_by(posts.c.profile_id)
                                   .order_by(func.count().desc(), posts.c.profile_id).limit(lists)))
        busiest = list(conn.scalars(select(comments.c.post_id).group_by(comments.c.post_id)
                                    .order_by(func.count().desc(), comments.c.post_id).limit(lists)))
        out = [Listing(f"{BASE}/runs/{run_id}/jobs", "jobs", "id", jobs)]
        for owner in owners:
            ids = frozenset(conn.scalars(select(posts.c.post_id).where(posts.c.profile_id == owner)))
            out.append(Listing(f"{BASE}/profiles/{owner}/posts", "items", "post_id", ids, {"include_deleted": True}))
        for post in busiest:
            ids = frozenset(conn.scalars(select(comments.c.comment_id).where(comments.c.post_id == post)))
            out.append(Listing(f"{BASE}/posts/{post}/comments", "items", "comment_id", ids,
                               {"include_deleted": True}))
    return out


def under_load(url: str, readers: int = 32) -> tuple[LoadResult, Dataset]:
    """Day 0 synced into the warehouse at ``url``; then ``readers`` page its lists through the API while
    the sync of day 1 (a full refresh: new posts and comments, deletions, moved counts) writes."""
    with SandboxServer(SandboxConfig(spec=SPEC)) as sandbox:
        engine = warehouse_engine(url)
        dataset: Dataset = sandbox.app.state.dataset
        ids = tracked_ids(dataset)
        with engine.begin() as conn:
            track_entities(conn, "instagram", ids, clock())
        client = client_for(sandbox)
        sync(engine, client, ids, "day-0", day(0))
        lists = listings(engine, "day-0")
        assert all(listing.before for listing in lists)
        dataset.epoch = 1
        failed: list[BaseException] = []

        def write() -> None:
            try:
                sync(engine, client, ids, "day-1", day(1), full_refresh=True)
            except BaseException as exc:  # re-raised below, in the caller's thread
                failed.append(exc)

        with api_server(url) as base:
            writer = threading.Thread(target=write)
            writer.start()
            result = read_while(base, lists, writer.is_alive, readers=readers)
            writer.join()
        engine.dispose()
    if failed:
        raise failed[0]
    return result, dataset
