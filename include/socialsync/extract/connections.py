"""A batch's jobs worked per connection: each credential with its own client and rate budget, all at once.

Owned accounts often belong to different businesses, each with a token of its own (a connection
per token). A refused token fails the jobs that use it, never the others'.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import Engine

from socialsync.extract.runner import ExtractReport, ExtractStep, ExtractWindow, RetryLater
from socialsync.networks.base import AuthError, NetworkClient, NetworkSpec
from socialsync.storage import jobs as bookkeeping
from socialsync.storage.raw import raw_jobs

log = logging.getLogger(__name__)

OpenClient = Callable[[str], AbstractContextManager[NetworkClient]]


def extract_per_connection(step: ExtractStep, engine: Engine, network: NetworkSpec, jobs: Sequence[bookkeeping.JobRef],
                           window: ExtractWindow, clock: Callable[[], datetime], *,
                           reader_of: Mapping[str, str | None], open_client: OpenClient,
                           last_try: bool = True) -> ExtractReport:
    """``step`` over ``jobs``, one client per connection (``reader_of`` an entity; ``None``: the
    network's own), every connection's jobs at once. Transient failures of any make the task retry
    (only unfinished work), once all are done."""
    groups: dict[str, list[bookkeeping.JobRef]] = {}
    for job in jobs:
        groups.setdefault(reader_of.get(job.entity_id) or network.api_conn_id, []).append(job)

    def work(conn_id: str) -> ExtractReport:
        group = groups[conn_id]
        try:
            with open_client(conn_id) as client:
                return step(engine, network, client, group, window, clock, last_try=last_try)
        except AuthError as exc:
            return _refused(engine, conn_id, group, exc, clock())

    report = ExtractReport()
    retry: list[RetryLater] = []
    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=max(1, len(groups)), thread_name_prefix="connection") as pool:
        futures = [pool.submit(work, conn_id) for conn_id in groups]
        for future in futures:
            try:
                _add(report, future.result())
            except RetryLater as exc:
                retry.append(exc)
            except Exception as exc:  # raised once every connection's work is done
                errors.append(exc)
    if errors:
        raise errors[0]
    if retry:
        raise RetryLater("; ".join(str(exc) for exc in retry))
    return report


def _refused(engine: Engine, conn_id: str, group: Sequence[bookkeeping.JobRef], exc: AuthError,
             now: datetime) -> ExtractReport:
    """The connection's credentials were refused: its unfinished jobs that fetched nothing fail with the
    reason; those that fetched pages keep the reason and end ``partial`` (what they fetched is loaded)."""
    log.error("connection %s was refused: its %s job(s) stop: %s", conn_id, len(group), exc)
    message = f"connection {conn_id}: {exc}"[:2000]
    with engine.begin() as conn:
        closed = bookkeeping.finished_jobs(conn, [job.id for job in group])
        open_jobs = [job for job in group if job.id not in closed]
        fetched = set(raw_jobs(conn, [job.id for job in open_jobs]))
        for job in open_jobs:
            if job.id in fetched:
                bookkeeping.set_job_status(conn, job.id, "running", error_type=exc.error_type, error_message=message)
            else:
                bookkeeping.set_job_status(conn, job.id, "failed", error_type=exc.error_type, error_message=message,
                                           finished_at=now)
    return ExtractReport(jobs=len(group), failed_jobs=len(open_jobs) - len(fetched))


def _add(total: ExtractReport, part: ExtractReport) -> None:
    total.add(**{name: value for name, value in part.as_xcom().items() if name != "quota_stopped"})
    total.quota_stopped = total.quota_stopped or part.quota_stopped
