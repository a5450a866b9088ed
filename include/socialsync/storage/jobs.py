"""The sync audit trail: tracked entities, sync_jobs, sync_tasks and a run's batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from socialsync.storage.raw import rejects_per_job
from socialsync.storage.schema import sync_batches, sync_jobs, sync_tasks, tracked_entities
from socialsync.storage.upserts import inserted_id

FINISHED = ("succeeded", "failed", "partial", "skipped")
RESUMABLE = ("failed", "partial")
CURSOR_KEYS = ("posts_after", "resume_after")  # where an unfinished posts pass stopped


@dataclass(frozen=True)
class JobRef:
    """A sync job as the tasks of one batch see it."""

    id: int
    entity_id: str
    status: str
    cursor: dict[str, Any]
















def jobs_in_batch(conn: Connection, network: str, run_id: str, batch_no: int) -> list[JobRef]:
    query = (
        select(sync_jobs.c.id, sync_jobs.c.entity_id, sync_jobs.c.status, sync_jobs.c.cursor)
        .join(sync_batches, sync_batches.c.job_id == sync_jobs.c.id)
        .where(sync_batches.c.network == network, sync_batches.c.run_id == run_id,
               sync_batches.c.batch_no == batch_no)
        .order_by(sync_jobs.c.id)
    )
    return [JobRef(id=r.id, entity_id=r.entity_id, status=r.status, cursor=dict(r.cursor or {}))
            for r in conn.execute(query)]


def set_job_status(conn: Connection, job_id: int, status: str, **values: Any) -> None:
    conn.execute(update(sync_jobs).where(sync_jobs.c.id == job_id).values(status=status, **values))


def set_job_cursor(conn: Connection, job_id: int, cursor: dict[str, Any]) -> None:
    conn.execute(update(sync_jobs).where(sync_jobs.c.id == job_id).values(cursor=cursor))


def job_cursor(conn: Connection, job_id: int) -> dict[str, Any]:
    return dict(conn.scalar(select(sync_jobs.c.cursor).where(sync_jobs.c.id == job_id)) or {})


def begin_task(conn: Connection, job_id: int, kind: str, external_id: str) -> tuple[int, str]:
    """Mark a sub-sync as running (counting the attempt); returns its id and its status before."""
    t = sync_tasks.c
    row = conn.execute(
        select(t.id, t.status).where(t.job_id == job_id, t.kind == kind, t.external_id == external_id)
    ).first()
    if row is None:
        task_id = inserted_id(conn.execute(
            insert(sync_tasks).values(job_id=job_id, kind=kind, external_id=external_id,
                                      status="running", attempts=1)
        ))
        return task_id, "pending"
    if row.status not in ("succeeded", "skipped"):
        conn.execute(update(sync_tasks).where(t.id == row.id)
                     .values(status="running", attempts=t.attempts + 1))
    return row.id, row.status


def finish_task(conn: Connection, task_id: int, status: str, synced_at: datetime | None,
                error: str | None = None) -> None:
    conn.execute(
        update(sync_tasks).where(sync_tasks.c.id == task_id)
        .values(status=status, last_error=error, last_synced_at=synced_at)
    )


def record_skipped_task(conn: Connection, job_id: int, kind: str, external_id: str, reason: str) -> None:
    t = sync_tasks.c
    exists = conn.scalar(
        select(func.count()).where(t.job_id == job_id, t.kind == kind, t.external_id == external_id)
    )
    if not exists:
        conn.execute(insert(sync_tasks).values(job_id=job_id, kind=kind, external_id=external_id,
                                               status="skipped", attempts=0, last_error=reason))


def task_statuses(conn: Connection, job_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Per job, how many of its tasks are in each status."""
    t = sync_tasks.c
    out: dict[int, dict[str, int]] = {j: {} for j in job_ids}
    query = select(t.job_id, t.status, func.count()).where(t.job_id.in_(list(job_ids))).group_by(
        t.job_id, t.status)
    for job_id, status, count in conn.execute(query):
        out[job_id][status] = count
    return out


def advance_watermark(conn: Connection, network: str, entity_id: str, synced_at: datetime) -> None:
    t = tracked_entities.c
    conn.execute(
        update(tracked_entities)
        .where(t.network == network, t.entity_id == entity_id,
               or_(t.last_synced_at.is_(None), t.last_synced_at < synced_at))
        .values(last_synced_at=synced_at)
    )



