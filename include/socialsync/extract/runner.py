"""Extract loops: profile and post pages, then each post's comment pages, checkpointed per page.

Every page is written to ``raw_pages`` in the same transaction as the cursor that follows it, so
a crash re-fetches at most one page and a retried task continues where the last one stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from socialsync.networks.base import ApiError, AuthError, NetworkClient, NetworkSpec, PostStub
from socialsync.storage import jobs as bookkeeping
from socialsync.storage.raw import last_cursor, raw_page_ids, read_raw_pages, write_raw_page

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ExtractWindow:
    """What a run asks for: its scope and the bounds that stop paging early."""

    scope: frozenset[str]
    since_id: str | None = None  # stop at this post (exclusive): only newer ones are wanted
    until_id: str | None = None  # skip posts newer than this one (inclusive bound)
    last_synced_at: datetime | None = None  # stop at the first post older than this
    full_refresh: bool = False


@dataclass
class ExtractReport:
    """Counts a task returns through XCom (small by construction)."""

    jobs: int = 0
    pages: int = 0
    items: int = 0
    failed_jobs: int = 0
    retry_later: list[str] = field(default_factory=list)

    def as_xcom(self) -> dict[str, int]:
        return {"jobs": self.jobs, "pages": self.pages, "items": self.items, "failed_jobs": self.failed_jobs}


class RetryLater(RuntimeError):
    """Some work hit transient errors after all in-task retries; the task should be retried."""


def extract_posts(engine: Engine, network: NetworkSpec, client: NetworkClient,
                  jobs: Sequence[bookkeeping.JobRef], window: ExtractWindow, clock: Clock) -> ExtractReport:
    """The profile and every wanted post page of each job's entity, page by page into raw."""
    report = ExtractReport()
    for job in jobs:
        if job.status in bookkeeping.FINISHED:
            continue
        report.jobs += 1
        with engine.begin() as conn:
            bookkeeping.set_job_status(conn, job.id, "running")
        try:
            if "profile" in window.scope:
                _profile(engine, network, client, job, report, clock)
            if "posts" in window.scope:
                _posts(engine, network, client, job, window, report, clock)
        except AuthError:
            raise  # the connection is wrong: every job would fail the same way
        except ApiError as exc:
            _job_failed(engine, job, exc, report, clock)
    if report.retry_later:
        raise RetryLater(f"{len(report.retry_later)} job(s) hit transient errors: {report.retry_later[:5]}")
    return report


def _job_failed(engine: Engine, job: bookkeeping.JobRef, exc: ApiError, report: ExtractReport,
                clock: Clock) -> None:
    log.warning("job %s (entity %s) failed: %s", job.id, job.entity_id, exc)
    with engine.begin() as conn:
        if exc.retryable:
            bookkeeping.set_job_status(conn, job.id, "running", error_type=exc.error_type,
                                       error_message=str(exc)[:2000])
            report.retry_later.append(job.entity_id)
        else:
            bookkeeping.set_job_status(conn, job.id, "failed", error_type=exc.error_type,
                                       error_message=str(exc)[:2000], finished_at=clock())
            report.failed_jobs += 1


def _profile(engine: Engine, network: NetworkSpec, client: NetworkClient, job: bookkeeping.JobRef,
             report: ExtractReport, clock: Clock) -> None:
    with engine.begin() as conn:
        task_id, before = bookkeeping.begin_task(conn, job.id, "profile", job.entity_id)
    if before == "succeeded":
        return
    page = client.fetch_profile(job.entity_id)
    with engine.begin() as conn:
        write_raw_page(conn, network.name, job.id, page, clock())
        bookkeeping.finish_task(conn, task_id, "succeeded", clock())
    report.pages += 1
    report.items += 1
    log.info("entity %s: profile fetched (job %s)", job.entity_id, job.id)


