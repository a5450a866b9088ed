"""Planning a run: which entities are tracked and due, their jobs, batches and leases."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Connection, case, delete, func, insert, or_, select, update

from socialsync.storage.jobs import FINISHED, RESUMABLE, JobRef
from socialsync.storage.schema import entity_leases, sync_batches, sync_jobs, sync_tasks, tracked_entities

LEASE_TTL = timedelta(hours=23)  # a lease older than this belongs to a run that died
# Keys per IN list: one statement per 1,000 entities keeps every plan set-based and far below
# SQLite's 32,766 bound parameters, whatever the number of profiles.
CHUNK = 1000

_T = TypeVar("_T")


def _chunks(items: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def track_entities(conn: Connection, network: str, entity_ids: Iterable[str], now: datetime) -> int:
    """Track ``entity_ids``; returns how many are new.

    Naming an entity asks for it: one that was deactivated (it kept missing) becomes active again
    with its misses reset.
    """
    t = tracked_entities.c
    added = 0
    for chunk in _chunks(list(dict.fromkeys(entity_ids))):
        known = set(conn.scalars(select(t.entity_id).where(t.network == network, t.entity_id.in_(chunk))))
        new = [e for e in chunk if e not in known]
        if new:
            conn.execute(insert(tracked_entities),
                         [{"network": network, "entity_id": e, "active": True, "misses": 0, "added_at": now}
                          for e in new])
            added += len(new)
        if known:
            conn.execute(
                update(tracked_entities)
                .where(t.network == network, t.entity_id.in_(sorted(known)),
                       or_(t.active.is_(False), t.misses != 0, t.deactivated_reason.is_not(None)))
                .values(active=True, misses=0, deactivated_reason=None)
            )
    return added


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
        of_run = select(sync_batches.c.job_id).where(sync_batches.c.network == network,
                                                     sync_batches.c.run_id == run_id)
        conn.execute(
            update(sync_jobs)
            .where(sync_jobs.c.id.in_(of_run), sync_jobs.c.status.not_in(FINISHED))
            .values(status="failed", error_type="superseded", finished_at=now,
                    error_message=f"run {run_id} was planned again")
        )
        conn.execute(delete(sync_batches).where(sync_batches.c.network == network,
                                                sync_batches.c.run_id == run_id))
    if not entity_ids:
        return []
    last = _last_jobs(conn, network, entity_ids)
    rows = []
    for entity_id in entity_ids:
        before = last.get(entity_id)
        start = dict(cursor)
        if before is not None and before.status in RESUMABLE:
            unfinished = before.cursor.get("resume_after") or before.cursor.get("posts_after")
            if unfinished:
                start["resume_after"] = unfinished
                start["resume_full_pass"] = bool(before.cursor.get("full_pass"))
        rows.append({"network": network, "entity_id": entity_id, "cursor": start, "status": "pending",
                     "previous_job_id": previous.get(entity_id) or (before.id if before else None),
                     "run_id": run_id, "started_at": now})
    # One executemany, sent as multi-row INSERT ... RETURNING pages ("insertmanyvalues"). The ids are
    # matched back by entity rather than with sort_by_parameter_order, which SQLite can only honour
    # one row at a time.
    inserted: dict[str, list[int]] = {}
    for job_id, entity_id in conn.execute(insert(sync_jobs).returning(sync_jobs.c.id, sync_jobs.c.entity_id),
                                          rows):
        inserted.setdefault(entity_id, []).append(int(job_id))
    for ids in inserted.values():
        ids.sort(reverse=True)  # an entity named twice gets its jobs in the order it was named
    job_ids = [inserted[entity_id].pop() for entity_id in entity_ids]
    conn.execute(insert(sync_batches),
                 [{"network": network, "run_id": run_id, "job_id": job_id, "batch_no": index % batches}
                  for index, job_id in enumerate(job_ids)])
    return job_ids


def _last_jobs(conn: Connection, network: str, entity_ids: Sequence[str]) -> dict[str, JobRef]:
    """Each entity's latest job, from any run."""
    out: dict[str, JobRef] = {}
    for chunk in _chunks(list(entity_ids)):
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
    jobs = dict(zip(entity_ids, job_ids, strict=True))
    busy: dict[str, str] = {}
    stale: list[str] = []
    for entity_id, held in _leases(conn, network, list(jobs)).items():
        if held.run_id != run_id and held.status not in FINISHED and held.acquired_at > now - LEASE_TTL:
            busy[entity_id] = f"entity is being synced by run {held.run_id} (job {held.job_id})"
        else:
            stale.append(entity_id)  # its holder finished, died, or was an earlier plan of this run
    lease = entity_leases.c
    # Taking over is dropping the old lease and writing the new one with the free entities': set-based
    # on both drivers (an executemany UPDATE is one round trip per row with psycopg2).
    for names in _chunks(stale):
        conn.execute(delete(entity_leases).where(lease.network == network, lease.entity_id.in_(names)))
    taken = [{"network": network, "entity_id": e, "job_id": j, "run_id": run_id, "acquired_at": now}
             for e, j in jobs.items() if e not in busy]
    if taken:
        conn.execute(insert(entity_leases), taken)
    skipped = {jobs[e]: reason for e, reason in busy.items()}
    for ids in _chunks(list(skipped)):
        # One UPDATE per 1,000 jobs, each told its own holder through a CASE on the job id.
        conn.execute(
            update(sync_jobs).where(sync_jobs.c.id.in_(ids))
            .values(status="skipped", error_type="Busy", finished_at=now,
                    error_message=case({j: skipped[j] for j in ids}, value=sync_jobs.c.id))
        )
    return busy


