"""Extract loops: profile and post pages, then the comment pages of posts that need them.

Every page is written to ``raw_pages`` in the same transaction as the cursor that follows it, so
a crash re-fetches at most one page and a retried task continues where the last one stopped.
Incremental runs stop paging at the first already-known post older than the lookback window and
fetch a post's comments only when it is new, its comment count moved, or it is recent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import Engine, select

from socialsync.extract.grouped import grouped_posts
from socialsync.extract.paging import PassGuard
from socialsync.networks.base import (
    ApiError,
    AuthError,
    CommentHistory,
    CursorExpiredError,
    FetchedPage,
    GroupedPostsClient,
    NetworkClient,
    NetworkSpec,
    NotFoundError,
    PageAnomaly,
    PostStub,
    ProfileList,
    RawPage,
    ThrottledError,
    Unavailable,
)
from socialsync.storage import jobs as bookkeeping
from socialsync.storage.planning import profile_ids
from socialsync.storage.raw import last_cursor, raw_page_ids, read_raw_pages, write_raw_page
from socialsync.storage.schema import profiles
from socialsync.storage.state import (
    comment_debt,
    comment_watermarks,
    known_comments,
    known_posts,
    known_rows,
    last_complete_walk,
)

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ExtractWindow:
    """What a run asks for: its scope, the time it stands for, and what bounds its paging."""

    scope: frozenset[str]
    as_of: datetime  # the run's time (its data interval's end); never the wall clock
    lookback: timedelta = timedelta(days=3)
    since_id: str | None = None  # stop at this post: only newer ones are wanted
    until_id: str | None = None  # recorded on the job; Graph pages by cursor, not by id
    last_synced_at: datetime | None = None  # conf override: stop at the first post older than this
    full_refresh: bool = False

    @property
    def recent_since(self) -> datetime:
        return self.as_of - self.lookback


@dataclass
class ExtractReport:
    """Counts a task returns through XCom (small by construction)."""

    jobs: int = 0
    pages: int = 0
    items: int = 0
    requests: int = 0
    failed_jobs: int = 0
    anomalies: int = 0
    comment_posts: int = 0
    comment_posts_skipped: int = 0
    quota_stopped: bool = False
    retry_later: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Count from any worker thread."""
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_xcom(self) -> dict[str, int]:
        return {"jobs": self.jobs, "pages": self.pages, "items": self.items, "requests": self.requests,
                "failed_jobs": self.failed_jobs, "anomalies": self.anomalies, "comment_posts": self.comment_posts,
                "comment_posts_skipped": self.comment_posts_skipped, "quota_stopped": int(self.quota_stopped)}


class RetryLater(RuntimeError):
    """Some work hit transient errors after all in-task retries; the task should be retried."""


class ExtractStep(Protocol):
    def __call__(self, engine: Engine, network: NetworkSpec, client: NetworkClient,
                 jobs: Sequence[bookkeeping.JobRef], window: ExtractWindow, clock: Clock, *,
                 last_try: bool = True) -> ExtractReport: ...


class Progress:
    """A line in the task's log each time a profile is done: how far the batch is, pages and requests so far."""

    def __init__(self, step: str, total: int, report: ExtractReport, client: NetworkClient) -> None:
        self.step, self.total, self.report, self.client = step, total, report, client
        self.done = 0
        self._lock = threading.Lock()

    @contextmanager
    def of(self, job: bookkeeping.JobRef) -> Iterator[None]:
        try:
            yield
        finally:
            self.finished(job)

    def finished(self, job: bookkeeping.JobRef) -> None:
        with self._lock:
            self.done += 1
            done = self.done
        log.info("%s: %s of %s profile(s) done (last %s); %s page(s), %s item(s), %s request(s) so far",
                 self.step, done, self.total, job.entity_id, self.report.pages, self.report.items,
                 self.client.requests)


def _error_text(exc: BaseException) -> str:
    return str(exc)[:2000]


# --- posts ---------------------------------------------------------------------------------------