def close_jobs(conn: Connection, network: str, jobs: Sequence[JobRef], problems: Sequence[str],
               synced_at: datetime, now: datetime) -> dict[str, int]:
    """Give each job of a batch its final status and advance the watermark of those that got data.

    ``problems`` are batch-wide shortfalls (an enrichment that did not finish): they make an
    otherwise clean job ``partial``, to be completed by a later run.
    """
    ids = [job.id for job in jobs]
    tasks = task_statuses(conn, ids)
    rejects = rejects_per_job(conn, ids)
    current = {r.id: r for r in conn.execute(
        select(sync_jobs.c.id, sync_jobs.c.status, sync_jobs.c.error_type, sync_jobs.c.error_message)
        .where(sync_jobs.c.id.in_(ids)))}
    summary: dict[str, int] = {}
    for job in jobs:
        row = current[job.id]
        counts = tasks.get(job.id, {})
        if row.status in ("failed", "skipped", "succeeded", "partial"):
            status = row.status
        elif not _normalized(conn, job.id):
            status = "failed"
            set_job_status(conn, job.id, status, finished_at=now,
                           error_type=row.error_type or "Incomplete",
                           error_message=row.error_message or "the run ended before this job was normalized")
        else:
            reasons = []
            if counts.get("failed"):
                reasons.append(f"{counts['failed']} sub-sync(s) failed")
            if rejects.get(job.id):
                reasons.append(f"{rejects[job.id]} record(s) quarantined")
            reasons += problems
            status = "partial" if reasons else "succeeded"
            set_job_status(conn, job.id, status, finished_at=now,
                           error_type="Partial" if reasons else None,
                           error_message="; ".join(reasons) if reasons else None)
            advance_watermark(conn, network, job.entity_id, synced_at)
        summary[status] = summary.get(status, 0) + 1
    return summary


def _normalized(conn: Connection, job_id: int) -> bool:
    t = sync_tasks.c
    return bool(conn.scalar(select(func.count()).where(
        t.job_id == job_id, t.kind == "normalize", t.status == "succeeded")))


def mark_normalized(conn: Connection, jobs: Sequence[JobRef], now: datetime) -> None:
    for job in jobs:
        task_id, _ = begin_task(conn, job.id, "normalize", job.entity_id)
        finish_task(conn, task_id, "succeeded", now)


# Failures that belong to the entity (gone, refused): the run itself did its work.
ENTITY_FAILURES = frozenset({"NotFoundError", "ApiError", "superseded"})


def failed_unexpectedly(conn: Connection, job_ids: Sequence[int]) -> list[str]:
    """Entities whose job failed because the pipeline could not finish it (worth a retry)."""
    c = sync_jobs.c
    query = select(c.entity_id).where(c.id.in_(list(job_ids)), c.status == "failed",
                                      or_(c.error_type.is_(None), c.error_type.not_in(ENTITY_FAILURES)))
    return list(conn.scalars(query))






def normalized_jobs(conn: Connection, network: str) -> list[tuple[int, str]]:
    """Every job whose raw pages were normalized, as (job id, entity), in job order."""
    t = sync_tasks.c
    query = (select(sync_jobs.c.id, sync_jobs.c.entity_id)
             .join(sync_tasks, and_(t.job_id == sync_jobs.c.id, t.kind == "normalize", t.status == "succeeded"))
             .where(sync_jobs.c.network == network).order_by(sync_jobs.c.id))
    return [(job_id, entity_id) for job_id, entity_id in conn.execute(query)]


def assign_rebuild_batches(conn: Connection, network: str, run_id: str, jobs: Sequence[tuple[int, str]],
                           batches: int) -> None:
    """Deal whole entities into batches: one entity's jobs replay in order inside one batch."""
    conn.execute(delete(sync_batches).where(sync_batches.c.network == network, sync_batches.c.run_id == run_id))
    entities = sorted({entity for _, entity in jobs})
    slot = {entity: index % batches for index, entity in enumerate(entities)}
    rows = [{"network": network, "run_id": run_id, "job_id": job_id, "batch_no": slot[entity]}
            for job_id, entity in jobs]
    for start in range(0, len(rows), 1000):
        conn.execute(insert(sync_batches), rows[start : start + 1000])
