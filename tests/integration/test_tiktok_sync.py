"""TikTok synced from the sandbox: user info, video queries over many users, comments and replies
up to the 1,000 cap, equal to the truth field by field, in the fewest requests the dataset allows."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, Table, select

from socialsync.local import inline
from socialsync.networks.base import ApiCredentials, PostsWalk
from socialsync.networks.tiktok import NETWORK as TIKTOK
from socialsync.networks.tiktok.client import TikTokClient
from socialsync.sandbox.faults import FaultPlan
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.sandbox.tiktok_dataset import TikTokDataset
from socialsync.storage import usage
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.planning import track_entities
from socialsync.storage.rebuild import clear_derived
from socialsync.storage.schema import metadata, sync_jobs, sync_tasks, tracked_entities
from socialsync.transform.pipeline import normalize_jobs
from tests.integration.conftest import SMALL
from tests.integration.sync_helpers import checksums, day
from tests.integration.tiktok_truth import (
    actual,
    assert_tiktok_matches,
    calls,
    calls_since,
    first_sync_requests,
    next_day_requests,
)
from tests.integration.truth import deleted_ids

NORMALIZED_AND_AUDIT = list(metadata.sorted_tables)


@pytest.fixture
def sqlite_warehouse(tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    yield engine
    engine.dispose()


def _client(sandbox: SandboxServer, **options: object) -> TikTokClient:
    # A horizon past the oldest video (2.5 years old): a first sync walks back to it.
    settings: dict[str, object] = {"backoff_s": 0.01, "max_wait_s": 2.0, "timeout": 5.0, "login": "sandbox-client",
                                   "horizon_days": 1100}
    settings.update(options)
    return TikTokClient(ApiCredentials(f"{sandbox.url}/tiktok/v2", "sandbox-secret", settings))


def test_a_first_sync_loads_the_truth_in_the_fewest_requests(sandbox: SandboxServer, warehouse: Engine) -> None:
    data: TikTokDataset = sandbox.app.state.tiktok.data
    accounts = list(range(data.dataset.spec.profiles))
    client = _client(sandbox)
    inline.sync(warehouse, TIKTOK, client, [data.user(p).username for p in accounts], "run-1", day(0))
    assert_tiktok_matches(warehouse, data)
    assert calls(sandbox.counters) == first_sync_requests(data, accounts, day(0).date())
    assert client.tokens_issued == 1
    p, j = data.busiest_video() or (0, 0)
    with warehouse.connect() as conn:
        capped = conn.execute(select(sync_tasks.c.status, sync_tasks.c.last_error).where(
            sync_tasks.c.kind == "comments", sync_tasks.c.external_id == data.video_id(p, j))).one()
        statuses = dict(conn.execute(select(sync_jobs.c.entity_id, sync_jobs.c.status)).tuples().all())
    assert capped.status == "partial" and "1000" in (capped.last_error or "")
    assert statuses[data.user(p).username] == "partial"  # it vouches for the first 1,000 comments only
    assert {s for u, s in statuses.items() if u != data.user(p).username} == {"succeeded"}


def _track(engine: Engine, ids: list[str]) -> None:
    with engine.begin() as conn:
        track_entities(conn, "tiktok", ids, day(0))


def test_a_quiet_day_costs_a_video_query_per_100_profiles_and_a_user_info_each(
        sandbox: SandboxServer, sqlite_warehouse: Engine) -> None:
    data: TikTokDataset = sandbox.app.state.tiktok.data
    ids = [data.user(p).username for p in range(data.dataset.spec.profiles)]
    _track(sqlite_warehouse, ids)
    inline.sync(sqlite_warehouse, TIKTOK, _client(sandbox), ids, "run-1", day(0))
    before = calls(sandbox.counters)
    inline.sync(sqlite_warehouse, TIKTOK, _client(sandbox), ids, "run-2", day(0) + timedelta(hours=6))
    assert calls_since(sandbox.counters, before) == {"user_info": len(ids), "video_query": 1, "comment_list": 0}
    assert_tiktok_matches(sqlite_warehouse, data)


def test_a_token_that_expires_mid_run_is_renewed_and_never_kept(caplog: pytest.LogCaptureFixture,
                                                                 sqlite_warehouse: Engine) -> None:
    caplog.set_level(logging.DEBUG)
    # 50 ms an answer, two in flight: the run outlasts the 1 s token however fast the sync gets.
    with SandboxServer(SandboxConfig(spec=SMALL, tiktok_token_ttl_s=1, latency_ms=50)) as sandbox:
        data: TikTokDataset = sandbox.app.state.tiktok.data
        ids = [data.user(p).username for p in range(data.dataset.spec.profiles)]
        client = _client(sandbox, max_in_flight=2)
        inline.sync(sqlite_warehouse, TIKTOK, client, ids, "run-1", day(0))
        assert_tiktok_matches(sqlite_warehouse, data)
        assert client.tokens_issued > 1  # renewed as it went
        tokens = sandbox.app.state.tiktok.issued_tokens()
    secrets = [*tokens, "sandbox-secret"]
    assert len(tokens) == client.tokens_issued
    dump = "\n".join(str(row) for table in NORMALIZED_AND_AUDIT for row in _rows(sqlite_warehouse, table))
    for secret in secrets:
        assert secret not in dump and secret not in caplog.text


def _rows(engine: Engine, table: Table) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(table))]


def test_after_a_day_of_changes_a_run_spends_exactly_the_requests_the_changes_need(
        sandbox: SandboxServer, sqlite_warehouse: Engine) -> None:
    data: TikTokDataset = sandbox.app.state.tiktok.data
    accounts = list(range(data.dataset.spec.profiles))
    ids = [data.user(p).username for p in accounts]
    _track(sqlite_warehouse, ids)
    inline.sync(sqlite_warehouse, TIKTOK, _client(sandbox), ids, "run-1", day(0))
    synced = {(p, j): count for p in accounts for j in data.videos_newest_first(p)
              if (count := data.video(p, j).comment_count)}
    data.dataset.epoch = 1  # a day of new videos, comments and replies, counts that move, a few deletions
    before = calls(sandbox.counters)
    inline.sync(sqlite_warehouse, TIKTOK, _client(sandbox), ids, "run-2", day(1))
    want, listed = next_day_requests(data, accounts, day(1).date(), synced)
    assert calls_since(sandbox.counters, before) == want
    assert want["comment_list"] > 0 and listed
    assert_tiktok_matches(sqlite_warehouse, data, covered=listed)


def test_an_unexpected_daily_quota_limit_leaves_jobs_partial_and_the_next_day_completes_them(
        sandbox: SandboxServer, sqlite_warehouse: Engine) -> None:
    data: TikTokDataset = sandbox.app.state.tiktok.data
    ids = [data.user(p).username for p in range(data.dataset.spec.profiles)]
    _track(sqlite_warehouse, ids)
    sandbox.app.state.tiktok.reset_day(requests_per_day=30)  # the project's allowance is smaller than thought
    inline.sync(sqlite_warehouse, TIKTOK, _client(sandbox), ids, "day-0", day(0))
    with sqlite_warehouse.connect() as conn:
        statuses = dict(conn.execute(select(sync_jobs.c.entity_id, sync_jobs.c.status)).tuples().all())
        types = set(conn.scalars(select(sync_jobs.c.error_type).where(sync_jobs.c.status == "partial")))
    assert "partial" in statuses.values() and "QuotaExhausted" in types, statuses
    assert sandbox.counters["tiktok:requests"] == 30

    sandbox.app.state.tiktok.reset_day(requests_per_day=1_000_000)  # midnight UTC: a new day's allowance
    inline.sync(sqlite_warehouse, TIKTOK, _client(sandbox), ids, "day-1", day(1))
    assert_tiktok_matches(sqlite_warehouse, data)


def test_faults_a_rerun_and_a_rebuild_from_raw_leave_the_truth(sqlite_warehouse: Engine) -> None:
    """10% of research calls fail (429 rate_limit_exceeded, 500s, timeouts, cut bodies, resets,
    repeated items): the warehouse still equals the truth; the run cleared and run again, and a
    rebuild from raw with no call to the API, leave every normalized table identical."""
    faults = FaultPlan(rate=0.1, seed=7, timeout_s=2.0)
    with SandboxServer(SandboxConfig(spec=SMALL, faults=faults)) as sandbox:
        data: TikTokDataset = sandbox.app.state.tiktok.data
        ids = [data.user(p).username for p in range(data.dataset.spec.profiles)]
        options = {"max_attempts": 10, "timeout": 1.0, "deadline_s": 4.0}
        inline.sync(sqlite_warehouse, TIKTOK, _client(sandbox, **options), ids, "run-1", day(0))
        assert sum(v for k, v in sandbox.counters.items() if k.startswith("tiktok:fault:")) > 10
        assert_tiktok_matches(sqlite_warehouse, data)
        before = checksums(sqlite_warehouse)
        inline.sync(sqlite_warehouse, TIKTOK, _client(sandbox, **options), ids, "run-1", day(0))
        assert checksums(sqlite_warehouse) == before
        time.sleep(faults.timeout_s)  # a stalled answer the client gave up on is counted when it ends
        requests = sandbox.counters["tiktok:requests"]
        with sqlite_warehouse.begin() as conn:
            clear_derived(conn, "tiktok")
            job_ids = list(conn.scalars(select(sync_jobs.c.id).order_by(sync_jobs.c.id)))
        normalize_jobs(sqlite_warehouse, TIKTOK, job_ids)
        assert checksums(sqlite_warehouse) == before
        assert sandbox.counters["tiktok:requests"] == requests


def test_a_quota_smaller_than_the_due_work_is_never_overspent_and_later_days_finish(
        sandbox: SandboxServer, sqlite_warehouse: Engine) -> None:
    """A deployment's quota of 100 requests a day: plan admits the most overdue accounts its
    estimates fit, no day spends more than the quota whatever the estimates said (the allowance
    refuses the request past it: those jobs end partial), and the following days finish the rest."""
    data: TikTokDataset = sandbox.app.state.tiktok.data
    ids = [data.user(p).username for p in range(data.dataset.spec.profiles)]
    _track(sqlite_warehouse, ids)
    quota = 100
    first = inline.admitted(sqlite_warehouse, TIKTOK, ids, day(0), quota)
    assert first.deferred > 0 and first.admitted == ids[: len(first.admitted)]  # never synced: in order
    for n in range(6):
        due = first.admitted if n == 0 else inline.admitted(sqlite_warehouse, TIKTOK, ids, day(n), quota).admitted
        before = sandbox.counters["tiktok:requests"]
        inline.sync(sqlite_warehouse, TIKTOK, _client(sandbox), due, f"day-{n}", day(n), quota_units=quota)
        spent = sandbox.counters["tiktok:requests"] - before
        assert spent <= quota
        with sqlite_warehouse.connect() as conn:
            assert usage.spent_today(conn, "tiktok", TIKTOK.quota, day(n)) == spent  # type: ignore[arg-type]
            done = set(conn.scalars(select(tracked_entities.c.entity_id).where(
                tracked_entities.c.last_synced_at.is_not(None))))
        if done == set(ids):
            break
    assert done == set(ids) and n > 0
    assert_tiktok_matches(sqlite_warehouse, data)


def test_a_search_that_expired_is_asked_again_from_its_window_s_start(sandbox: SandboxServer) -> None:
    data: TikTokDataset = sandbox.app.state.tiktok.data
    p = max(range(data.dataset.spec.profiles), key=data.video_count)
    walk = PostsWalk(data.user(p).username, None, data.video_count(p))
    client = _client(sandbox, page_size=3)
    done = []
    for step in client.walk_posts([walk], None, day(0)):
        done.append(step)
        if step.state["search_id"] is not None:
            break  # mid-window: the task is killed here, and resumed a day later
    stale = {**done[-1].state, "search_id": "7000000000000000001"}  # another day's search: refused
    rest = list(client.walk_posts([walk], stale, day(0)))
    assert sandbox.counters["tiktok:invalid_params"] == 1
    seen = {str(v["id"]) for step in done + rest for page in step.pages for v in page.payload["data"]["videos"]}
    assert seen == {data.video_id(p, j) for j in data.videos_newest_first(p)}  # the window again, then on
    assert rest[-1].ended == {walk.entity_id: True}  # every video seen, counted once


def test_a_full_refresh_proves_deleted_videos_and_comments_gone(sandbox: SandboxServer, warehouse: Engine) -> None:
    data: TikTokDataset = sandbox.app.state.tiktok.data
    ids = [data.user(p).username for p in range(data.dataset.spec.profiles)]
    inline.sync(warehouse, TIKTOK, _client(sandbox), ids, "run-1", day(0))
    held = {data.video_id(p, j) for p in range(len(ids)) for j in data.videos_newest_first(p)}
    data.dataset.epoch = 3
    inline.sync(warehouse, TIKTOK, _client(sandbox), ids, "run-2", day(3), full_refresh=True)
    gone = held - {data.video_id(p, j) for p in range(len(ids)) for j in data.videos_newest_first(p)}
    assert gone and gone <= deleted_ids(warehouse, "tiktok")["posts"]  # each account's walk saw every video
    assert deleted_ids(warehouse, "tiktok")["comments"]  # complete comment walks of videos that lost some
    # The capped video's walk proves nothing gone: comments pushed past its 1,000th stay as they were.
    capped = data.video_id(*(data.busiest_video() or (0, 0)))
    live = {data.video_id(p, j) for p in range(len(ids)) for j in data.videos_newest_first(p)}
    assert_tiktok_matches(warehouse, data, covered=live - {capped})
    p, j = data.busiest_video() or (0, 0)
    reachable = {data.comment(p, j, *key).id for key in data.reachable_comments(p, j)}
    assert reachable <= actual(warehouse)["comments"].keys()