def extract_posts(engine: Engine, network: NetworkSpec, client: NetworkClient,
                  jobs: Sequence[bookkeeping.JobRef], window: ExtractWindow, clock: Clock, *,
                  last_try: bool = True) -> ExtractReport:
    """The profile and every wanted post page of each job's entity, page by page into raw.

    One profile's bad answer fails that profile's job, never its neighbours'. Transient failures
    that outlast the in-task retries make the task retry (only the unfinished work), unless this
    is the task's last try: then those jobs end ``failed`` with the reason, to resume next run.
    """
    report = ExtractReport()
    requests_before = client.requests
    progress = Progress("posts", len([job for job in jobs if job.status not in bookkeeping.FINISHED]), report, client)

    def work(job: bookkeeping.JobRef) -> None:
        if _stopped_before(engine, client, job, report, clock):
            return
        try:
            with progress.of(job):
                _posts(engine, network, client, job, window, report, clock)
        except AuthError as exc:
            client.budget.stop(exc)  # the connection is wrong: every job would fail the same way
            raise
        except ThrottledError as exc:
            client.budget.stop(exc)
            _quota_stop(engine, [job], exc, report, clock)
        except ApiError as exc:
            _job_failed(engine, job, exc, report, clock, last_try)

    live = [job for job in jobs if job.status not in bookkeeping.FINISHED]
    report.add(jobs=len(live))
    with engine.begin() as conn:
        bookkeeping.set_jobs_running(conn, [job.id for job in live])
    try:
        if "profile" in window.scope:  # every job starts with its profile, a batch of them per call
            live = _profiles(engine, network, client, live, report, clock, last_try)
        if "posts" in window.scope and network.posts_per_query > 1:
            grouped_posts(engine, network, cast(GroupedPostsClient, client), live, window, report, clock,
                          expected=lambda job: _expected_posts(engine, network, job),
                          failed=lambda group, exc: _group_failed(engine, client, group, exc, report, clock, last_try),
                          workers=client.budget.max_in_flight, finished=progress.finished)
        elif "posts" in window.scope:
            _each_concurrently(work, live, client.budget.max_in_flight)
        lists = [declared for declared in network.lists if declared.part in window.scope]
        if lists:
            _each_concurrently(lambda job: _lists_of_job(engine, network, client, job, lists, window, report, clock,
                                                         last_try),
                               _still_live(engine, live), client.budget.max_in_flight)
    finally:
        report.requests = client.requests - requests_before
    if report.retry_later:
        raise RetryLater(f"{len(report.retry_later)} job(s) hit transient errors: {report.retry_later[:5]}")
    return report


def _still_live(engine: Engine, jobs: Sequence[bookkeeping.JobRef]) -> list[bookkeeping.JobRef]:
    """The jobs the steps so far neither failed nor closed."""
    with engine.connect() as conn:
        closed = bookkeeping.finished_jobs(conn, [job.id for job in jobs])
    return [job for job in jobs if job.id not in closed]


def _lists_of_job(engine: Engine, network: NetworkSpec, client: NetworkClient, job: bookkeeping.JobRef,
                  lists: Sequence[ProfileList], window: ExtractWindow, report: ExtractReport, clock: Clock,
                  last_try: bool) -> None:
    """Each declared list of the job's profile (its live stories), a sub-sync each, page by page into
    raw with the cursor after each page. Such a walk proves nothing gone; an anomaly ends it ``partial``."""
    if _stopped_before(engine, client, job, report, clock):
        return
    for declared in lists:
        with engine.begin() as conn:
            task_id, before = bookkeeping.begin_task(conn, job.id, declared.kind, job.entity_id)
            cursor = bookkeeping.job_cursor(conn, job.id)
        if before in ("succeeded", "skipped"):
            continue
        reason = network.unserved(job.entity_id).get(declared.part)
        try:
            if reason is not None:
                raise Unavailable(reason)
            _list_pages(engine, network, client, job, declared, window, cursor, task_id, report, clock)
        except AuthError as exc:
            client.budget.stop(exc)
            raise
        except ThrottledError as exc:
            client.budget.stop(exc)
            _quota_stop(engine, [job], exc, report, clock)
            return
        except Unavailable as exc:
            with engine.begin() as conn:
                bookkeeping.finish_task(conn, task_id, "skipped", None, error=_error_text(exc))
        except PageAnomaly as exc:
            log.warning("entity %s: %s walk stopped by an anomaly: %s", job.entity_id, declared.kind, exc)
            report.add(anomalies=1)
            with engine.begin() as conn:
                bookkeeping.finish_task(conn, task_id, "partial", None, error=_error_text(exc))
        except ApiError as exc:
            log.warning("entity %s: %s failed: %s", job.entity_id, declared.kind, exc)
            with engine.begin() as conn:
                bookkeeping.finish_task(conn, task_id, "failed", None, error=_error_text(exc))
            if exc.retryable and not last_try:
                report.retry_later.append(job.entity_id)