class _Lease(NamedTuple):
    run_id: str
    job_id: int
    status: str | None  # the holding job's
    acquired_at: datetime


def _leases(conn: Connection, network: str, entity_ids: Sequence[str]) -> dict[str, _Lease]:
    """The current lease of each of ``entity_ids`` that has one, with its holding job's status."""
    lease = entity_leases.c
    out: dict[str, _Lease] = {}
    for chunk in _chunks(entity_ids):
        query = (select(lease.entity_id, lease.run_id, lease.job_id, sync_jobs.c.status, lease.acquired_at)
                 .join(sync_jobs, sync_jobs.c.id == lease.job_id, isouter=True)
                 .where(lease.network == network, lease.entity_id.in_(chunk)))
        for r in conn.execute(query):
            out[r.entity_id] = _Lease(r.run_id, r.job_id, r.status, r.acquired_at)
    return out


def record_unsupported(conn: Connection, network: str, job_ids: Sequence[int], entity_ids: Sequence[str],
                       parts: Iterable[str]) -> None:
    """Note on each job a ``skipped`` sub-sync per part the network does not expose (once per job)."""
    kinds = sorted(set(parts))
    if not kinds or not job_ids:
        return
    t = sync_tasks.c
    for chunk in _chunks(list(zip(job_ids, entity_ids, strict=True))):
        present = set(conn.execute(select(t.job_id, t.kind, t.external_id)
                                   .where(t.job_id.in_([j for j, _ in chunk]), t.kind.in_(kinds))).tuples())
        rows = [{"job_id": j, "kind": kind, "external_id": e, "status": "skipped", "attempts": 0,
                 "last_error": f"{network} does not expose {kind}"}
                for j, e in chunk for kind in kinds if (j, kind, e) not in present]
        if rows:
            conn.execute(insert(sync_tasks), rows)


def release_leases(conn: Connection, network: str, job_ids: Sequence[int]) -> None:
    for chunk in _chunks(list(job_ids)):
        conn.execute(delete(entity_leases).where(entity_leases.c.network == network,
                                                 entity_leases.c.job_id.in_(chunk)))
