"""Planning a run: which entities are tracked and due, their jobs, batches and leases."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from socialsync.storage.jobs import FINISHED, RESUMABLE, JobRef, set_job_status
from socialsync.storage.schema import entity_leases, sync_batches, sync_jobs, tracked_entities
from socialsync.storage.upserts import inserted_id

LEASE_TTL = timedelta(hours=23)  # a lease older than this belongs to a run that died

def track_entities(conn: Connection, network: str, entity_ids: Iterable[str], now: datetime) -> int:
    """Start tracking ``entity_ids`` (already tracked ones are left alone); returns how many are new."""
    known = set(
        conn.scalars(select(tracked_entities.c.entity_id).where(tracked_entities.c.network == network))
    )
    new = [e for e in dict.fromkeys(entity_ids) if e not in known]
    if new:
        conn.execute(
            insert(tracked_entities),
            [{"network": network, "entity_id": e, "active": True, "added_at": now} for e in new],
        )
    return len(new)

def due_entities(conn: Connection, network: str, synced_before: datetime) -> list[str]:
    """Active entities never synced, or last synced before ``synced_before``, in a stable order."""
    t = tracked_entities.c
    query = (
        select(t.entity_id)
        .where(t.network == network, t.active.is_(True))
        .where(or_(t.last_synced_at.is_(None), t.last_synced_at < synced_before))
        .order_by(t.entity_id)
    )
    return list(conn.scalars(query))

def batch_count(entities: int, max_batches: int, min_batch_size: int) -> int:
    """How many batches to cut: few small ones for a handful of entities, never above ``max_batches``."""
    if entities <= 0:
        return 0
    return max(1, min(max_batches, math.ceil(entities / max(1, min_batch_size))))

def open_jobs(
    conn: Connection,
    network: str,
    run_id: str,
    entity_ids: Sequence[str],
    cursor: dict[str, Any],
    batches: int,
    now: datetime,
) -> list[int]:
    """Open one pending job per entity for ``run_id`` and deal them round-robin into ``batches``.

    A job continues the entity's previous one (``previous_job_id``): a cleared run's job, or the
    last job that ended ``failed`` or ``partial`` with its posts pass unfinished, whose cursor it
    takes up. Unfinished jobs of a cleared run are closed as failed.
    """
    previous = _jobs_of_run(conn, network, run_id)
    if previous:
        conn.execute(
            update(sync_jobs)
            .where(sync_jobs.c.id.in_(list(previous.values())), sync_jobs.c.status.not_in(FINISHED))
            .values(status="failed", error_type="superseded", finished_at=now,
                    error_message=f"run {run_id} was planned again")
        )
        conn.execute(delete(sync_batches).where(sync_batches.c.network == network,
                                                sync_batches.c.run_id == run_id))
    last = _last_jobs(conn, network, entity_ids)
    job_ids: list[int] = []
    mapping = []
    for index, entity_id in enumerate(entity_ids):
        before = last.get(entity_id)
        start = dict(cursor)
        if before is not None and before.status in RESUMABLE:
            unfinished = before.cursor.get("resume_after") or before.cursor.get("posts_after")
            if unfinished:
                start["resume_after"] = unfinished
                start["resume_full_pass"] = bool(before.cursor.get("full_pass"))
        job_id = inserted_id(conn.execute(
            insert(sync_jobs).values(
                network=network, entity_id=entity_id, cursor=start, status="pending",
                previous_job_id=previous.get(entity_id) or (before.id if before else None), started_at=now,
            )
        ))
        job_ids.append(job_id)
        mapping.append({"network": network, "run_id": run_id, "job_id": job_id, "batch_no": index % batches})
    if mapping:
        conn.execute(insert(sync_batches), mapping)
    return job_ids

def _last_jobs(conn: Connection, network: str, entity_ids: Sequence[str]) -> dict[str, JobRef]:
    """Each entity's latest job, from any run."""
    out: dict[str, JobRef] = {}
    ids = list(entity_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        latest = (select(func.max(sync_jobs.c.id)).where(sync_jobs.c.network == network,
                                                         sync_jobs.c.entity_id.in_(chunk))
                  .group_by(sync_jobs.c.entity_id))
        for r in conn.execute(select(sync_jobs.c.id, sync_jobs.c.entity_id, sync_jobs.c.status, sync_jobs.c.cursor)
                              .where(sync_jobs.c.id.in_(latest))):
            out[r.entity_id] = JobRef(r.id, r.entity_id, r.status, dict(r.cursor or {}))
    return out

def entities_of_run(conn: Connection, network: str, run_id: str) -> list[str]:
    """The entities an earlier plan of this run opened jobs for, in the order it had them."""
    return sorted(_jobs_of_run(conn, network, run_id))

def _jobs_of_run(conn: Connection, network: str, run_id: str) -> dict[str, int]:
    query = (
        select(sync_jobs.c.entity_id, sync_jobs.c.id)
        .join(sync_batches, sync_batches.c.job_id == sync_jobs.c.id)
        .where(sync_batches.c.network == network, sync_batches.c.run_id == run_id)
    )
    return {entity_id: job_id for entity_id, job_id in conn.execute(query)}

def acquire_leases(conn: Connection, network: str, run_id: str, job_ids: Sequence[int],
                   entity_ids: Sequence[str], now: datetime) -> dict[str, str]:
    """Give each job its entity's lease unless another live run holds it.

    Returns, for each entity this run may not touch, who holds it; those jobs are closed as
    ``skipped`` with that reason, so two runs never work one entity at once.
    """
    busy: dict[str, str] = {}
    for job_id, entity_id in zip(job_ids, entity_ids, strict=True):
        held = conn.execute(select(entity_leases.c.job_id, entity_leases.c.run_id, entity_leases.c.acquired_at)
                            .where(entity_leases.c.network == network,
                                   entity_leases.c.entity_id == entity_id)).first()
        if held is not None and held.run_id != run_id:
            holder = conn.scalar(select(sync_jobs.c.status).where(sync_jobs.c.id == held.job_id))
            if holder not in FINISHED and held.acquired_at > now - LEASE_TTL:
                busy[entity_id] = f"entity is being synced by run {held.run_id} (job {held.job_id})"
                set_job_status(conn, job_id, "skipped", error_type="Busy", error_message=busy[entity_id],
                               finished_at=now)
                continue
        if held is None:
            conn.execute(insert(entity_leases).values(network=network, entity_id=entity_id, job_id=job_id,
                                                      run_id=run_id, acquired_at=now))
        else:
            conn.execute(update(entity_leases).where(entity_leases.c.network == network,
                                                     entity_leases.c.entity_id == entity_id)
                         .values(job_id=job_id, run_id=run_id, acquired_at=now))
    return busy

def release_leases(conn: Connection, network: str, job_ids: Sequence[int]) -> None:
    conn.execute(delete(entity_leases).where(entity_leases.c.network == network,
                                             entity_leases.c.job_id.in_(list(job_ids))))