def _list_pages(engine: Engine, network: NetworkSpec, client: NetworkClient, job: bookkeeping.JobRef,
                declared: ProfileList, window: ExtractWindow, cursor: dict[str, Any], task_id: int,
                report: ExtractReport, clock: Clock) -> None:
    """One walk of a declared list, from where an earlier attempt of the job stopped. A walk from the top
    to the last page is ``complete`` (``seen``): only such a walk proves entries removed. A newest-first
    list between two complete walks stops at the first page holding an entry the warehouse has."""
    kind = declared.kind
    key, top, daily = f"{kind}_after", f"{kind}_from_top", f"{kind}_incremental"
    count = _profile_count(engine, network, job, declared.bounded_by) if declared.bounded_by else None
    limit = client.max_list_items
    if count is not None and count > limit:
        raise Unavailable(f"{kind} of {job.entity_id}: {count} entries, more than max_list_items ({limit}); "
                          "not walked")
    if daily not in cursor:  # decided once per job: a retried attempt walks the way the first one did
        cursor[daily] = declared.newest_first and not window.full_refresh and not _walk_due(
            engine, network, job, kind, window.as_of, client.full_list_days)
    for attempt in range(2):
        start = cursor.get(key)
        if start is None:
            cursor[top] = True
        guard = PassGuard(f"{kind} of {job.entity_id}", start, count)
        items = 0
        try:
            for page in guard.watch(client.list_pages(kind, job.entity_id, start)):
                items += page.item_count
                cut = page.next_cursor is not None and count is None and items > limit
                known = bool(cursor[daily]) and page.next_cursor is not None and _holds_known(
                    engine, network, declared, page)
                if known:  # everything after it was listed by an earlier walk
                    page = replace(page, next_cursor=None)
                cursor[key] = None if cut else page.next_cursor
                with engine.begin() as conn:  # the page, the cursor after it and, with the last, the sub-sync
                    write_raw_page(conn, network.name, job.id, page, clock())
                    bookkeeping.set_job_cursor(conn, job.id, cursor)
                    if cut:  # a list the API gives no count of, longer than a walk may be
                        bookkeeping.finish_task(conn, task_id, "partial", None, seen={"complete": False},
                                                error=f"{kind} of {job.entity_id}: more than max_list_items "
                                                      f"({limit}) entries; the rest not walked")
                    elif page.next_cursor is None:
                        bookkeeping.finish_task(conn, task_id, "succeeded", clock(), seen={
                            "complete": bool(cursor.get(top)) and not cursor[daily],
                            **({"incremental": True} if cursor[daily] else {})})
                report.add(pages=1, items=page.item_count)
                if cut or known:
                    return
            return
        except CursorExpiredError:
            if start is None or attempt:
                raise
            log.warning("entity %s: the %s cursor expired, walking the list again from the top", job.entity_id, kind)
            cursor[key] = None


def _profiles(engine: Engine, network: NetworkSpec, client: NetworkClient, jobs: Sequence[bookkeeping.JobRef],
              report: ExtractReport, clock: Clock, last_try: bool) -> list[bookkeeping.JobRef]:
    """The profiles of ``jobs``, ``network.profiles_per_call`` to a call, calls concurrently; returns
    the jobs whose profile is in raw (fetched now or by an earlier try), in their order.

    An entity the API does not know fails its own job (``NotFoundError``: counted towards its
    deactivation); an error answering a whole call fails the jobs of that call only.
    """
    with engine.begin() as conn:
        tasks = {job.id: bookkeeping.begin_task(conn, job.id, "profile", job.entity_id) for job in jobs}
    landed = {job.id for job in jobs if tasks[job.id][1] == "succeeded"}
    lock = threading.Lock()

    def call(group: list[bookkeeping.JobRef]) -> None:
        if client.budget.stopped is not None:
            if isinstance(client.budget.stopped, ThrottledError):
                _quota_stop(engine, group, client.budget.stopped, report, clock)
            return
        try:
            pages = {page.parent_id: page for page in client.fetch_profiles([job.entity_id for job in group])}
        except AuthError as exc:
            client.budget.stop(exc)
            raise
        except ThrottledError as exc:
            client.budget.stop(exc)
            _quota_stop(engine, group, exc, report, clock)
            return
        except ApiError as exc:
            for job in group:
                _job_failed(engine, job, exc, report, clock, last_try)
            return
        for job in group:
            page = pages.get(job.entity_id)
            if page is None:
                _job_failed(engine, job, NotFoundError(f"{network.name} knows no profile {job.entity_id}", status=404),
                            report, clock, last_try)
                continue
            with engine.begin() as conn:
                write_raw_page(conn, network.name, job.id, page, clock())
                bookkeeping.finish_task(conn, tasks[job.id][0], "succeeded", clock())
            report.add(pages=1, items=1)
            with lock:
                landed.add(job.id)
        log.info("%s profile(s) fetched in one call", len(pages))

    todo = [job for job in jobs if job.id not in landed]
    _each_concurrently(call, _chunks(todo, max(1, network.profiles_per_call)), client.budget.max_in_flight)
    return [job for job in jobs if job.id in landed]


