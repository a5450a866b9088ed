"""A channel's subscriptions, synced from the sandbox: who it follows equals the truth field by field in the
fewest calls, a private list is skipped with the reason, complete walks prove removals, and a list past
``max_list_items`` or an anomaly mid-walk proves nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

from socialsync.local import inline
from socialsync.networks.base import ApiCredentials
from socialsync.networks.youtube import NETWORK as YOUTUBE
from socialsync.networks.youtube.client import MAX_SUBSCRIPTIONS_PAGE, YouTubeClient
from socialsync.sandbox.dataset import DatasetSpec
from socialsync.sandbox.faults import FaultPlan
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.sandbox.youtube_dataset import YouTubeDataset
from socialsync.storage import schema
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.planning import track_entities
from socialsync.storage.rebuild import clear_derived
from socialsync.storage.schema import metrics, sync_jobs, sync_tasks
from socialsync.transform.pipeline import normalize_jobs
from tests.hostile import HostileProxy, RequestInfo, Rule
from tests.integration.sync_helpers import checksums, day

SUBSCRIPTIONS = frozenset({"profile", "subscriptions"})
# Twenty channels: private lists, empty ones, lists of several pages of 50.
SPEC = DatasetSpec(seed=77, profiles=20, posts_median=3, comments_median=1, posts_max=10)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(spec=SPEC)) as server:
        yield server


def _client(base: str, **options: object) -> YouTubeClient:
    return YouTubeClient(ApiCredentials(f"{base}/youtube/v3", "sandbox-key",
                                        {"backoff_s": 0.01, "max_wait_s": 2.0, "timeout": 5.0, **options}))


def _expected(data: YouTubeDataset, first_seen: dict[str, datetime], removed: dict[str, datetime] | None = None,
              synced: dict[str, datetime] | None = None) -> dict[tuple[str, str], tuple[Any, ...]]:
    """The follows rows of every public list: (follower, followee) -> name, first seen, removed, last seen."""
    out = {}
    for p in range(data.dataset.spec.profiles):
        if data.subscriptions_private(p):
            continue
        for s in data.subscriptions(p):
            sub = data.subscription(p, s)
            key = (data.channel_id(p), sub.channel_id)
            out[key] = (sub.title, first_seen[sub.id], None, (synced or {}).get(sub.id, first_seen[sub.id]))
    return out


def _actual(engine: Engine, live_only: bool = True) -> dict[tuple[str, str], tuple[Any, ...]]:
    f = schema.follows.c
    query = select(f.follower_id, f.followee_id, f.followee_name, f.first_seen_at, f.removed_at, f.synced_at).where(
        f.network == "youtube")
    if live_only:
        query = query.where(f.removed_at.is_(None))
    with engine.connect() as conn:
        return {(r[0], r[1]): tuple(r[2:]) for r in conn.execute(query)}


def _statuses(engine: Engine, run_id: str) -> dict[str, tuple[str, str | None]]:
    with engine.connect() as conn:
        return {r.entity_id: (r.status, r.last_error) for r in conn.execute(
            select(sync_jobs.c.entity_id, sync_tasks.c.status, sync_tasks.c.last_error)
            .join(sync_tasks, sync_tasks.c.job_id == sync_jobs.c.id)
            .where(sync_jobs.c.run_id == run_id, sync_tasks.c.kind == "subscriptions"))}


def test_subscriptions_equal_the_truth_and_a_day_of_changes_is_proven_by_the_complete_walk(
        sandbox: SandboxServer, warehouse: Engine) -> None:
    data: YouTubeDataset = sandbox.app.state.youtube.data
    channels = list(range(SPEC.profiles))
    ids = [data.channel_id(p) for p in channels]
    private = [p for p in channels if data.subscriptions_private(p)]
    assert private and len(private) < len(channels)
    assert any(data.subscription_pages(p, MAX_SUBSCRIPTIONS_PAGE) > 1 for p in channels if p not in private)
    with warehouse.begin() as conn:
        track_entities(conn, "youtube", ids, day(0))

    inline.sync(warehouse, YOUTUBE, _client(sandbox.url), ids, "day-0", day(0), scope=SUBSCRIPTIONS)
    # Exactly the fewest calls: one channels call for the twenty, every page of each list, one refused
    # call for each private list.
    assert sandbox.counters["youtube:subscriptions"] == sum(
        data.subscription_pages(p, MAX_SUBSCRIPTIONS_PAGE) for p in channels)
    first = {data.subscription(p, s).id: day(0) for p in channels for s in data.subscriptions(p)}
    assert _actual(warehouse) == _expected(data, first)
    statuses = _statuses(warehouse, "day-0")
    for p in private:  # a private list is skipped with the reason; the job still succeeds
        status, reason = statuses[ids[p]]
        assert status == "skipped" and "keeps its subscriptions private" in (reason or "")
    with warehouse.connect() as conn:
        jobs = set(conn.scalars(select(sync_jobs.c.status).where(sync_jobs.c.run_id == "day-0")))
    assert jobs == {"succeeded"}

    # Two days later: new subscriptions anywhere in the lists, some taken back. The daily walk is
    # complete (no time order), so it finds every new one and marks exactly the removed ones.
    before = {data.subscription(p, s).id: (p, s) for p in channels for s in data.subscriptions(p)}
    data.dataset.epoch = 2
    now = {data.subscription(p, s).id: (p, s) for p in channels for s in data.subscriptions(p)}
    gone = {(ids[p], data.subscription(p, s).channel_id) for sid, (p, s) in before.items() if sid not in now}
    added = {sid for sid in now if sid not in before}
    assert gone and added
    inline.sync(warehouse, YOUTUBE, _client(sandbox.url), ids, "day-2", day(2), scope=SUBSCRIPTIONS)
    seen = {sid: (day(2) if sid in added else day(0)) for sid in now}
    assert _actual(warehouse) == _expected(data, seen, synced={sid: day(2) for sid in now})
    every = _actual(warehouse, live_only=False)
    assert {key for key, row in every.items() if row[2] is not None} == gone
    assert all(row[2] == day(2) for key, row in every.items() if key in gone)

    # The day's new and lost subscriptions per channel, as metrics.
    with warehouse.connect() as conn:
        daily = {(r.entity_id, r.metric): r.value for r in conn.execute(
            select(metrics.c.entity_id, metrics.c.metric, metrics.c.value).where(
                metrics.c.network == "youtube", metrics.c.metric.like("subscriptions_%")))}
    for p in channels:
        if p in private:
            assert (ids[p], "subscriptions_new") not in daily
            continue
        new = sum(1 for sid in added if now[sid][0] == p)
        lost = sum(1 for follower, _ in gone if follower == ids[p])
        assert (daily[(ids[p], "subscriptions_new")], daily[(ids[p], "subscriptions_lost")]) == (new, lost), p

    # Rebuilt from raw, without a call: the same rows, removals included.
    rows, calls = checksums(warehouse), sandbox.counters["youtube:units"]
    with warehouse.connect() as conn:
        jobs_in_order = list(conn.scalars(select(sync_jobs.c.id).order_by(sync_jobs.c.id)))
    with warehouse.begin() as conn:
        clear_derived(conn, "youtube")
    normalize_jobs(warehouse, YOUTUBE, jobs_in_order)
    assert checksums(warehouse) == rows and sandbox.counters["youtube:units"] == calls


def test_a_list_past_max_list_items_or_an_anomaly_mid_walk_proves_nothing_removed(
        sandbox: SandboxServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    data: YouTubeDataset = sandbox.app.state.youtube.data
    long = next(p for p in range(SPEC.profiles) if not data.subscriptions_private(p)
                and data.subscription_pages(p, MAX_SUBSCRIPTIONS_PAGE) > 1)
    entity = data.channel_id(long)
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    inline.sync(engine, YOUTUBE, _client(sandbox.url), [entity], "day-0", day(0), scope=SUBSCRIPTIONS)
    held = len(_actual(engine))
    old = set(data.subscriptions(long))
    assert held == len(old)
    epoch = next(e for e in range(1, 30) if not old <= set(_at(data, e, long)))
    data.dataset.epoch = epoch  # some are taken back by now: only a complete walk may say which

    inline.sync(engine, YOUTUBE, _client(sandbox.url, max_list_items=30), [entity], "capped", day(epoch),
                scope=SUBSCRIPTIONS)
    status, reason = _statuses(engine, "capped")[entity]
    assert status == "partial" and "more than max_list_items (30)" in (reason or "")
    assert len(_actual(engine)) >= held  # nothing removed

    with HostileProxy(sandbox.url) as proxy:
        def no_items(body: Any, request: RequestInfo) -> Any:  # a later page that is not a page
            if "pageToken=" in request.query:
                body.pop("items", None)
            return body

        proxy.rules.append(Rule(match=r"^GET /youtube/v3/subscriptions", action="rewrite", rewrite=no_items))
        inline.sync(engine, YOUTUBE, _client(proxy.url), [entity], "anomaly", day(epoch), scope=SUBSCRIPTIONS)
    status, reason = _statuses(engine, "anomaly")[entity]
    assert status == "partial" and "`items` is missing" in (reason or "")
    assert len(_actual(engine)) >= held

    inline.sync(engine, YOUTUBE, _client(sandbox.url), [entity], "whole", day(epoch), scope=SUBSCRIPTIONS)
    assert _statuses(engine, "whole")[entity][0] == "succeeded"
    want = {(entity, data.subscription(long, s).channel_id) for s in data.subscriptions(long)}
    assert set(_actual(engine)) == want


def _at(data: YouTubeDataset, epoch: int, p: int) -> list[int]:
    data.dataset.epoch = epoch
    return data.subscriptions(p)


def test_ten_percent_faults_a_rerun_and_a_rebuild_from_raw_keep_the_subscriptions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    faults = FaultPlan(rate=0.1, seed=11, timeout_s=2.0)  # a stalled answer outlasts the client's read timeout
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    with SandboxServer(SandboxConfig(spec=SPEC, faults=faults)) as server:
        data: YouTubeDataset = server.app.state.youtube.data
        ids = [data.channel_id(p) for p in range(SPEC.profiles)]

        def run(run_id: str) -> None:
            inline.sync(engine, YOUTUBE, _client(server.url, max_attempts=10, timeout=1.0, deadline_s=4.0), ids,
                        run_id, day(0), scope=SUBSCRIPTIONS)

        run("run-1")
        assert sum(v for k, v in server.counters.items() if k.startswith("youtube:fault:")) > 0
        first = {data.subscription(p, s).id: day(0) for p in range(SPEC.profiles) for s in data.subscriptions(p)}
        assert _actual(engine) == _expected(data, first)
        assert _actual(engine, live_only=False) == _actual(engine)  # no fault proved a subscription removed
        before = checksums(engine)
        run("run-1")  # the run cleared and run again
        assert checksums(engine) == before
        with engine.begin() as conn:
            clear_derived(conn, "youtube")
            job_ids = list(conn.scalars(select(sync_jobs.c.id).order_by(sync_jobs.c.id)))
        normalize_jobs(engine, YOUTUBE, job_ids)
        assert checksums(engine) == before