def _posts(engine: Engine, network: NetworkSpec, client: NetworkClient, job: bookkeeping.JobRef,
           window: ExtractWindow, report: ExtractReport, clock: Clock) -> None:
    with engine.begin() as conn:
        task_id, before = bookkeeping.begin_task(conn, job.id, "posts", job.entity_id)
        cursor = bookkeeping.job_cursor(conn, job.id)
    if before == "succeeded":
        return
    start = cursor.get("posts_after")
    pages = 0
    for page in client.post_pages(job.entity_id, start):
        stop = _stop_paging(network.post_stubs(page.payload), window)
        cursor["posts_after"] = None if stop else page.next_cursor
        with engine.begin() as conn:  # the page and the cursor after it land together
            write_raw_page(conn, network.name, job.id, page, clock())
            bookkeeping.set_job_cursor(conn, job.id, cursor)
        pages += 1
        report.pages += 1
        report.items += page.item_count
        log.info("entity %s: posts page %s with %s items (job %s)", job.entity_id, pages, page.item_count,
                 job.id)
        if stop:
            log.info("entity %s: stopping at the requested bound after %s pages", job.entity_id, pages)
            break
    with engine.begin() as conn:
        bookkeeping.finish_task(conn, task_id, "succeeded", clock())


def _stop_paging(stubs: Sequence[PostStub], window: ExtractWindow) -> bool:
    if window.full_refresh:
        return False
    for stub in stubs:
        if window.since_id is not None and stub.post_id == window.since_id:
            return True
        if (window.last_synced_at is not None and stub.created_at is not None
                and stub.created_at < window.last_synced_at):
            return True
    return False


def extract_comments(engine: Engine, network: NetworkSpec, client: NetworkClient,
                     jobs: Sequence[bookkeeping.JobRef], window: ExtractWindow, clock: Clock) -> ExtractReport:
    """Every comment page of each post the jobs fetched that has comments, one post at a time."""
    report = ExtractReport()
    if "comments" not in window.scope:
        return report
    for job in jobs:
        if job.status in ("failed", "succeeded", "skipped"):
            continue
        with engine.connect() as conn:
            page_ids = raw_page_ids(conn, [job.id], kinds=["posts"])
        report.jobs += 1
        try:
            for page in read_raw_pages(engine, page_ids, chunk=1):
                for stub in network.post_stubs(page.payload):
                    if stub.comments_count == 0:
                        continue
                    _comments_of_post(engine, network, client, job, stub.post_id, report, clock)
        except AuthError:
            raise
    if report.retry_later:
        raise RetryLater(f"comments of {len(report.retry_later)} post(s) hit transient errors: "
                         f"{report.retry_later[:5]}")
    return report


def _comments_of_post(engine: Engine, network: NetworkSpec, client: NetworkClient, job: bookkeeping.JobRef,
                      post_id: str, report: ExtractReport, clock: Clock) -> None:
    with engine.begin() as conn:
        task_id, before = bookkeeping.begin_task(conn, job.id, "comments", post_id)
        started, cursor = last_cursor(conn, job.id, "comments", post_id)
    if before in ("succeeded", "skipped"):
        return
    if started and cursor is None:  # the last page landed but the task was not closed
        with engine.begin() as conn:
            bookkeeping.finish_task(conn, task_id, "succeeded", clock())
        return
    try:
        for page in client.comment_pages(post_id, cursor):
            with engine.begin() as conn:  # the raw page is the checkpoint: it holds the next cursor
                write_raw_page(conn, network.name, job.id, page, clock())
            report.pages += 1
            report.items += page.item_count
        with engine.begin() as conn:
            bookkeeping.finish_task(conn, task_id, "succeeded", clock())
    except AuthError:
        raise
    except ApiError as exc:
        log.warning("post %s: comments failed: %s", post_id, exc)
        with engine.begin() as conn:
            bookkeeping.finish_task(conn, task_id, "failed", None, error=str(exc)[:2000])
        if exc.retryable:
            report.retry_later.append(post_id)