T = TypeVar("T")


def _each_concurrently(work: Callable[[T], None], items: Iterable[T], workers: int) -> None:
    """Run ``work`` on every item, at most ``workers`` at once; then raise the first error, if any."""
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="extract") as pool:
        _each_in(pool, work, items, workers)


def _group_failed(engine: Engine, client: NetworkClient, group: list[bookkeeping.JobRef], exc: ApiError,
                  report: ExtractReport, clock: Clock, last_try: bool) -> None:
    """An error that ended a grouped walk: as for one profile's walk, for each job still in it."""
    if isinstance(exc, AuthError):
        client.budget.stop(exc)
        raise exc
    if isinstance(exc, ThrottledError):
        client.budget.stop(exc)
        _quota_stop(engine, group, exc, report, clock)
        return
    for job in group:
        _job_failed(engine, job, exc, report, clock, last_try)


def _stopped_before(engine: Engine, client: NetworkClient, job: bookkeeping.JobRef, report: ExtractReport,
                    clock: Clock) -> bool:
    """A job not started when the task's budget was stopped: closed ``partial`` (quota) or left (credentials)."""
    stopped = client.budget.stopped
    if stopped is None:
        return False
    if isinstance(stopped, ThrottledError):
        _quota_stop(engine, [job], stopped, report, clock)
    return True


def _quota_stop(engine: Engine, jobs: Sequence[bookkeeping.JobRef], exc: ApiError, report: ExtractReport,
                clock: Clock) -> None:
    """The quota is spent: close these jobs ``partial``, cursors kept, for the next run to resume."""
    log.warning("API quota exhausted: %s job(s) left partial (%s)", len(jobs), exc)
    report.quota_stopped = True
    with engine.begin() as conn:
        for job in jobs:
            if job.status in bookkeeping.FINISHED:
                continue
            bookkeeping.set_job_status(conn, job.id, "partial", error_type="QuotaExhausted",
                                       error_message=_error_text(exc), finished_at=clock())


def _job_failed(engine: Engine, job: bookkeeping.JobRef, exc: ApiError, report: ExtractReport,
                clock: Clock, last_try: bool) -> None:
    log.warning("job %s (entity %s) failed: %s", job.id, job.entity_id, exc)
    with engine.begin() as conn:
        if exc.retryable and not last_try:
            bookkeeping.set_job_status(conn, job.id, "running", error_type=exc.error_type,
                                       error_message=_error_text(exc))
            report.retry_later.append(job.entity_id)
        else:
            bookkeeping.set_job_status(conn, job.id, "failed", error_type=exc.error_type,
                                       error_message=_error_text(exc), finished_at=clock())
            report.add(failed_jobs=1)


def _posts(engine: Engine, network: NetworkSpec, client: NetworkClient, job: bookkeeping.JobRef,
           window: ExtractWindow, report: ExtractReport, clock: Clock) -> None:
    """At most two passes: finish the pass a previous job left (``resume_after``), then from the top.

    An anomaly ends the sub-sync ``partial`` where it stands: the cursor of the last page that
    could be trusted stays on the job, so the next run resumes there, and nothing is proven gone.
    """
    with engine.begin() as conn:
        task_id, before = bookkeeping.begin_task(conn, job.id, "posts", job.entity_id)
        cursor = bookkeeping.job_cursor(conn, job.id)
    if before == "succeeded":
        return
    expected = _expected_posts(engine, network, job)
    try:
        if cursor.get("resume_after"):
            try:
                _pass(engine, network, client, job, window, cursor, "resume_after", report, clock,
                      full=bool(cursor.get("resume_full_pass")), expected=expected)
            except CursorExpiredError:
                log.warning("entity %s: the cursor left by job %s expired; a full pass replaces it",
                            job.entity_id, job.id)
                cursor["full_pass"] = True
            cursor.pop("resume_after", None)
            _save_cursor(engine, job.id, cursor)
        if not cursor.get("top_done"):
            try:
                _pass(engine, network, client, job, window, cursor, "posts_after", report, clock,
                      full=bool(cursor.get("full_pass")), expected=expected)
            except CursorExpiredError:
                log.warning("entity %s: cursor expired mid-pass, starting again from the top", job.entity_id)
                cursor.update(posts_after=None, from_top=False)
                _pass(engine, network, client, job, window, cursor, "posts_after", report, clock, full=True,
                      expected=expected)
    except PageAnomaly as exc:
        log.warning("entity %s: posts pass stopped by an anomaly, the job ends partial: %s", job.entity_id, exc)
        report.add(anomalies=1)
        with engine.begin() as conn:
            bookkeeping.finish_task(conn, task_id, "partial", None, error=_error_text(exc))
            bookkeeping.set_job_status(conn, job.id, "running", error_type=exc.error_type,
                                       error_message=_error_text(exc))
        return
    with engine.begin() as conn:
        bookkeeping.finish_task(conn, task_id, "succeeded", clock())


