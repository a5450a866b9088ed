"""Upstreams that misbehave at the transport: a proxy in front of the sandbox resets, stalls, trickles,
redirects, truncates and rewrites answers; what a job reports must still be what the warehouse holds."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy import Engine, func, select, text

from socialsync.extract import runner
from socialsync.networks.base import ApiCredentials, ApiError
from socialsync.networks.instagram.client import InstagramClient
from socialsync.sandbox.dataset import Dataset
from socialsync.sandbox.faults import FaultPlan
from socialsync.sandbox.instagram_dataset import InstagramDataset
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.storage import jobs as bookkeeping
from socialsync.storage import locks
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.rebuild import clear_derived
from socialsync.storage.schema import metadata, posts, raw_pages, sync_jobs, sync_tasks, tracked_entities
from socialsync.transform.pipeline import normalize_jobs
from tests.hostile import HostileProxy, Recorder, RequestInfo, Rule
from tests.integration.conftest import SMALL
from tests.integration.sync_helpers import INSTAGRAM, SCOPE, checksums, clock, day, open_batch, sync, tracked_ids
from tests.integration.truth import assert_warehouse_matches, deleted_ids

TOKEN = "sandbox-token"


@pytest.fixture
def proxy(sandbox: SandboxServer) -> Iterator[HostileProxy]:
    with HostileProxy(sandbox.url) as hostile:
        yield hostile
        assert hostile.errors == []


@pytest.fixture
def sqlite_warehouse(tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    yield engine
    engine.dispose()


def _client(base: str, **options: object) -> InstagramClient:
    settings: dict[str, object] = {"page_size": 10, "backoff_s": 0.01, "max_wait_s": 2.0, "max_attempts": 3,
                                   "timeout": 2.0}
    settings.update(options)
    return InstagramClient(ApiCredentials(f"{base}/v21.0", TOKEN, {"ig_user_id": Dataset.profile_id(0), **settings}))


def _biggest(dataset: Dataset) -> tuple[int, str]:
    """The owned account with the most posts (its own ``/media`` edge)."""
    ig = InstagramDataset(dataset)
    p = max(ig.managed_profiles(), key=dataset.post_count)
    assert dataset.post_count(p) > 30  # at least four media pages of ten
    return p, dataset.profile_id(p)


def _jobs(engine: Engine, run_id: str | None = None) -> dict[str, tuple[str, str | None, str | None]]:
    query = select(sync_jobs.c.entity_id, sync_jobs.c.status, sync_jobs.c.error_type, sync_jobs.c.error_message)
    if run_id is not None:
        query = query.where(sync_jobs.c.run_id == run_id)
    with engine.connect() as conn:
        return {r.entity_id: (r.status, r.error_type, r.error_message) for r in conn.execute(query)}


def _tasks(engine: Engine, kind: str) -> list[tuple[str, str, str | None]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(sync_tasks.c.external_id, sync_tasks.c.status,
                                                      sync_tasks.c.last_error).where(sync_tasks.c.kind == kind))]


def _media_path(profile_id: str, paged: bool) -> str:
    return rf"^GET /v21\.0/{profile_id}/media\?" + (r".*after=" if paged else r"(?!.*after=)")


# --- 1. a cursor that does not move, or comes back ---------------------------------------------------

def test_a_cursor_that_does_not_move_stops_the_pass_and_the_next_run_finishes(
        sandbox: SandboxServer, proxy: HostileProxy, sqlite_warehouse: Engine) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    _, pid = _biggest(dataset)

    def stuck(body: Any, request: RequestInfo) -> Any:  # every later page names the cursor it was asked with
        body["paging"]["cursors"]["after"] = parse_qs(request.query)["after"][0]
        return body

    proxy.rules.append(Rule(match=_media_path(pid, paged=True), action="rewrite", rewrite=stuck))
    started = time.monotonic()
    sync(sqlite_warehouse, _client(proxy.url), [pid], "run-1", day(0))
    assert time.monotonic() - started < 30
    assert sum("/media" in r.path for r in proxy.requests) == 2  # the first page, then the one that did not move
    status, error_type, message = _jobs(sqlite_warehouse)[pid]
    assert (status, error_type) == ("partial", "PageAnomaly") and "the cursor did not move" in (message or "")
    assert [s for _, s, _ in _tasks(sqlite_warehouse, "posts")] == ["partial"]

    proxy.rules.clear()  # the upstream behaves again: the next run resumes where the pass stopped
    sync(sqlite_warehouse, _client(proxy.url), [pid], "run-2", day(0))
    assert _jobs(sqlite_warehouse, "run-2")[pid][0] == "succeeded"
    assert_warehouse_matches(sqlite_warehouse, dataset, enrich=False, profiles=[dataset.profile_ids().index(pid)])


def test_a_cursor_cycle_is_stopped(sandbox: SandboxServer, proxy: HostileProxy, sqlite_warehouse: Engine) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    _, pid = _biggest(dataset)
    seen: list[str] = []

    def back_to_the_start(body: Any, request: RequestInfo) -> Any:
        seen.append(body["paging"]["cursors"]["after"])
        if len(seen) == 3:  # page three leads back to the cursor page one gave
            body["paging"]["cursors"]["after"] = seen[0]
        return body

    proxy.rules.append(Rule(match=rf"^GET /v21\.0/{pid}/media\?", action="rewrite", rewrite=back_to_the_start))
    sync(sqlite_warehouse, _client(proxy.url), [pid], "run-1", day(0))
    status, _, message = _jobs(sqlite_warehouse)[pid]
    assert status == "partial" and "cursor repeated after 3 page(s)" in (message or ""), message
    assert sum("/media" in r.path for r in proxy.requests) == 3


# --- 2. a page that is not a page is never the end, and never proves a deletion -----------------------

@pytest.mark.parametrize(("broken", "reason"), [
    ({"data": None}, "`data` is NoneType"),
    ({"data": []}, "an empty page with a `next` link"),
])
def test_a_page_that_is_not_a_page_marks_nothing_deleted_under_full_refresh(
        sandbox: SandboxServer, proxy: HostileProxy, warehouse: Engine, broken: dict[str, Any], reason: str) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    ids = tracked_ids(dataset)
    sync(warehouse, _client(proxy.url), ids, "run-1", day(0))
    assert_warehouse_matches(warehouse, dataset, enrich=False)
    before = checksums(warehouse)

    _, pid = _biggest(dataset)
    proxy.rules.append(Rule(match=_media_path(pid, paged=True), action="rewrite",
                            rewrite=lambda body, _: {**body, **broken}))
    comment_post = _post_with_comments(dataset, skip=pid)
    proxy.rules.append(Rule(match=rf"^GET /v21\.0/{comment_post}/comments\?", action="rewrite",
                            rewrite=lambda _body, _: {"data": None}))
    sync(warehouse, _client(proxy.url), ids, "run-2", day(0), full_refresh=True)

    assert deleted_ids(warehouse) == {"posts": set(), "comments": set()}
    assert checksums(warehouse) == before  # nothing lost, nothing marked gone
    jobs = _jobs(warehouse, "run-2")
    assert jobs[pid][0] == "partial" and reason in (jobs[pid][2] or "")
    assert jobs[_owner(dataset, comment_post)][0] == "partial"
    assert (comment_post, "partial") in {(post, s) for post, s, _ in _tasks(warehouse, "comments")}
    assert sum(s == "succeeded" for s, _, _ in jobs.values()) == len(ids) - 2


# --- 4. watermarks move with the rows they vouch for --------------------------------------------------

def test_comments_extracted_but_never_normalized_are_fetched_again(
        sandbox: SandboxServer, sqlite_warehouse: Engine) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    ids = tracked_ids(dataset)
    client = _client(sandbox.url)
    window = runner.ExtractWindow(scope=SCOPE, as_of=day(0))
    jobs = open_batch(sqlite_warehouse, ids, "run-1", day(0))
    runner.extract_posts(sqlite_warehouse, INSTAGRAM, client, jobs, window, clock)
    runner.extract_comments(sqlite_warehouse, INSTAGRAM, client, jobs, window, clock)
    with sqlite_warehouse.begin() as conn:  # normalize never ran: the run's summary closes what is left
        assert bookkeeping.close_unfinished_jobs(conn, "instagram", "run-1", clock()) == len(ids)
        bookkeeping.release_run_leases(conn, "instagram", "run-1")
        watermarks = conn.scalar(text("select count(*) from sync_state"))
        synced = conn.scalar(select(func.count()).where(tracked_entities.c.last_synced_at.is_not(None)))
    assert watermarks == 0 and synced == 0  # nothing vouches for rows that were never loaded

    sync(sqlite_warehouse, client, ids, "run-2", day(1))
    assert_warehouse_matches(sqlite_warehouse, dataset, enrich=False)


def test_a_comment_pass_broken_on_the_first_sync_is_fetched_again_by_the_next(
        sandbox: SandboxServer, proxy: HostileProxy, sqlite_warehouse: Engine) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    ids = tracked_ids(dataset)
    post = _post_with_comments(dataset, skip="")
    proxy.rules.append(Rule(match=rf"^GET /v21\.0/{post}/comments\?", action="rewrite",
                            rewrite=lambda body, _: {**body, "data": None}))
    sync(sqlite_warehouse, _client(proxy.url), ids, "run-1", day(0))
    assert _jobs(sqlite_warehouse)[_owner(dataset, post)][0] == "partial"
    with sqlite_warehouse.connect() as conn:
        assert conn.scalar(text("select count(*) from sync_state where external_id = :p"), {"p": post}) == 0

    proxy.rules.clear()
    sync(sqlite_warehouse, _client(proxy.url), ids, "run-2", day(1))  # the post is not recent: only its debt
    assert_warehouse_matches(sqlite_warehouse, dataset, enrich=False)


# --- 5. deadlines -----------------------------------------------------------------------------------

def test_a_trickling_answer_hits_the_request_deadline_and_fails_only_its_profile(
        sandbox: SandboxServer, proxy: HostileProxy, sqlite_warehouse: Engine) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    ids = tracked_ids(dataset)[:3]
    slow = ids[1]
    proxy.rules.append(Rule(match=rf"^GET /v21\.0/{slow}\?", action="trickle", trickle_every_s=0.2))
    started = time.monotonic()
    sync(sqlite_warehouse, _client(proxy.url, timeout=1.0, deadline_s=1.5, max_attempts=2), ids, "run-1", day(0))
    elapsed = time.monotonic() - started
    assert elapsed < 20, elapsed  # the answer would take minutes at a byte per 0.2 s
    jobs = _jobs(sqlite_warehouse)
    assert jobs[slow][:2] == ("failed", "TransientError") and "within 2s" in (jobs[slow][2] or "")
    assert {jobs[e][0] for e in ids if e != slow} == {"succeeded"}


# --- 6. one bad answer fails its profile, never its batch; redirects are never followed -------------

def test_bad_answers_fail_their_own_profile_and_redirects_carry_no_credentials(
        sandbox: SandboxServer, proxy: HostileProxy, sqlite_warehouse: Engine) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    ids = tracked_ids(dataset)
    redirected, truncated, not_json = ids[1], ids[2], ids[4]  # not ids[0]: business discovery asks on it
    with Recorder() as foreign:
        proxy.rules += [
            Rule(match=rf"^GET /v21\.0/{redirected}\?", action="redirect", redirect_to=foreign.url),
            Rule(match=rf"^GET /v21\.0/{truncated}/media", action="truncate", truncate_at=40),
            Rule(match=rf"^GET /v21\.0/{not_json}\?", action="status", status=200, body="<html>gateway</html>"),
        ]
        sync(sqlite_warehouse, _client(proxy.url), ids, "run-1", day(0))
        assert foreign.requests == []
    jobs = _jobs(sqlite_warehouse)
    assert jobs[redirected][:2] == ("failed", "RedirectRefused")
    assert f"redirect to {proxy.url}" not in (jobs[redirected][2] or "")  # the foreign origin is named
    assert "not followed" in (jobs[redirected][2] or "")
    assert jobs[truncated][:2] == ("failed", "TransientError")
    assert jobs[not_json][:2] == ("failed", "PageAnomaly") and "not an object" in (jobs[not_json][2] or "")
    healthy = [e for e in ids if e not in (redirected, truncated, not_json)]
    assert {jobs[e][0] for e in healthy} == {"succeeded"}
    with sqlite_warehouse.connect() as conn:
        loaded = dict(conn.execute(select(posts.c.profile_id, func.count()).group_by(posts.c.profile_id)).all())
    for e in healthy:
        p = tracked_ids(dataset).index(e)
        assert loaded.get(dataset.profile_id(p), 0) == dataset.post_count(p)


def test_an_id_is_one_path_segment_and_never_climbs_out_of_the_api_path(proxy: HostileProxy) -> None:
    client = _client(proxy.url)
    with pytest.raises(ApiError, match="not a valid id"):
        client.fetch_profile("..")
    assert client.requests == 0 and proxy.requests == []
    with pytest.raises(ApiError):  # encoded as one segment: an unknown node, not another endpoint
        client.fetch_profile("1/../../_sandbox/stats")
    assert {r.path for r in proxy.requests} == {"/v21.0/1%2F..%2F..%2F_sandbox%2Fstats"}


# --- 7. rebuild and sync never overlap; any replay order leaves the newest rows ------------------------

def test_a_rebuild_asked_for_during_a_sync_waits_and_ends_with_the_truth(
        sandbox: SandboxServer, sqlite_warehouse: Engine) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    ids = tracked_ids(dataset)
    client = _client(sandbox.url)
    window = runner.ExtractWindow(scope=SCOPE, as_of=day(0))
    jobs = open_batch(sqlite_warehouse, ids, "sync-1", day(0))  # planned: its leases are held until it loads
    runner.extract_posts(sqlite_warehouse, INSTAGRAM, client, jobs, window, clock)
    with sqlite_warehouse.begin() as conn, pytest.raises(locks.NetworkBusy, match="being synced by sync-1"):
        locks.begin_rebuild(conn, "instagram", "rebuild-1", clock())
    runner.extract_comments(sqlite_warehouse, INSTAGRAM, client, jobs, window, clock)
    normalize_jobs(sqlite_warehouse, INSTAGRAM, [job.id for job in jobs], clock)
    with sqlite_warehouse.begin() as conn:
        bookkeeping.close_jobs(conn, "instagram", jobs, [], clock())
        bookkeeping.release_run_leases(conn, "instagram", "sync-1")
    synced = checksums(sqlite_warehouse)

    with sqlite_warehouse.begin() as conn:  # the rebuild's turn: it holds the network ...
        locks.begin_rebuild(conn, "instagram", "rebuild-1", clock())
        every = [job_id for job_id, _ in bookkeeping.normalized_jobs(conn, "instagram")]
        clear_derived(conn, "instagram")
    with sqlite_warehouse.begin() as conn, pytest.raises(locks.NetworkBusy, match="being rebuilt by run rebuild-1"):
        locks.ensure_not_rebuilding(conn, "instagram", clock())  # ... so a sync's plan waits
    normalize_jobs(sqlite_warehouse, INSTAGRAM, every, clock)
    with sqlite_warehouse.begin() as conn:
        locks.end_rebuild(conn, "instagram", "rebuild-1")
        locks.ensure_not_rebuilding(conn, "instagram", clock())
    assert checksums(sqlite_warehouse) == synced
    assert_warehouse_matches(sqlite_warehouse, dataset, enrich=False)


def test_replaying_jobs_in_any_order_leaves_the_newest_rows(sandbox: SandboxServer, warehouse: Engine) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    ids = tracked_ids(dataset)
    client = _client(sandbox.url)
    sync(warehouse, client, ids, "day-0", day(0), full_refresh=True)
    dataset.epoch = 2  # new posts and comments, deleted ones, moved counts
    sync(warehouse, client, ids, "day-21", day(21), full_refresh=True)
    assert_warehouse_matches(warehouse, dataset, enrich=False, story_epochs=[0, 2])
    newest, gone = checksums(warehouse), deleted_ids(warehouse)
    assert gone["posts"]

    with warehouse.connect() as conn:
        day0 = list(conn.scalars(select(sync_jobs.c.id).where(sync_jobs.c.run_id == "day-0")))
        every = [job_id for job_id, _ in bookkeeping.normalized_jobs(conn, "instagram")]
    normalize_jobs(warehouse, INSTAGRAM, day0)  # a cleared normalize of the older run, after the newer one
    assert checksums(warehouse) == newest and deleted_ids(warehouse) == gone

    with warehouse.begin() as conn:
        clear_derived(conn, "instagram")
    normalize_jobs(warehouse, INSTAGRAM, sorted(every, reverse=True))  # a rebuild, newest job first
    assert checksums(warehouse) == newest and deleted_ids(warehouse) == gone


# --- 8. credentials sent back by the upstream are never stored or logged ------------------------------

def test_a_token_echoed_by_the_upstream_is_never_stored_or_logged(
        sandbox: SandboxServer, proxy: HostileProxy, warehouse: Engine, caplog: pytest.LogCaptureFixture) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    ids = tracked_ids(dataset)

    def echo_in_next(body: Any, request: RequestInfo) -> Any:  # as Graph's own paging.next links do
        if isinstance(body, dict) and isinstance(body.get("paging"), dict) and body["paging"].get("next"):
            body["paging"]["next"] += f"&access_token={TOKEN}"
        return body

    proxy.rules += [
        Rule(match=rf"^GET /v21\.0/{ids[0]}\?", action="status", status=400,
             body={"error": {"message": f"Invalid OAuth access token {TOKEN} for app", "type": "OAuthException",
                             "code": 100}}),
        Rule(match=rf"^GET /v21\.0/{ids[1]}\?", action="rewrite",
             rewrite=lambda body, _: {**body, "debug": f"token={TOKEN}", "biography": f"call me: {TOKEN}"}),
        Rule(match=r"^GET /v21\.0/", action="rewrite", rewrite=echo_in_next),
    ]
    with caplog.at_level("DEBUG"):
        sync(warehouse, _client(proxy.url), ids, "run-1", day(0))
    assert TOKEN not in caplog.text
    assert _jobs(warehouse)[ids[0]][0] == "failed"
    found = _tables_containing(warehouse, TOKEN)
    assert found == [], found
    assert any("access_token=***" in str(v) for v in _column_values(warehouse, "raw_pages", "payload"))


def _tables_containing(engine: Engine, needle: str) -> list[str]:
    hits = []
    for table in metadata.sorted_tables:
        for column in table.columns:
            if any(needle in str(v) for v in _column_values(engine, table.name, column.name)):
                hits.append(f"{table.name}.{column.name}")
    return hits


def _column_values(engine: Engine, table: str, column: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.scalars(select(metadata.tables[table].c[column])))


# --- 9. a profile that does not exist stops being retried -------------------------------------------

def test_a_profile_that_does_not_exist_is_deactivated_after_consecutive_misses(
        sandbox: SandboxServer, sqlite_warehouse: Engine) -> None:
    gone = "178400000009999999"
    client = _client(sandbox.url)
    for n in range(3):
        with sqlite_warehouse.begin() as conn:
            conn.execute(tracked_entities.insert().prefix_with("OR IGNORE"),
                         {"network": "instagram", "entity_id": gone, "active": True, "added_at": clock(), "misses": 0})
        sync(sqlite_warehouse, client, [gone], f"run-{n}", day(n))
        with sqlite_warehouse.connect() as conn:
            row = conn.execute(select(tracked_entities.c.active, tracked_entities.c.misses,
                                      tracked_entities.c.deactivated_reason)
                               .where(tracked_entities.c.entity_id == gone)).one()
        assert row.misses == n + 1
        assert row.active is (n < 2)
    assert "not found" in (row.deactivated_reason or "") and "3 consecutive runs" in row.deactivated_reason


# --- helpers ------------------------------------------------------------------------------------------

def _post_with_comments(dataset: Dataset, skip: str) -> str:
    for p in InstagramDataset(dataset).managed_profiles():
        if dataset.profile_id(p) == skip:
            continue
        for j in range(dataset.post_count(p)):
            if dataset.comment_count(p, j) > 3:
                return dataset.post_id(p, j)
    raise AssertionError("the dataset has no post with comments")


def _owner(dataset: Dataset, post_id: str) -> str:
    found = dataset.parse_post_id(post_id)
    assert found is not None
    return dataset.profile_id(found[0])


# --- issue 7: concurrency under one rate budget -------------------------------------------------------

def test_profiles_are_worked_concurrently_and_one_throttle_answer_pauses_them_all(
        sandbox: SandboxServer, proxy: HostileProxy, sqlite_warehouse: Engine) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    ids = tracked_ids(dataset)
    throttled = Rule(match=r"^GET /v21\.0/\d+/media\?", action="status", status=429, skip=4, times=1,
                     headers={"Retry-After": "1"},
                     body={"error": {"message": "(#4) Application request limit reached", "code": 4}})
    proxy.rules.append(throttled)
    sync(sqlite_warehouse, _client(proxy.url, max_in_flight=6), ids, "run-1", day(0))
    assert proxy.hits(throttled) == 1
    assert_warehouse_matches(sqlite_warehouse, dataset, enrich=False)  # the throttled page was asked again

    graph = [r for r in proxy.requests if r.path.startswith("/v21.0/")]
    refused = next(r for r in graph if r.action == "status")
    # Requests overlapped: several profiles were in flight at once before the throttle answer.
    before = [r for r in graph if r.at < refused.at]
    assert len({r.path.split("/")[2] for r in before}) >= 3
    # After it, no worker started a request until the API's Retry-After had passed (those already
    # on the wire when the answer came may still arrive within a few milliseconds).
    during = [r for r in graph if refused.at + 0.1 < r.at < refused.at + 0.95]
    assert during == [], [f"{r.path} at +{r.at - refused.at:.2f}s" for r in during]
    assert any(r.at >= refused.at + 0.95 for r in graph)


def test_posts_listed_twice_have_their_comments_fetched_once(sqlite_warehouse: Engine) -> None:
    """Graph repeats an item on the next page when the list moves while it is paged: the walk over
    the listed posts remembers nothing per post, yet no comment page is asked for twice."""
    faults = FaultPlan(rate=1.0, kinds=("repeat",), seed=1)
    with SandboxServer(SandboxConfig(spec=SMALL, faults=faults)) as sandbox, HostileProxy(sandbox.url) as proxy:
        dataset: Dataset = sandbox.app.state.dataset
        sync(sqlite_warehouse, _client(proxy.url, max_in_flight=8), tracked_ids(dataset), "run-1", day(0))
        assert proxy.errors == []
    assert_warehouse_matches(sqlite_warehouse, dataset, enrich=False)
    media = [r for r in proxy.requests if r.path.endswith("/media")]
    listed = [item for page in _media_answers(sqlite_warehouse) for item in page]
    assert len(listed) > len(set(listed)), "the sandbox repeated no post: the test proves nothing"
    asked = Counter((r.path, r.query) for r in proxy.requests if r.path.endswith("/comments"))
    assert asked and max(asked.values()) == 1, [k for k, n in asked.items() if n > 1]
    first_pages = Counter(path for path, query in asked if "after=" not in query)
    owned = InstagramDataset(dataset).managed_profiles()  # a public account's comments are not fetched
    with_comments = {p for p in set(listed) if int(p[4:11]) in owned and _comment_count(sqlite_warehouse, p)}
    assert set(first_pages) == {f"/v21.0/{p}/comments" for p in with_comments} and media


def _media_answers(engine: Engine) -> list[list[str]]:
    with engine.connect() as conn:
        payloads = conn.scalars(select(raw_pages.c.payload).where(raw_pages.c.kind == "posts"))
        return [[stub.post_id for stub in INSTAGRAM.post_stubs(payload)] for payload in payloads]


def _comment_count(engine: Engine, post_id: str) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(posts.c.comments_count).where(posts.c.post_id == post_id)) or 0)
