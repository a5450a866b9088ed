"""The sync audit trail: tracked entities, sync_jobs, sync_tasks and a run's batches."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, or_, select, update

from socialsync.networks.base import ProfileList
from socialsync.storage.raw import rejects_per_job
from socialsync.storage.schema import entity_leases, sync_batches, sync_jobs, sync_tasks, tracked_entities
from socialsync.storage.upserts import dialect_insert, inserted_id
from socialsync.storage.usage import remember_costs

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


def set_jobs_running(conn: Connection, job_ids: Sequence[int]) -> None:
    if job_ids:
        conn.execute(update(sync_jobs).where(sync_jobs.c.id.in_(list(job_ids))).values(status="running"))


def finished_jobs(conn: Connection, job_ids: Sequence[int]) -> set[int]:
    """Of ``job_ids``, those already closed (a step failed them, or the quota stopped them)."""
    if not job_ids:
        return set()
    return set(conn.scalars(select(sync_jobs.c.id).where(sync_jobs.c.id.in_(list(job_ids)),
                                                          sync_jobs.c.status.in_(FINISHED))))


def set_job_cursor(conn: Connection, job_id: int, cursor: dict[str, Any]) -> None:
    conn.execute(update(sync_jobs).where(sync_jobs.c.id == job_id).values(cursor=cursor))


def job_cursor(conn: Connection, job_id: int) -> dict[str, Any]:
    return dict(conn.scalar(select(sync_jobs.c.cursor).where(sync_jobs.c.id == job_id)) or {})


# The job-level comments sub-sync (its per-post parts are ``comments`` tasks keyed by post id).
COMMENT_THREADS = "comment_threads"


def owed_parts(parts: Iterable[str], lists: Iterable[ProfileList] = ()) -> list[str]:
    """The sub-sync kinds a job owes for the extract ``parts`` its run asked for, kept on its cursor
    (``cursor["parts"]``) so that a step that never ran shows on the job without a row per part: the
    profile, its posts, its comment threads, and each declared list whose part was asked for."""
    asked = set(parts)
    kinds = [{"comments": COMMENT_THREADS}.get(part, part) for part in sorted(asked) if part in CORE_PARTS]
    return kinds + sorted({declared.kind for declared in lists if declared.part in asked})


# The parts every network's extract works itself; the others are its declared lists' (``NetworkSpec.lists``).
CORE_PARTS = ("profile", "posts", "comments")


def _kinds_done(conn: Connection, job_ids: Sequence[int]) -> dict[int, set[str]]:
    t = sync_tasks.c
    out: dict[int, set[str]] = {j: set() for j in job_ids}
    for job_id, kind in conn.execute(select(t.job_id, t.kind).where(t.job_id.in_(list(job_ids))).distinct()):
        out[job_id].add(kind)
    return out


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


def open_tasks(conn: Connection, job_id: int, kind: str, external_ids: Sequence[str]) -> dict[str, tuple[int, str]]:
    """Sub-syncs of a job, created ``pending`` where missing; ``{external_id: (id, status)}``.

    A few statements for any number of them: each then rides on its own page writes
    (``page_landed``), with no transaction of its own to start or to finish.
    """
    t = sync_tasks.c
    ids = list(dict.fromkeys(external_ids))

    def found(wanted: list[str]) -> dict[str, tuple[int, str]]:
        query = select(t.external_id, t.id, t.status).where(t.job_id == job_id, t.kind == kind,
                                                             t.external_id.in_(wanted))
        return {r.external_id: (r.id, r.status) for r in conn.execute(query)}

    tasks = found(ids) if ids else {}
    missing = [i for i in ids if i not in tasks]
    if missing:
        conn.execute(insert(sync_tasks), [{"job_id": job_id, "kind": kind, "external_id": i, "status": "pending",
                                           "attempts": 0} for i in missing])
        tasks.update(found(missing))
    return tasks


def page_landed(conn: Connection, task_id: int, *, first: bool, last: bool, synced_at: datetime,
                seen: dict[str, Any] | None = None, capped: str | None = None) -> None:
    """A sub-sync's bookkeeping, in the transaction of the page it is about: the first page of an
    attempt marks it running and counts the attempt, the last one (nothing after it) succeeded, or
    ``partial`` with the reason when the API serves no more of a longer list (``capped``)."""
    if not first and not last:
        return
    params: dict[str, Any] = {"p_task_id": task_id, "p_status": "running"}
    if last:
        params.update(p_status="partial" if capped else "succeeded", p_last_error=capped,
                      p_last_synced_at=synced_at, p_seen=seen)
    conn.execute(_PAGE_LANDED[(first, last)], params)


def _page_landed_statement(first: bool, last: bool) -> Any:
    # Parameter names of their own: SQLAlchemy keeps a column's own name for its SET clause.
    t = sync_tasks.c
    values: dict[str, Any] = {"status": bindparam("p_status", type_=t.status.type)}
    if first:
        values["attempts"] = t.attempts + 1
    if last:
        values.update(last_error=bindparam("p_last_error", type_=t.last_error.type),
                      last_synced_at=bindparam("p_last_synced_at", type_=t.last_synced_at.type),
                      seen=bindparam("p_seen", type_=t.seen.type))
    return update(sync_tasks).where(t.id == bindparam("p_task_id", type_=t.id.type)).values(values)


# Built once (a statement object per shape): every page's bookkeeping reuses one, keyed and compiled once.
_PAGE_LANDED = {(first, last): _page_landed_statement(first, last)
                for first, last in ((True, False), (False, True), (True, True))}


def record_task(conn: Connection, job_id: int, kind: str, external_id: str, status: str, synced_at: datetime | None,
                seen: dict[str, Any] | None = None) -> None:
    """A sub-sync done in one step (``begin_task`` then ``finish_task``, as one statement): the attempt
    counted, its outcome written. For work that has no running state worth showing (a job's normalize)."""
    t = sync_tasks.c
    insert_ = dialect_insert(conn, sync_tasks).values(
        job_id=job_id, kind=kind, external_id=external_id, status=status, attempts=1, last_synced_at=synced_at,
        seen=seen)
    conn.execute(insert_.on_conflict_do_update(
        index_elements=[t.job_id, t.kind, t.external_id],
        set_={"status": status, "attempts": t.attempts + 1, "last_error": None, "last_synced_at": synced_at,
              "seen": insert_.excluded.seen}))


def finish_task(conn: Connection, task_id: int, status: str, synced_at: datetime | None,
                error: str | None = None, seen: dict[str, Any] | None = None) -> None:
    conn.execute(
        update(sync_tasks).where(sync_tasks.c.id == task_id)
        .values(status=status, last_error=error, last_synced_at=synced_at, seen=seen)
    )


def record_skipped_tasks(conn: Connection, job_id: int, kind: str, skipped: Sequence[tuple[str, str]]) -> None:
    """Record sub-syncs with nothing to do, ``(external_id, reason)`` each, unless the job has them already."""
    t = sync_tasks.c
    ids = [external_id for external_id, _ in skipped]
    present = set(conn.scalars(select(t.external_id).where(t.job_id == job_id, t.kind == kind,
                                                           t.external_id.in_(ids))))
    rows = [{"job_id": job_id, "kind": kind, "external_id": external_id, "status": "skipped", "attempts": 0,
             "last_error": reason} for external_id, reason in dict(skipped).items() if external_id not in present]
    if rows:
        conn.execute(insert(sync_tasks), rows)


def task_statuses(conn: Connection, job_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Per job, how many of its extract sub-syncs are in each status (normalize counted as ``normalize:<status>``)."""
    t = sync_tasks.c
    out: dict[int, dict[str, int]] = {j: {} for j in job_ids}
    query = select(t.job_id, t.kind, t.status, func.count()).where(t.job_id.in_(list(job_ids))).group_by(
        t.job_id, t.kind, t.status)
    for job_id, kind, status, count in conn.execute(query):
        key = f"normalize:{status}" if kind == "normalize" else status
        out[job_id][key] = out[job_id].get(key, 0) + count
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
               now: datetime, deactivate_after: int = 3) -> dict[str, int]:
    """Give each job of a batch its final status from what its sub-syncs did.

    A job is ``succeeded`` only when every sub-sync succeeded (or had nothing to do), nothing was
    quarantined and nothing else is missing; otherwise ``partial`` with the reasons, or ``failed``
    when it was never normalized. ``problems`` are batch-wide shortfalls (an enrichment that did
    not finish). Watermarks are not moved here: normalize moved them with the rows. An entity the
    API says does not exist is deactivated after ``deactivate_after`` consecutive misses.
    """
    ids = [job.id for job in jobs]
    tasks = task_statuses(conn, ids)
    errors = _task_errors(conn, ids)
    rejects = rejects_per_job(conn, ids)
    current = {r.id: r for r in conn.execute(
        select(sync_jobs.c.id, sync_jobs.c.status, sync_jobs.c.error_type, sync_jobs.c.error_message,
               sync_jobs.c.cursor).where(sync_jobs.c.id.in_(ids)))}
    started = _kinds_done(conn, ids)
    summary: dict[str, int] = {}
    outcomes: list[tuple[str, str | None, str, str | None]] = []
    for job in jobs:
        row = current[job.id]
        counts = dict(tasks.get(job.id, {}))
        never = [k for k in (row.cursor or {}).get("parts", []) if k not in started[job.id]]
        if never:
            counts["pending"] = counts.get("pending", 0) + len(never)
        if row.status in FINISHED:
            status = row.status
        elif not counts.get("normalize:succeeded"):
            status = "failed"
            set_job_status(conn, job.id, status, finished_at=now,
                           error_type=row.error_type or "Incomplete",
                           error_message=row.error_message or "the run ended before this job was normalized")
        else:
            reasons = []
            if row.error_type:
                reasons.append(row.error_message or row.error_type)
            for state, label in (("failed", "failed"), ("partial", "stopped by an anomaly"),
                                 ("running", "did not finish"), ("pending", "did not start")):
                if counts.get(state):
                    first = errors.get((job.id, state))
                    reasons.append(f"{counts[state]} sub-sync(s) {label}" + (f" (first: {first})" if first else ""))
            if rejects.get(job.id):
                reasons.append(f"{rejects[job.id]} record(s) quarantined")
            reasons += problems
            status = "partial" if reasons else "succeeded"
            set_job_status(conn, job.id, status, finished_at=now,
                           error_type=(row.error_type or "Partial") if reasons else None,
                           error_message="; ".join(reasons)[:4000] if reasons else None)
        summary[status] = summary.get(status, 0) + 1
        outcomes.append((job.entity_id, row.error_type, status, row.error_message))
    _count_misses(conn, network, outcomes, deactivate_after, now)
    remember_costs(conn, network, ids)
    return summary


def _task_errors(conn: Connection, job_ids: Sequence[int]) -> dict[tuple[int, str], str]:
    """The first error of each job's sub-syncs per status, to name in the job's own message."""
    t = sync_tasks.c
    out: dict[tuple[int, str], str] = {}
    query = (select(t.job_id, t.status, t.last_error).where(t.job_id.in_(list(job_ids)), t.last_error.is_not(None),
                                                            t.status.in_(["failed", "partial"])).order_by(t.id))
    for job_id, status, error in conn.execute(query):
        out.setdefault((job_id, status), str(error)[:300])
    return out


def _count_misses(conn: Connection, network: str, outcomes: Sequence[tuple[str, str | None, str, str | None]],
                  deactivate_after: int, now: datetime) -> None:
    """Consecutive runs in which the API said an entity does not exist; past the bound it stops being
    synced, with the API's last answer in the reason (a renamed account's says to track the new name)."""
    t = tracked_entities.c
    missing = {entity: message for entity, error, status, message in outcomes
               if status == "failed" and error == "NotFoundError"}
    found = [entity for entity, _, status, _ in outcomes if status in ("succeeded", "partial")]
    for start in range(0, len(found), 1000):
        conn.execute(update(tracked_entities).where(t.network == network, t.entity_id.in_(found[start:start + 1000]),
                                                    t.misses > 0).values(misses=0))
    reason = (f"the API answered 'not found' on {deactivate_after} consecutive runs (last {now.date().isoformat()}); "
              "naming it in a run's conf tracks it again")
    names = list(missing)
    for start in range(0, len(names), 1000):
        chunk = names[start:start + 1000]
        conn.execute(update(tracked_entities).where(t.network == network, t.entity_id.in_(chunk))
                     .values(misses=t.misses + 1))
        gone = conn.scalars(select(t.entity_id).where(t.network == network, t.entity_id.in_(chunk),
                                                      t.misses >= deactivate_after, t.active.is_(True))).all()
        for entity in gone:
            last = missing[entity]
            conn.execute(update(tracked_entities).where(t.network == network, t.entity_id == entity).values(
                active=False, deactivated_reason=reason + (f"; the last answer: {last[:1000]}" if last else "")))


def close_unfinished_jobs(conn: Connection, network: str, run_id: str, now: datetime) -> int:
    """Close ``failed`` the run's jobs no batch closed (its load never ran); returns how many."""
    unfinished = list(conn.scalars(select(sync_jobs.c.id).join(sync_batches, sync_batches.c.job_id == sync_jobs.c.id)
                                   .where(sync_batches.c.network == network, sync_batches.c.run_id == run_id,
                                          sync_jobs.c.status.not_in(FINISHED))))
    for start in range(0, len(unfinished), 1000):
        conn.execute(update(sync_jobs).where(sync_jobs.c.id.in_(unfinished[start:start + 1000]))
                     .values(status="failed", finished_at=now,
                             error_type=func.coalesce(sync_jobs.c.error_type, "Incomplete"),
                             error_message=func.coalesce(sync_jobs.c.error_message,
                                                         "the run ended before this job's batch was closed")))
    return len(unfinished)


def release_run_leases(conn: Connection, network: str, run_id: str) -> None:
    conn.execute(delete(entity_leases).where(entity_leases.c.network == network, entity_leases.c.run_id == run_id))


def run_statuses(conn: Connection, network: str, run_id: str) -> dict[str, int]:
    """How many of the run's jobs ended in each status."""
    query = (select(sync_jobs.c.status, func.count()).join(sync_batches, sync_batches.c.job_id == sync_jobs.c.id)
             .where(sync_batches.c.network == network, sync_batches.c.run_id == run_id)
             .group_by(sync_jobs.c.status))
    return {status: count for status, count in conn.execute(query)}


def skipped_parts(conn: Connection, network: str, run_id: str) -> dict[str, tuple[int, str]]:
    """The parts the run's jobs did not sync because nothing serves them (a network that does not give
    likes, a public account's comments): per sub-sync kind, how many jobs and the first reason."""
    t = sync_tasks.c
    query = (select(t.kind, func.count(), func.min(t.last_error))
             .join(sync_batches, sync_batches.c.job_id == t.job_id)
             .where(sync_batches.c.network == network, sync_batches.c.run_id == run_id, t.status == "skipped",
                    t.kind.not_in(PER_ITEM_KINDS), t.last_error.is_not(None))
             .group_by(t.kind))
    return {kind: (int(count), str(reason)) for kind, count, reason in conn.execute(query)}


PER_ITEM_KINDS = ("comments",)  # sub-syncs of one post each: skipped when up to date, not worth a line


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