def _walk_due(engine: Engine, network: NetworkSpec, job: bookkeeping.JobRef, kind: str, as_of: datetime,
              every_days: int) -> bool:
    """Whether a list's walk must go to its end: never walked whole, or not for ``every_days``."""
    with engine.connect() as conn:
        profile_id = profile_ids(conn, network.name, [job.entity_id])[job.entity_id]
        last = last_complete_walk(conn, network.name, kind, profile_id)
    return last is None or last <= as_of - timedelta(days=every_days)


def _holds_known(engine: Engine, network: NetworkSpec, declared: ProfileList, page: FetchedPage) -> bool:
    """Whether a list's page holds an entry the warehouse already has live (a known follow)."""
    assert declared.covers is not None, f"a newest-first list ({declared.kind}) covers rows to stop at"
    rows = getattr(network.normalize(RawPage(0, page.kind, page.parent_id, page.payload)), declared.covers.table)
    with engine.connect() as conn:
        return known_rows(conn, network.name, declared.covers.table, [r.model_dump() for r in rows])


def _profile_count(engine: Engine, network: NetworkSpec, job: bookkeeping.JobRef, field: str) -> int | None:
    """A count (``followers_count``) of the job's profile as this job's profile page gave it."""
    with engine.connect() as conn:
        page_ids = raw_page_ids(conn, [job.id], kinds=["profile"])
    for page in read_raw_pages(engine, page_ids[-1:]):
        for profile in network.normalize(page).profiles:
            value = getattr(profile, field)
            return int(value) if value is not None else None
    return None


def _expected_posts(engine: Engine, network: NetworkSpec, job: bookkeeping.JobRef) -> int | None:
    """The posts count the API reported for the entity: this job's profile page, else the last one loaded."""
    fetched = _profile_count(engine, network, job, "posts_count")
    if fetched is not None:
        return fetched
    with engine.connect() as conn:
        profile_id = profile_ids(conn, network.name, [job.entity_id])[job.entity_id]
        stored = conn.scalar(select(profiles.c.posts_count).where(profiles.c.network == network.name,
                                                                  profiles.c.profile_id == profile_id))
    return int(stored) if stored is not None else None


def _save_cursor(engine: Engine, job_id: int, cursor: dict[str, Any]) -> None:
    with engine.begin() as conn:
        bookkeeping.set_job_cursor(conn, job_id, cursor)


def _pass(engine: Engine, network: NetworkSpec, client: NetworkClient, job: bookkeeping.JobRef,
          window: ExtractWindow, cursor: dict[str, Any], key: str, report: ExtractReport, clock: Clock,
          full: bool, expected: int | None) -> None:
    start = cursor.get(key)
    if key == "posts_after" and start is None:
        cursor["from_top"] = True
    pages = 0
    guard = PassGuard(f"posts of {job.entity_id}", start, expected)
    for page in guard.watch(client.post_pages(job.entity_id, start)):
        stop = _stop_paging(engine, network, network.post_stubs(page.payload), window, full)
        cursor[key] = None if stop else page.next_cursor
        finished = stop or page.next_cursor is None
        if key == "posts_after" and finished:
            cursor["top_done"] = True
            # Only an unbounded walk from the first page to the last proves which posts are gone.
            cursor["posts_complete"] = bool(cursor.get("from_top")) and not stop
        with engine.begin() as conn:  # the page and the cursor after it land together
            write_raw_page(conn, network.name, job.id, page, clock())
            bookkeeping.set_job_cursor(conn, job.id, cursor)
        pages += 1
        report.add(pages=1, items=page.item_count)
        log.info("entity %s: posts page %s (%s) with %s items (job %s)", job.entity_id, pages, key,
                 page.item_count, job.id)
        if stop:
            log.info("entity %s: reached known posts older than the window after %s page(s)",
                     job.entity_id, pages)
            return


