"""YouTube synced from the sandbox: channels 50 to a call, uploads, videos, threads and replies,
equal to the truth field by field, in the fewest calls the dataset allows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from socialsync.local import inline
from socialsync.networks.base import ApiCredentials, Quota
from socialsync.networks.youtube import NETWORK as YOUTUBE
from socialsync.networks.youtube.client import YouTubeClient
from socialsync.sandbox.faults import FaultPlan
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.sandbox.youtube_dataset import YouTubeDataset
from socialsync.storage import usage
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.planning import track_entities
from socialsync.storage.rebuild import clear_derived
from socialsync.storage.schema import sync_jobs, sync_tasks, tracked_entities
from socialsync.transform.pipeline import normalize_jobs
from tests.hostile import HostileProxy, Rule
from tests.integration.conftest import SMALL
from tests.integration.sync_helpers import checksums, day
from tests.integration.truth import deleted_ids
from tests.integration.youtube_truth import (
    assert_youtube_matches,
    calls,
    calls_since,
    comment_calls,
    held_threads,
    incremental_comment_calls,
    minimum_calls,
)

KEY = "sandbox-key"


@pytest.fixture
def sqlite_warehouse(tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    yield engine
    engine.dispose()


def _client(sandbox: SandboxServer, **options: object) -> YouTubeClient:
    settings: dict[str, object] = {"backoff_s": 0.01, "max_wait_s": 2.0, "timeout": 5.0}
    settings.update(options)
    return YouTubeClient(ApiCredentials(f"{sandbox.url}/youtube/v3", KEY, settings))


def test_a_first_sync_loads_the_truth_in_the_fewest_calls(sandbox: SandboxServer, warehouse: Engine) -> None:
    data: YouTubeDataset = sandbox.app.state.youtube.data
    channels = list(range(data.dataset.spec.profiles))
    client = _client(sandbox)
    inline.sync(warehouse, YOUTUBE, client, [data.channel_id(p) for p in channels], "run-1", day(0))
    assert_youtube_matches(warehouse, data)
    counters = sandbox.counters
    assert calls(counters) == minimum_calls(data, channels)
    assert counters["youtube:units"] == client.units == sum(minimum_calls(data, channels).values())
    assert counters["youtube:key_in_url"] == 0


def test_a_quiet_day_costs_two_units_a_channel_and_the_lookback_s_comments(
        sandbox: SandboxServer, sqlite_warehouse: Engine) -> None:
    data: YouTubeDataset = sandbox.app.state.youtube.data
    channels = list(range(data.dataset.spec.profiles))
    ids = [data.channel_id(p) for p in channels]
    inline.sync(sqlite_warehouse, YOUTUBE, _client(sandbox), ids, "run-1", day(0))
    before = calls(sandbox.counters)
    held = held_threads(data, channels)
    as_of = day(0) + timedelta(hours=6)  # the same epoch: nothing changed upstream
    inline.sync(sqlite_warehouse, YOUTUBE, _client(sandbox), ids, "run-2", as_of)
    spent = calls_since(sandbox.counters, before)
    recent = _recent_comment_calls(data, channels, held, as_of - timedelta(days=3))
    assert recent["comments"] == 0  # no reply count moved: no thread's replies are asked for again
    posting = sum(1 for p in channels if data.video_count(p))  # an empty uploads page needs no videos call
    assert spent == {"channels": 1, "playlistItems": len(channels), "videos": posting, **recent}, spent
    assert spent["playlistItems"] + spent["videos"] <= 2 * len(channels)
    assert_youtube_matches(sqlite_warehouse, data)


def test_the_next_day_s_changes_land_and_deleted_videos_are_marked(sandbox: SandboxServer, warehouse: Engine) -> None:
    data: YouTubeDataset = sandbox.app.state.youtube.data
    ids = [data.channel_id(p) for p in range(data.dataset.spec.profiles)]
    inline.sync(warehouse, YOUTUBE, _client(sandbox), ids, "run-1", day(0), full_refresh=True)
    for epoch in (1, 2):
        data.dataset.epoch = epoch
        inline.sync(warehouse, YOUTUBE, _client(sandbox), ids, f"run-{epoch + 1}", day(epoch), full_refresh=True)
        assert_youtube_matches(warehouse, data)
    gone = {data.video_id(p, j) for p in range(data.dataset.spec.profiles)
            for j in data.dataset.deleted_posts(p)}
    assert gone and gone <= deleted_ids(warehouse, "youtube")["posts"]


def _recent_comment_calls(data: YouTubeDataset, channels: list[int], held: dict[tuple[int, int], dict[int, int]],
                          since: datetime) -> dict[str, int]:
    """The comment calls of the videos published since ``since``, walked again every run in the
    lookback: nothing new, so each walk stops at its first page (it holds known threads)."""
    calls = {"commentThreads": 0, "comments": 0}
    for p in channels:
        for j in data.videos_newest_first(p):
            if data.video(p, j).published_at >= since and (p, j) in held:
                for call, count in incremental_comment_calls(data, p, j, held[(p, j)], 0).items():
                    calls[call] += count
    return calls


def test_comments_turned_off_since_listing_end_skipped_never_failed(sandbox: SandboxServer,
                                                                    sqlite_warehouse: Engine) -> None:
    data: YouTubeDataset = sandbox.app.state.youtube.data
    p, j = data.busiest_video() or (0, 0)
    video = data.video_id(p, j)
    disabled = Rule(match=rf"^GET /youtube/v3/commentThreads\?.*videoId={video}", action="status", status=403,
                    body={"error": {"code": 403, "message": "The video has disabled comments.",
                                    "errors": [{"domain": "youtube.commentThread", "reason": "commentsDisabled"}]}})
    with HostileProxy(sandbox.url) as proxy:
        proxy.rules.append(disabled)
        client = YouTubeClient(ApiCredentials(f"{proxy.url}/youtube/v3", KEY, {"backoff_s": 0.01}))
        inline.sync(sqlite_warehouse, YOUTUBE, client, [data.channel_id(p)], "run-1", day(0))
        assert proxy.hits(disabled) == 1  # not retried: the answer is final
    with sqlite_warehouse.connect() as conn:
        tasks = {r.external_id: (r.status, r.last_error) for r in conn.execute(
            select(sync_tasks.c.external_id, sync_tasks.c.status, sync_tasks.c.last_error)
            .where(sync_tasks.c.kind == "comments"))}
        job = conn.execute(select(sync_jobs.c.status, sync_jobs.c.error_message)).one()
    assert tasks[video][0] == "skipped" and "comments are disabled" in (tasks[video][1] or "")
    assert "failed" not in {status for status, _ in tasks.values()}
    assert job.status == "succeeded", job.error_message


def _track(engine: Engine, ids: list[str]) -> None:
    with engine.begin() as conn:
        track_entities(conn, "youtube", ids, day(0))


def _units(sandbox: SandboxServer) -> int:
    return sandbox.counters["youtube:units"]


def test_plan_admits_what_the_quota_allows_most_overdue_first_and_the_next_day_finishes(
        sandbox: SandboxServer, sqlite_warehouse: Engine) -> None:
    data: YouTubeDataset = sandbox.app.state.youtube.data
    ids = [data.channel_id(p) for p in range(data.dataset.spec.profiles)]
    _track(sqlite_warehouse, ids)
    quota = 3 * YOUTUBE.quota.first_sync_units  # type: ignore[union-attr]  # three never-synced channels a day
    first = inline.admitted(sqlite_warehouse, YOUTUBE, ids, day(0), quota)
    assert first.admitted == ids[:3] and first.deferred == 3  # never synced: in the order they were named
    spent = _units(sandbox)
    inline.sync(sqlite_warehouse, YOUTUBE, _client(sandbox), first.admitted, "day-0", day(0))
    spent_day_0 = _units(sandbox) - spent
    assert spent_day_0 <= quota
    with sqlite_warehouse.connect() as conn:
        assert usage.spent_today(conn, "youtube", YOUTUBE.quota, day(0)) == spent_day_0  # type: ignore[arg-type]
    # Later the same day: what is left, and only that, is offered to the next ones.
    later = inline.admitted(sqlite_warehouse, YOUTUBE, ids[3:], day(0) + timedelta(hours=1), quota)
    assert later.estimated <= quota - spent_day_0 < later.estimated + YOUTUBE.quota.first_sync_units  # type: ignore[union-attr]
    assert later.admitted == ids[3 : 3 + len(later.admitted)]

    # The next quota day: the three deferred ones are the most overdue (never synced), the three
    # synced yesterday wait, their estimate being what their sync cost.
    second = inline.admitted(sqlite_warehouse, YOUTUBE, ids, day(1), quota)
    assert second.admitted == ids[3:] and second.deferred == 3
    spent = _units(sandbox)
    inline.sync(sqlite_warehouse, YOUTUBE, _client(sandbox), second.admitted, "day-1", day(1))
    assert _units(sandbox) - spent <= quota
    assert_youtube_matches(sqlite_warehouse, data)
    with sqlite_warehouse.connect() as conn:
        t = tracked_entities.c
        estimates = dict(conn.execute(select(t.entity_id, t.est_units)).tuples().all())
        costs = dict(conn.execute(select(sync_jobs.c.entity_id, sync_jobs.c.units)).tuples().all())
    assert estimates == costs and all(cost > 0 for cost in costs.values())


def test_an_unexpected_quota_exceeded_leaves_jobs_partial_and_the_next_day_completes_them(
        sandbox: SandboxServer, sqlite_warehouse: Engine) -> None:
    data: YouTubeDataset = sandbox.app.state.youtube.data
    ids = [data.channel_id(p) for p in range(data.dataset.spec.profiles)]
    _track(sqlite_warehouse, ids)
    quota: Quota = YOUTUBE.quota  # type: ignore[assignment]
    never = inline.admitted(sqlite_warehouse, YOUTUBE, ids, day(0), 1e9)
    assert never.estimated == len(ids) * quota.first_sync_units  # nothing known of them yet
    sandbox.app.state.youtube.reset_day(40)  # the project's quota is smaller than anyone thought
    inline.sync(sqlite_warehouse, YOUTUBE, _client(sandbox), ids, "day-0", day(0))
    with sqlite_warehouse.connect() as conn:
        statuses = dict(conn.execute(select(sync_jobs.c.entity_id, sync_jobs.c.status)).tuples().all())
        types = set(conn.scalars(select(sync_jobs.c.error_type).where(sync_jobs.c.status == "partial")))
    assert "partial" in statuses.values() and types == {"QuotaExhausted"}, statuses
    assert sandbox.counters["youtube:units"] == 40
    # The partial ones are still never synced, but their channel pages loaded: each is now estimated
    # from its video count, within 15% of what its first sync really costs.
    partial = [p for p in range(len(ids)) if statuses[ids[p]] == "partial"]
    counted = inline.admitted(sqlite_warehouse, YOUTUBE, [ids[p] for p in partial], day(0), 1e9)
    assert counted.estimated == sum(quota.first_sync(data.video_count(p)) for p in partial)
    assert abs(counted.estimated - sum(minimum_calls(data, partial).values())) < 0.15 * counted.estimated

    sandbox.app.state.youtube.reset_day(1_000_000)  # midnight Pacific: a new day's quota
    inline.sync(sqlite_warehouse, YOUTUBE, _client(sandbox), ids, "day-1", day(1))
    assert_youtube_matches(sqlite_warehouse, data)
    with sqlite_warehouse.connect() as conn:
        last = dict(conn.execute(select(sync_jobs.c.entity_id, sync_jobs.c.status)
                                 .where(sync_jobs.c.run_id == "day-1")).tuples().all())
    assert set(last.values()) == {"succeeded"}


def test_faults_a_rerun_and_a_rebuild_from_raw_leave_the_truth(sqlite_warehouse: Engine) -> None:
    """10% of calls fail (403 rateLimitExceeded, 5xx, timeouts, cut bodies, resets, repeated items):
    the warehouse still equals the truth; a cleared run run again, and a rebuild from raw with no
    call to the API, leave every normalized table identical."""
    faults = FaultPlan(rate=0.1, seed=7, timeout_s=2.0)  # a stalled answer outlasts the client's read timeout
    with SandboxServer(SandboxConfig(spec=SMALL, faults=faults)) as sandbox:
        data: YouTubeDataset = sandbox.app.state.youtube.data
        ids = [data.channel_id(p) for p in range(data.dataset.spec.profiles)]
        client = _client(sandbox, max_attempts=10, timeout=1.0, deadline_s=4.0)
        inline.sync(sqlite_warehouse, YOUTUBE, client, ids, "run-1", day(0))
        injected = sum(v for k, v in sandbox.counters.items() if k.startswith("youtube:fault:"))
        assert injected > 10
        assert_youtube_matches(sqlite_warehouse, data)
        before = checksums(sqlite_warehouse)
        inline.sync(sqlite_warehouse, YOUTUBE, _client(sandbox, max_attempts=10, timeout=1.0, deadline_s=4.0),
                    ids, "run-1", day(0))  # the run cleared and run again
        assert checksums(sqlite_warehouse) == before
        # A stalled answer the client gave up on still ends on the server, and is counted when it does.
        time.sleep(faults.timeout_s + 0.5)
        calls = sandbox.counters["youtube:units"]
        with sqlite_warehouse.begin() as conn:
            clear_derived(conn, "youtube")
            job_ids = list(conn.scalars(select(sync_jobs.c.id).order_by(sync_jobs.c.id)))
        normalize_jobs(sqlite_warehouse, YOUTUBE, job_ids)
        assert checksums(sqlite_warehouse) == before and sandbox.counters["youtube:units"] == calls


def test_after_a_day_of_changes_a_run_spends_exactly_the_units_the_changes_need(
        sandbox: SandboxServer, sqlite_warehouse: Engine) -> None:
    data: YouTubeDataset = sandbox.app.state.youtube.data
    channels = list(range(data.dataset.spec.profiles))
    ids = [data.channel_id(p) for p in channels]
    inline.sync(sqlite_warehouse, YOUTUBE, _client(sandbox), ids, "run-1", day(0))
    before_counts = {(p, j): data.video(p, j).comment_count for p in channels for j in data.videos_newest_first(p)}
    held = held_threads(data, channels)
    data.dataset.epoch = 1  # a day of new videos, comments and replies, and a few deletions
    before = calls(sandbox.counters)
    inline.sync(sqlite_warehouse, YOUTUBE, _client(sandbox), ids, "run-2", day(1))
    spent = calls_since(sandbox.counters, before)
    assert spent == _calls_for_changes(data, channels, before_counts, held, day(1) - timedelta(days=3)), spent
    # Every live video, comment and reply is exact; a deletion waits for a complete pass to be proven:
    # a walk that stopped at known threads saw only what was new, so it marks nothing deleted.
    assert_youtube_matches(sqlite_warehouse, data, incremental=True)
    gone = {data.thread_id(p, j, k) for (p, j), threads in held.items() if data.video_visible(p, j)
            for k in data.dataset.deleted_comments(p, j) if k in threads}  # held, then deleted upstream
    assert gone and not deleted_ids(sqlite_warehouse, "youtube")["comments"]
    inline.sync(sqlite_warehouse, YOUTUBE, _client(sandbox), ids, "run-3", day(1) + timedelta(hours=1),
                full_refresh=True)  # every page: the deletions are proven
    assert gone <= deleted_ids(sqlite_warehouse, "youtube")["comments"]
    assert_youtube_matches(sqlite_warehouse, data)


def _calls_for_changes(data: YouTubeDataset, channels: list[int], counts_before: dict[tuple[int, int], int | None],
                       held: dict[tuple[int, int], dict[int, int]], recent_since: datetime) -> dict[str, int]:
    """One channels call; per channel its first uploads page (it holds a known video older than the
    lookback, so paging stops) and that page's videos call; the comments of each video on it that is
    new, recent, or whose comment count moved: a video whose comments were never fetched is walked
    whole, any other stops at its known threads once what it gained is found."""
    calls = {"channels": 1, "playlistItems": len(channels), "videos": 0, "commentThreads": 0, "comments": 0}
    for p in channels:
        first_page = list(data.videos_newest_first(p))[:50]
        calls["videos"] += bool(first_page)
        for j in first_page:
            video = data.video(p, j)
            moved = counts_before.get((p, j), -1) != video.comment_count
            if moved or video.published_at >= recent_since:
                before = counts_before.get((p, j))
                walk = (incremental_comment_calls(data, p, j, held[(p, j)], video.comment_count - before)
                        if (p, j) in held and before and video.comment_count is not None
                        else comment_calls(data, p, j))
                for call, count in walk.items():
                    calls[call] += count
    return calls
