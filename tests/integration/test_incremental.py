"""Incremental, resumable and concurrent-safe sync, measured by the sandbox's request counters."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import Engine, func, select

from socialsync.sandbox.dataset import Dataset
from socialsync.sandbox.faults import FaultPlan
from socialsync.sandbox.instagram_dataset import InstagramDataset
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.storage import jobs as bookkeeping
from socialsync.storage import planning
from socialsync.storage.schema import comments, posts, quarantine, sync_jobs, sync_tasks
from tests.integration.conftest import SMALL
from tests.integration.instagram_requests import comment_counts, graph_requests, known_posts, moved_posts, needed
from tests.integration.sync_helpers import checksums, client_for, clock, day, open_batch, sync, tracked_ids
from tests.integration.truth import actual, assert_warehouse_matches, deleted_ids, expected

PAGE = 10  # the client's media page size in these tests
COMMENT_PAGE = 50
LOOKBACK = timedelta(days=3)


def _requests(sandbox: SandboxServer) -> Counter[str]:
    return graph_requests(sandbox.counters)


def test_incremental_runs_cost_only_the_changes(sandbox: SandboxServer, warehouse: Engine) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    ig = InstagramDataset(dataset)
    client = client_for(sandbox)
    ids = tracked_ids(dataset)
    owned, public = ig.managed_profiles(), [p for p in range(SMALL.profiles) if ig.public_only(p)]
    assert owned and public

    sync(warehouse, client, ids, "day-0", day(0), lookback=LOOKBACK)  # the first sync walks everything
    assert _requests(sandbox) == needed(dataset, PAGE, COMMENT_PAGE)
    assert_warehouse_matches(warehouse, dataset, enrich=False)

    # Nothing changed: an owned account's node, one media page and its stories; a public account's one
    # business discovery answer (profile and first media page together); not a single comment request.
    before = _requests(sandbox)
    sync(warehouse, client, ids, "day-20", day(20), lookback=LOOKBACK)
    spent = _requests(sandbox) - before
    assert spent == Counter({"graph:node": len(owned), "graph:media": len(owned), "graph:stories": len(owned),
                             "graph:discovery": len(public)})
    print(f"\nno-change run, {len(ids)} profiles: {dict(spent)}")

    # Two days of changes: new posts, new and deleted comments and replies, a deleted post, moved counts.
    known, counts = known_posts(dataset), comment_counts(dataset)
    dataset.epoch = 2
    want = needed(dataset, PAGE, COMMENT_PAGE, known, counts)
    before = _requests(sandbox)
    sync(warehouse, client, ids, "day-21", day(21), lookback=LOOKBACK)
    spent = _requests(sandbox) - before
    assert spent == want, f"spent {dict(spent)}, needed {dict(want)}"
    print(f"after two days of changes: spent {dict(spent)} = needed")
    assert want["graph:comments"] > 0 and want["graph:replies"] > 0 and want["graph:media"] > len(owned) - 1
    _no_live_row_marked_deleted(warehouse, dataset)
    # The posts whose count moved were walked again: their comments and replies equal the truth now.
    moved = moved_posts(dataset, PAGE, known, counts)
    truth = {k: v for k, v in expected(dataset, enrich=False)["comments"].items() if v[0] in moved}
    got = {k: v for k, v in actual(warehouse)["comments"].items() if v[0] in moved}
    assert got == truth and any(v[1] is not None for v in truth.values()), "no reply among the changes"

    with warehouse.connect() as conn:
        stored = set(conn.scalars(select(posts.c.post_id)))
        skipped = conn.scalar(select(func.count()).where(sync_tasks.c.kind == "comments",
                                                         sync_tasks.c.status == "skipped"))
    new_posts = {dataset.post_id(p, j) for p in range(SMALL.profiles)
                 for j in range(dataset.base_post_count(p), dataset.post_count(p))}
    assert new_posts and new_posts <= stored
    assert skipped > 0  # listed posts whose comments were up to date are recorded as skipped

    # A full refresh proves what is gone (posts of both kinds of account, comments and replies) and
    # brings every count up to date; the stories of day 0, expired upstream, stay.
    sync(warehouse, client, ids, "day-22", day(22), lookback=LOOKBACK, full_refresh=True)
    assert_warehouse_matches(warehouse, dataset, enrich=False, story_epochs=[0, 2])
    gone = deleted_ids(warehouse)
    assert gone["posts"] == {dataset.post_id(p, j) for p in range(SMALL.profiles) for j in dataset.deleted_posts(p)}
    with warehouse.connect() as conn:
        held = set(conn.scalars(select(comments.c.comment_id)))
        replies_gone = set(conn.scalars(select(comments.c.comment_id).where(
            comments.c.deleted.is_(True), comments.c.parent_comment_id.is_not(None))))
    assert gone["comments"] == held - set(expected(dataset, enrich=False)["comments"])
    assert gone["posts"] and gone["comments"] and replies_gone


def _no_live_row_marked_deleted(engine: Engine, dataset: Dataset) -> None:
    """Whatever a run proved, nothing the upstream still serves is marked deleted."""
    truth = expected(dataset, enrich=False)
    gone = deleted_ids(engine)
    assert not gone["posts"] & truth["posts"].keys()
    assert not gone["comments"] & truth["comments"].keys()


def test_two_sequential_reads_agree_and_a_future_bound_adds_nothing(sandbox: SandboxServer,
                                                                    warehouse: Engine) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    client = client_for(sandbox)
    ids = tracked_ids(dataset)
    sync(warehouse, client, ids, "read-1", day(1), full_refresh=True)
    first = checksums(warehouse)
    sync(warehouse, client, ids, "read-2", day(1), full_refresh=True)
    assert checksums(warehouse) == first

    dataset.epoch = 2  # there is news now, but all of it is older than the bound asked for
    with warehouse.connect() as conn:
        counts = (conn.scalar(select(func.count()).select_from(posts)),
                  conn.scalar(select(func.count()).select_from(comments)))
    before = _requests(sandbox)
    sync(warehouse, client, ids, "future", day(2), last_synced_at=day(36500))
    with warehouse.connect() as conn:
        after = (conn.scalar(select(func.count()).select_from(posts)),
                 conn.scalar(select(func.count()).select_from(comments)))
    assert after == counts
    assert (_requests(sandbox) - before)["graph:comments"] == 0


def test_quota_exhaustion_leaves_jobs_partial_and_the_next_run_finishes(warehouse: Engine) -> None:
    with SandboxServer(SandboxConfig(spec=SMALL, calls_per_hour=12)) as sandbox:  # runs out mid-posts
        dataset: Dataset = sandbox.app.state.dataset
        # One request in flight: where the quota runs out (mid-pass, cursor kept) is then deterministic.
        client = client_for(sandbox, max_pause_s=0.01, max_in_flight=1)
        ids = tracked_ids(dataset)
        report = sync(warehouse, client, ids, "day-1", day(1))
        assert report["quota_stopped"] == 1
        with warehouse.connect() as conn:
            jobs = conn.execute(select(sync_jobs.c.status, sync_jobs.c.error_type, sync_jobs.c.cursor)).all()
        assert {status for status, _, _ in jobs} <= {"succeeded", "partial"}
        partial = [cursor for status, error, cursor in jobs if status == "partial" and error == "QuotaExhausted"]
        assert partial, "the quota should have stopped some job"
        assert any(cursor.get("posts_after") for cursor in partial), "an interrupted pass keeps its cursor"
        # No loop burning quota: once refused, a step starts no new request (each step asks once more).
        assert sandbox.counters["graph:quota_refused"] <= 2 * client.budget.max_in_flight

        sandbox.app.state.graph.usage.reset(1_000_000)  # the quota comes back the next day
        sync(warehouse, client_for(sandbox), ids, "day-2", day(2))  # a new task, a new client and budget
        with warehouse.connect() as conn:
            latest = conn.execute(select(sync_jobs.c.status, sync_jobs.c.previous_job_id)
                                  .where(sync_jobs.c.id > len(jobs))).all()
        assert {status for status, _ in latest} == {"succeeded"}
        assert all(previous is not None for _, previous in latest)
        assert_warehouse_matches(warehouse, dataset, enrich=False)


def test_two_runs_never_work_one_entity_at_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from socialsync.storage.engine import warehouse_engine

    engine = warehouse_engine(f"sqlite:///{tmp_path / 'w.db'}")
    first = open_batch(engine, ["a", "b"], "scheduled__day1", day(1))
    second = open_batch(engine, ["b", "c"], "manual__day1", day(1))
    status = {job.entity_id: job.status for job in second}
    assert status == {"b": "skipped", "c": "pending"}
    with engine.connect() as conn:
        reason = conn.scalar(select(sync_jobs.c.error_message).where(sync_jobs.c.id == second[0].id))
    assert "scheduled__day1" in reason  # the loser says who holds the profile
    with engine.begin() as conn:
        bookkeeping.close_jobs(conn, "instagram", first, [], day(1), clock())
        planning.release_leases(conn, "instagram", [job.id for job in first])
    third = open_batch(engine, ["b"], "manual__day1-again", day(1))
    assert third[0].status == "pending"


def test_malformed_records_are_quarantined_and_the_rest_proceeds(warehouse: Engine) -> None:
    faults = FaultPlan(malformed_rate=0.05, seed=8)
    with SandboxServer(SandboxConfig(spec=SMALL, faults=faults)) as sandbox:
        dataset: Dataset = sandbox.app.state.dataset
        sync(warehouse, client_for(sandbox), tracked_ids(dataset), "day-1", day(1))
    broken = {dataset.post_id(p, j) for p in range(SMALL.profiles) for j in dataset.posts_newest_first(p)
              if faults.malformed(dataset.post_id(p, j))}
    assert broken
    with warehouse.connect() as conn:
        quarantined = dict(conn.execute(select(quarantine.c.record_id, quarantine.c.reason)).all())
        loaded = set(conn.scalars(select(posts.c.post_id).where(posts.c.product_type != "story")))
        statuses = dict(conn.execute(select(sync_jobs.c.entity_id, sync_jobs.c.status)).all())
    assert set(quarantined) == broken
    assert all("media_type" in reason and "timestamp" in reason for reason in quarantined.values())
    truth = {dataset.post_id(p, j) for p in range(SMALL.profiles) for j in dataset.posts_newest_first(p)}
    assert loaded == truth - broken
    owners = {tracked_ids(dataset)[int(post_id[4:11])] for post_id in broken}
    assert {e for e, s in statuses.items() if s == "partial"} == owners
    assert {e for e, s in statuses.items() if s == "succeeded"} == set(tracked_ids(dataset)) - owners


def test_posts_deleted_between_page_requests_neither_break_nor_skew_paging(sandbox: SandboxServer) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    p = max(range(SMALL.profiles), key=dataset.post_count)
    visible = list(dataset.posts_newest_first(p))
    pages = client_for(sandbox, page_size=5).post_pages(dataset.profile_id(p), None)
    first = next(pages)
    seen = [item["id"] for item in first.payload["data"]]
    dataset.delete_post(p, visible[2])  # already listed
    dataset.delete_post(p, visible[7])  # on the next page, not yet listed
    seen += [item["id"] for page in pages for item in page.payload["data"]]
    expected = [dataset.post_id(p, j) for j in visible if j != visible[7]]
    assert seen == expected  # nothing repeated, nothing skipped but the post that is gone