def _stop_paging(engine: Engine, network: NetworkSpec, stubs: Sequence[PostStub], window: ExtractWindow,
                 full: bool) -> bool:
    if window.full_refresh or full:
        return False
    if window.since_id is not None and any(s.post_id == window.since_id for s in stubs):
        return True
    if window.last_synced_at is not None:  # an explicit bound from conf overrides the watermark
        return any(s.created_at is not None and s.created_at < window.last_synced_at for s in stubs)
    old = [s.post_id for s in stubs if s.created_at is not None and s.created_at < window.recent_since]
    if not old:
        return False
    with engine.connect() as conn:
        return bool(known_posts(conn, network.name, old))


# --- comments ------------------------------------------------------------------------------------

def extract_comments(engine: Engine, network: NetworkSpec, client: NetworkClient,
                     jobs: Sequence[bookkeeping.JobRef], window: ExtractWindow, clock: Clock, *,
                     last_try: bool = True, done: Callable[[int], None] | None = None) -> ExtractReport:
    """The comments of each post listed by the jobs that needs them, one post at a time. ``done`` is
    told each job whose comment threads were all walked (its raw pages are complete: normalize may go)."""
    report = ExtractReport()
    if "comments" not in window.scope:
        return report
    requests_before = client.requests
    progress = Progress("comments", len([j for j in jobs if j.status not in ("failed", "succeeded", "skipped")]),
                        report, client)
    # Comment threads of every job share one pool: a profile with thousands of posts keeps every
    # worker busy, and the budget bounds what is in flight whatever the two pools hold.
    with ThreadPoolExecutor(max_workers=client.budget.max_in_flight, thread_name_prefix="comments") as threads:

        def work(job: bookkeeping.JobRef) -> None:
            if _stopped_before(engine, client, job, report, clock):
                return
            report.add(jobs=1)
            try:
                with progress.of(job):
                    _comments_of_job(engine, network, client, job, window, report, clock, last_try, threads)
                if done is not None:
                    done(job.id)
            except AuthError as exc:
                client.budget.stop(exc)
                raise
            except ThrottledError as exc:
                client.budget.stop(exc)
                _quota_stop(engine, [job], exc, report, clock)

        try:
            _each_concurrently(work, [j for j in jobs if j.status not in ("failed", "succeeded", "skipped")],
                               client.budget.max_in_flight)
        finally:
            report.requests = client.requests - requests_before
    if report.retry_later:
        raise RetryLater(f"comments of {len(report.retry_later)} post(s) hit transient errors: "
                         f"{report.retry_later[:5]}")
    return report


def _comments_of_job(engine: Engine, network: NetworkSpec, client: NetworkClient, job: bookkeeping.JobRef,
                     window: ExtractWindow, report: ExtractReport, clock: Clock, last_try: bool,
                     threads: ThreadPoolExecutor) -> None:
    """Every comment thread the job owes; its own ``comment_threads`` sub-sync ends ``succeeded`` only
    when the walk got to the end (the per-post sub-syncs say how each thread went)."""
    with engine.begin() as conn:
        walk_id, before = bookkeeping.begin_task(conn, job.id, bookkeeping.COMMENT_THREADS, job.entity_id)
        unserved = network.unserved(job.entity_id).get("comments")
        if unserved is not None and before != "succeeded":  # this kind of account has no comments to give
            bookkeeping.finish_task(conn, walk_id, "skipped", None, error=unserved)
            return
    if before in ("succeeded", "skipped"):
        return
    _walk_comment_threads(engine, network, client, job, window, report, clock, last_try, threads)
    with engine.begin() as conn:
        bookkeeping.finish_task(conn, walk_id, "succeeded", clock())


def _walk_comment_threads(engine: Engine, network: NetworkSpec, client: NetworkClient, job: bookkeeping.JobRef,
                          window: ExtractWindow, report: ExtractReport, clock: Clock, last_try: bool,
                          threads: ThreadPoolExecutor) -> None:
    """The job's listed posts, then the posts earlier runs left owing comments, threads concurrently.

    Which posts need their comments is decided here, a chunk of posts per query; only the threads
    to fetch go to the pool, so an up-to-date post costs no round trip of its own. Nothing here
    grows with the profile: a post listed twice is told apart by its sub-sync (opened once per job)
    and by the threads in flight, and the debt query leaves out the posts this job has sub-syncs for.
    """
    in_flight: set[str] = set()  # at most the pool's size
    lock = threading.Lock()

    def debt() -> Iterator[PostStub]:
        with engine.connect() as conn:
            profile_id = profile_ids(conn, network.name, [job.entity_id])[job.entity_id]
            owing = comment_debt(conn, network.name, profile_id, exclude_job=job.id)
        if owing:
            log.info("entity %s: %s post(s) still owe their comments from earlier runs", job.entity_id, len(owing))
        yield from owing

    def to_fetch() -> Iterator[tuple[PostStub, tuple[int, str], int | None]]:
        # The listed posts' sub-syncs all exist before the debt is read: it leaves them out.
        for source in (lambda: _listed_posts(engine, network, job), debt):
            for chunk in _chunks((stub for stub in source() if _in_bounds(stub, window)), WATERMARK_CHUNK):
                yield from fetch_chunk(chunk)

    def fetch_chunk(chunk: list[PostStub]) -> Iterator[tuple[PostStub, tuple[int, str], int | None]]:
        with engine.connect() as conn:
            synced = comment_watermarks(conn, network.name, [stub.post_id for stub in chunk])
        fetch: dict[str, PostStub] = {}
        up_to_date = []
        for stub in chunk:
            need = _needs_comments(stub, synced.get(stub.post_id), window, network.recheck_recent_comments)
            if need is None:
                continue  # never had comments: nothing to fetch, nothing to record
            if need:
                fetch[stub.post_id] = stub
            else:
                up_to_date.append((stub.post_id, f"up to date: {stub.comments_count} comment(s) as last synced"))
        with engine.begin() as conn:  # the chunk's sub-syncs, made once: no transaction per thread to open one
            if up_to_date:
                bookkeeping.record_skipped_tasks(conn, job.id, "comments", up_to_date)
            tasks = bookkeeping.open_tasks(conn, job.id, "comments", list(fetch))
        report.add(comment_posts=len(fetch), comment_posts_skipped=len(up_to_date))
        for post_id, stub in fetch.items():
            with lock:
                if post_id in in_flight:
                    continue  # listed again (the list moved under us) while its thread is in flight
                in_flight.add(post_id)
            yield stub, tasks[post_id], synced.get(post_id)

    def thread(item: tuple[PostStub, tuple[int, str], int | None]) -> None:
        stub, task, synced = item
        try:
            history = _history(engine, network, stub, synced, window)
            _comments_of_post(engine, network, client, job, stub, task, history, report, clock, last_try)
        finally:
            with lock:
                in_flight.discard(stub.post_id)

    _each_in(threads, thread, to_fetch(), client.budget.max_in_flight)


WATERMARK_CHUNK = 500  # posts whose comment watermarks are read in one query


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _history(engine: Engine, network: NetworkSpec, stub: PostStub, synced: int | None,
             window: ExtractWindow) -> CommentHistory | None:
    """What the warehouse holds of a post's comments, for a network whose walks stop at known ones;
    ``None`` (walk every page) under ``full_refresh`` or when the post's comments were never fetched in full."""
    if (not network.comments_stop_at_known or window.full_refresh or synced is None or synced < 0
            or stub.comments_count is None):
        return None

    def known(comment_ids: Sequence[str]) -> dict[str, int | None]:
        with engine.connect() as conn:
            return known_comments(conn, network.name, stub.post_id, comment_ids)

    return CommentHistory(grown=stub.comments_count - synced, known=known)


def _needs_comments(stub: PostStub, synced: int | None, window: ExtractWindow,
                    recheck_recent: bool = True) -> bool | None:
    """Whether a post's comments must be fetched; ``None`` when it never had any to fetch."""
    if not stub.comments_count and not synced:
        return None
    recent = recheck_recent and stub.created_at is not None and stub.created_at >= window.recent_since
    return window.full_refresh or synced is None or synced != stub.comments_count or recent


def _each_in(pool: ThreadPoolExecutor, work: Callable[[T], None], items: Iterable[T], limit: int) -> None:
    """Run ``work`` on every item in ``pool``, at most ``limit`` queued or running; then raise the first
    error (credentials refused first), once every started item has finished.

    Items are handed out as slots free up: a profile with 20,000 posts' comment threads is never a
    list of 20,000 futures.
    """
    errors: list[BaseException] = []
    pending: set[Future[None]] = set()
    for item in items:
        if len(pending) >= limit:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            errors += [e for f in done if (e := f.exception()) is not None]
        pending.add(pool.submit(work, item))
    done, _ = wait(pending)
    errors += [e for f in done if (e := f.exception()) is not None]
    auth = [e for e in errors if isinstance(e, AuthError)]
    if auth or errors:
        raise (auth or errors)[0]


def _in_bounds(stub: PostStub, window: ExtractWindow) -> bool:
    """Posts older than an explicit ``last_synced_at`` bound are outside what the run asked for."""
    if window.last_synced_at is None or window.full_refresh:
        return True
    return stub.created_at is None or stub.created_at >= window.last_synced_at


def _listed_posts(engine: Engine, network: NetworkSpec, job: bookkeeping.JobRef) -> Iterator[PostStub]:
    """The posts this job's pages listed, in page order, a few pages in memory at a time.

    A post the list repeats (it moved while being paged) comes again; the walk tells repeats apart.
    """
    with engine.connect() as conn:
        page_ids = raw_page_ids(conn, [job.id], kinds=["posts"])
    for page in read_raw_pages(engine, page_ids, chunk=8):
        yield from network.post_stubs(page.payload)


def _comments_of_post(engine: Engine, network: NetworkSpec, client: NetworkClient, job: bookkeeping.JobRef,
                      stub: PostStub, task: tuple[int, str], history: CommentHistory | None,
                      report: ExtractReport, clock: Clock, last_try: bool) -> None:
    """A post's comment pages into raw. What the pass saw is recorded on its sub-sync; the post's
    watermark moves only when normalize loads these comments, in the same transaction. A walk given
    ``history`` (the same on every attempt of the job) is recorded ``incremental``: it proves no deletion."""
    post_id = stub.post_id
    task_id, before = task
    if before in ("succeeded", "skipped"):
        return
    seen: dict[str, Any] = {"comments_count": stub.comments_count}
    if history is not None:
        seen["incremental"] = True
    started, cursor = False, None
    if before != "pending":  # an earlier attempt landed pages: go on from the last one's cursor
        with engine.connect() as conn:
            started, cursor = last_cursor(conn, job.id, "comments", post_id)
    try:
        if started and cursor is None:  # the last page landed but the sub-sync was not closed
            with engine.begin() as conn:
                bookkeeping.finish_task(conn, task_id, "succeeded", clock(), seen=seen)
        else:
            _comment_pages(engine, network, client, job, stub, task_id, seen, cursor, history, report, clock)
    except (AuthError, ThrottledError):
        with engine.begin() as conn:
            bookkeeping.finish_task(conn, task_id, "failed", None, error="stopped: quota or credentials")
        raise
    except Unavailable as exc:
        log.info("post %s: no comments to fetch: %s", post_id, exc)
        with engine.begin() as conn:
            bookkeeping.finish_task(conn, task_id, "skipped", None, error=_error_text(exc))
    except PageAnomaly as exc:
        log.warning("post %s: comments pass stopped by an anomaly: %s", post_id, exc)
        report.add(anomalies=1)
        with engine.begin() as conn:
            bookkeeping.finish_task(conn, task_id, "partial", None, error=_error_text(exc))
    except ApiError as exc:
        log.warning("post %s: comments failed: %s", post_id, exc)
        with engine.begin() as conn:
            bookkeeping.finish_task(conn, task_id, "failed", None, error=_error_text(exc))
        if exc.retryable and not last_try:
            report.retry_later.append(post_id)


def _comment_pages(engine: Engine, network: NetworkSpec, client: NetworkClient, job: bookkeeping.JobRef,
                   stub: PostStub, task_id: int, seen: dict[str, Any], cursor: str | None,
                   history: CommentHistory | None, report: ExtractReport, clock: Clock) -> None:
    """The raw page is the checkpoint (it holds the next cursor); the sub-sync's status rides on it:
    running with the attempt's first page, succeeded with the last, in that page's transaction."""
    first = True
    while True:
        guard = PassGuard(f"comments of post {stub.post_id}", cursor, stub.comments_count)
        try:
            for page in guard.watch(client.comment_pages(stub.post_id, cursor, history)):
                with engine.begin() as conn:
                    write_raw_page(conn, network.name, job.id, page, clock())
                    if page.capped is not None:
                        seen["capped"] = True
                    bookkeeping.page_landed(conn, task_id, first=first, last=page.next_cursor is None,
                                            synced_at=clock(), seen=seen, capped=page.capped)
                first = False
                report.add(pages=1, items=page.item_count)
            return
        except CursorExpiredError:
            if cursor is None:
                raise
            log.warning("post %s: comment cursor expired, fetching its comments again from the top", stub.post_id)
            cursor = None
