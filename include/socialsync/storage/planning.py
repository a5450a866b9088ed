"""Planning a run: which entities are tracked and due, their jobs, batches and leases."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    and_,
    case,
    column,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    type_coerce,
    update,
    values,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import JSONB, REGCLASS
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.schema import CreateTable, DropTable

from socialsync.storage.jobs import FINISHED, RESUMABLE, JobRef
from socialsync.storage.schema import entity_leases, sync_batches, sync_jobs, sync_tasks, tracked_entities
from socialsync.storage.types import UtcDateTime

LEASE_TTL = timedelta(hours=23)  # a lease older than this belongs to a run that died
# Keys per IN list on the portable (SQLite) path: one statement per 1,000 entities keeps every
# plan set-based and far below SQLite's 32,766 bound parameters, whatever the number of profiles.
CHUNK = 1000

_T = TypeVar("_T")

# PostgreSQL plans a whole run in a constant number of statements: each step copies the run's
# entities and job ids into this temporary table, joins it, and drops it; no IN lists of 1,000.
_scratch_metadata = MetaData()
_planned = Table(
    "socialsync_planned",
    _scratch_metadata,
    Column("ord", BigInteger, nullable=False),  # the entity's position in the caller's list
    Column("entity_id", String(128), nullable=False),
    Column("job_id", BigInteger, nullable=False),
    schema="pg_temp",  # never resolves to (or drops) a permanent table of that name
    prefixes=["TEMPORARY"],
)
# The jobs open_jobs is about to write, with what it found of each entity's previous job.
_continued = Table(
    "socialsync_continued",
    _scratch_metadata,
    Column("job_id", BigInteger, nullable=False),
    Column("entity_id", String(128), nullable=False),
    Column("previous_job_id", BigInteger),
    Column("resumed", JSONB),  # the keys taken up from an unfinished posts pass, if any
    schema="pg_temp",
    prefixes=["TEMPORARY"],
)
# COPY's text format gives these characters a meaning: an entity id holding one must be escaped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _chunks(items: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _on_postgresql(conn: Connection) -> bool:
    """Whether the set-based path applies: PostgreSQL through a driver whose COPY it knows.

    psycopg2 is what the suite and the bench connect with; psycopg (3) is what Airflow's
    PostgresHook picks next to SQLAlchemy 2, so it is what the DAG's tasks use.
    """
    return conn.dialect.name == "postgresql" and conn.dialect.driver in ("psycopg2", "psycopg")


def track_entities(conn: Connection, network: str, entity_ids: Iterable[str], now: datetime,
                   conn_ids: Mapping[str, str] | None = None) -> int:
    """Track ``entity_ids``; returns how many are new.

    Naming an entity asks for it: one that was deactivated (it kept missing) becomes active again
    with its misses reset. ``conn_ids`` names the connection that reads an entity (its own token);
    naming one moves the entity to it, and an entity named without keeps the connection it has.
    """
    t = tracked_entities.c
    readers = dict(conn_ids or {})
    added = 0
    for chunk in _chunks(list(dict.fromkeys(entity_ids))):
        known = set(conn.scalars(select(t.entity_id).where(t.network == network, t.entity_id.in_(chunk))))
        new = [e for e in chunk if e not in known]
        if new:
            conn.execute(insert(tracked_entities),
                         [{"network": network, "entity_id": e, "active": True, "misses": 0, "added_at": now,
                           "conn_id": readers.get(e)} for e in new])
            added += len(new)
        if known:
            conn.execute(
                update(tracked_entities)
                .where(t.network == network, t.entity_id.in_(sorted(known)),
                       or_(t.active.is_(False), t.misses != 0, t.deactivated_reason.is_not(None)))
                .values(active=True, misses=0, deactivated_reason=None)
            )
        moved: dict[str, list[str]] = {}
        for entity_id in sorted(known & readers.keys()):
            moved.setdefault(readers[entity_id], []).append(entity_id)
        for conn_id, moving in moved.items():
            conn.execute(update(tracked_entities).where(t.network == network, t.entity_id.in_(moving))
                         .values(conn_id=conn_id))
    return added


def connections_of(conn: Connection, network: str, entity_ids: Sequence[str]) -> dict[str, str | None]:
    """The connection each entity is read with (``None``: the network's own)."""
    t = tracked_entities.c
    out: dict[str, str | None] = {entity_id: None for entity_id in entity_ids}
    for chunk in _chunks(list(dict.fromkeys(entity_ids))):
        out.update({entity_id: conn_id for entity_id, conn_id in conn.execute(select(t.entity_id, t.conn_id).where(
            t.network == network, t.entity_id.in_(chunk), t.conn_id.is_not(None)))})
    return out


def profile_ids(conn: Connection, network: str, entity_ids: Sequence[str]) -> dict[str, str]:
    """The id each entity's rows are keyed by: the one the API named (an ``@username``'s account id),
    else the entity id itself."""
    t = tracked_entities.c
    out = {entity_id: entity_id for entity_id in entity_ids}
    for chunk in _chunks(list(dict.fromkeys(entity_ids))):
        out.update({entity_id: profile_id for entity_id, profile_id in conn.execute(select(t.entity_id, t.profile_id)
                    .where(t.network == network, t.entity_id.in_(chunk), t.profile_id.is_not(None)))})
    return out


def record_identity(conn: Connection, network: str, entity_id: str, profile_id: str, username: str) -> None:
    """What the API called a tracked entity in the answer a job loaded (in that job's transaction)."""
    t = tracked_entities.c
    conn.execute(update(tracked_entities).where(
        t.network == network, t.entity_id == entity_id,
        or_(t.profile_id.is_(None), t.profile_id != profile_id, t.username.is_(None), t.username != username))
        .values(profile_id=profile_id, username=username))


def due_entities(conn: Connection, network: str, synced_before: datetime) -> list[str]:
    """Active entities never synced, or last synced before ``synced_before``, in a stable order.

    The order is the ids' code points on both databases: SQLite's BINARY collation, and "C" on
    PostgreSQL, whose default collation may follow a locale (then ``_a`` and ``B`` swap places).
    """
    t = tracked_entities.c
    order = t.entity_id.collate("C") if _on_postgresql(conn) else t.entity_id
    query = (
        select(t.entity_id)
        .where(t.network == network, t.active.is_(True))
        .where(or_(t.last_synced_at.is_(None), t.last_synced_at < synced_before))
        .order_by(order)
    )
    return list(conn.scalars(query))


def batch_count(entities: int, max_batches: int, min_batch_size: int) -> int:
    """How many batches to cut: few small ones for a handful of entities, never above ``max_batches``."""
    if entities <= 0:
        return 0
    return max(1, min(max_batches, math.ceil(entities / max(1, min_batch_size))))


def auto_batch_count(entities: int, target: int, max_batches: int, min_batch_size: int,
                     max_batch_size: int) -> int:
    """Batches when the conf names no size: about ``target`` (the slots that run them, twice over), since
    each batch pays a chain of task instances whatever its size; more only to keep a batch under
    ``max_batch_size``, fewer only to keep one at ``min_batch_size`` or more; never above ``max_batches``.
    """
    if entities <= 0:
        return 0
    wanted = max(math.ceil(entities / max(1, max_batch_size)), max(1, target))
    return max(1, min(max_batches, wanted, math.ceil(entities / max(1, min_batch_size))))


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
    takes up. Unfinished jobs of a cleared run are closed as failed. Returns the job ids in the
    order of ``entity_ids`` (an entity named twice gets two jobs, the first mention the lower id).
    """
    if _on_postgresql(conn):
        return _open_jobs_postgresql(conn, network, run_id, entity_ids, cursor, batches, now)
    previous = _jobs_of_run(conn, network, run_id)
    if previous:
        _supersede(conn, network, run_id, now)
        _drop_batches(conn, network, run_id)
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


def _supersede(conn: Connection, network: str, run_id: str, now: datetime) -> None:
    """Close as failed the unfinished jobs an earlier plan of this run opened."""
    of_run = select(sync_batches.c.job_id).where(sync_batches.c.network == network,
                                                 sync_batches.c.run_id == run_id)
    conn.execute(
        update(sync_jobs)
        .where(sync_jobs.c.id.in_(of_run), sync_jobs.c.status.not_in(FINISHED))
        .values(status="failed", error_type="superseded", finished_at=now,
                error_message=f"run {run_id} was planned again")
    )


def _drop_batches(conn: Connection, network: str, run_id: str) -> None:
    conn.execute(delete(sync_batches).where(sync_batches.c.network == network, sync_batches.c.run_id == run_id))


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
    """The entities an earlier plan of this run opened jobs for, in the order it had them.

    A plan whose conf names no entities takes them from ``due_entities``: code point order, which
    Python's sort gives on both databases (PostgreSQL's collation may follow a locale).
    """
    query = (
        select(sync_jobs.c.entity_id).distinct()
        .join(sync_batches, sync_batches.c.job_id == sync_jobs.c.id)
        .where(sync_batches.c.network == network, sync_batches.c.run_id == run_id)
    )
    return sorted(conn.scalars(query))


def _jobs_of_run(conn: Connection, network: str, run_id: str) -> dict[str, int]:
    """Each entity's job in an earlier plan of this run (its latest, had it been named twice)."""
    query = (
        select(sync_jobs.c.entity_id, sync_jobs.c.id)
        .join(sync_batches, sync_batches.c.job_id == sync_jobs.c.id)
        .where(sync_batches.c.network == network, sync_batches.c.run_id == run_id)
        .order_by(sync_jobs.c.id)
    )
    return {entity_id: job_id for entity_id, job_id in conn.execute(query)}


def acquire_leases(conn: Connection, network: str, run_id: str, job_ids: Sequence[int],
                   entity_ids: Sequence[str], now: datetime) -> dict[str, str]:
    """Give each job its entity's lease unless another live run holds it.

    Returns, for each entity this run may not touch, who holds it (in the order of ``entity_ids``);
    those jobs are closed as ``skipped`` with that reason, so two runs never work one entity at
    once. Of an entity named twice, the last job takes the lease.
    """
    jobs = dict(zip(entity_ids, job_ids, strict=True))
    if _on_postgresql(conn):
        return _acquire_leases_postgresql(conn, network, run_id, jobs, now)
    held_by = _leases(conn, network, list(jobs))
    busy: dict[str, str] = {}
    stale: list[str] = []
    for entity_id in jobs:
        held = held_by.get(entity_id)
        if held is None:
            continue
        if held.run_id != run_id and held.status not in FINISHED and held.acquired_at > now - LEASE_TTL:
            busy[entity_id] = _busy_message(held.run_id, held.job_id)
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


def _busy_message(run_id: str, job_id: int) -> str:
    # Built in SQL on PostgreSQL (_acquire_leases_postgresql): the two must read the same.
    return f"entity is being synced by run {run_id} (job {job_id})"


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
                       parts: Iterable[str], reasons: Mapping[str, str] | None = None) -> None:
    """Note on each job a ``skipped`` sub-sync per part the network does not expose (once per job), with
    the network's own reason (``NetworkSpec.not_given``) where it gives one."""
    said = dict(reasons or {})
    kinds = sorted(set(parts))
    if not kinds or not job_ids:
        return
    pairs = list(zip(job_ids, entity_ids, strict=True))
    if _on_postgresql(conn):
        _record_unsupported_postgresql(conn, network, pairs, kinds, said)
        return
    t = sync_tasks.c
    for chunk in _chunks(pairs):
        present = set(conn.execute(select(t.job_id, t.kind, t.external_id)
                                   .where(t.job_id.in_([j for j, _ in chunk]), t.kind.in_(kinds))).tuples())
        rows = [{"job_id": j, "kind": kind, "external_id": e, "status": "skipped", "attempts": 0,
                 "last_error": _unsupported_message(network, kind, said)}
                for j, e in chunk for kind in kinds if (j, kind, e) not in present]
        if rows:
            conn.execute(insert(sync_tasks), rows)


def _unsupported_message(network: str, kind: str, reasons: Mapping[str, str] | None = None) -> str:
    return (reasons or {}).get(kind) or f"{network} does not expose {kind}"


def release_leases(conn: Connection, network: str, job_ids: Sequence[int]) -> None:
    for chunk in _chunks(list(job_ids)):
        conn.execute(delete(entity_leases).where(entity_leases.c.network == network,
                                                 entity_leases.c.job_id.in_(chunk)))


# --- PostgreSQL: the run copied into a temporary table, every step one statement over it ----------


@contextmanager
def _scratch(conn: Connection, entity_ids: Sequence[str], job_ids: Sequence[int]) -> Iterator[Table]:
    """``_planned`` holding the pairs, each with its index as ``ord``, until the block ends."""
    _create(conn, _planned)
    preparer = conn.dialect.identifier_preparer
    columns = ", ".join(preparer.format_column(c) for c in _planned.columns)
    joined = "\n".join(entity_ids)  # one look for what COPY would misread, rather than one per id
    if any(special in joined for special in "\\\t\r") or joined.count("\n") != len(entity_ids) - 1:
        entity_ids = [entity_id.translate(_COPY_ESCAPES) for entity_id in entity_ids]
    body = "".join(f"{index}\t{entity_id}\t{job_id}\n"
                   for index, (entity_id, job_id) in enumerate(zip(entity_ids, job_ids, strict=True)))
    copy = f"COPY {preparer.format_table(_planned)} ({columns}) FROM STDIN"
    # COPY is not a statement SQLAlchemy can send: the driver's own, on the same DBAPI connection,
    # hence inside this transaction. It loads a million rows in about a second, where bound
    # parameters would cost a round trip (or a statement) per page of rows.
    dbapi = cast(Any, conn.connection.dbapi_connection)
    with dbapi.cursor() as cur:
        if conn.dialect.driver == "psycopg2":
            cur.copy_expert(copy, io.StringIO(body), size=1 << 20)
        else:
            with cur.copy(copy) as stream:
                stream.write(body)
    # Autovacuum never analyzes temporary tables: without statistics the planner guesses the size
    # from the pages and knows nothing of the ids.
    conn.execute(text(f"ANALYZE {preparer.format_table(_planned)}"))
    yield _planned
    conn.execute(DropTable(_planned))


@contextmanager
def _temporary(conn: Connection, table: Table) -> Iterator[Table]:
    _create(conn, table)
    yield table
    conn.execute(DropTable(table))


def _create(conn: Connection, table: Table) -> None:
    # Dropped first rather than ON COMMIT DROP: a block an exception left (possible only outside a
    # transaction, which it would otherwise have aborted and undone) must not make this one fail.
    conn.execute(DropTable(table, if_exists=True))
    conn.execute(CreateTable(table))


def _reserve_job_ids(conn: Connection, count: int) -> list[int]:
    """``count`` new ids from ``sync_jobs``' own sequence, ascending.

    Handing the jobs explicit ids makes "ids in the order of the entities" a matter of sorting
    these, rather than trusting the order in which INSERT ... SELECT evaluates its defaults.
    """
    sequence = select(sql_cast(func.pg_get_serial_sequence(sync_jobs.fullname, sync_jobs.c.id.name), REGCLASS))
    query = select(func.nextval(sequence.scalar_subquery())).select_from(func.generate_series(1, count))
    return sorted(conn.scalars(query))


def _truthy(value: ColumnElement[Any]) -> ColumnElement[bool]:
    """Python's truth of a JSON value, in SQL: what ``bool(cursor.get(key))`` is on the portable path."""
    document = type_coerce(value, JSONB)
    kind = func.jsonb_typeof(document)
    return case(
        (kind == "boolean", document == literal(True, JSONB)),
        (kind == "number", sql_cast(document, Numeric) != 0),
        (kind == "string", document != literal("", JSONB)),
        (kind == "array", document != literal([], JSONB)),
        (kind == "object", document != literal({}, JSONB)),
        else_=false(),  # JSON null, or no such key
    )


def _open_jobs_postgresql(conn: Connection, network: str, run_id: str, entity_ids: Sequence[str],
                          cursor: dict[str, Any], batches: int, now: datetime) -> list[int]:
    """``open_jobs`` in a constant number of statements, whatever the number of entities."""
    b, j = sync_batches.c, sync_jobs.c
    replanned = bool(conn.scalar(select(exists().where(b.network == network, b.run_id == run_id))))
    if replanned:
        _supersede(conn, network, run_id, now)
    if not entity_ids:
        if replanned:
            _drop_batches(conn, network, run_id)
        return []
    job_ids = _reserve_job_ids(conn, len(entity_ids))
    with _scratch(conn, entity_ids, job_ids) as planned, _temporary(conn, _continued) as continued:
        p = planned.c
        # The entity's latest job, from any run: a backward scan of ix_sync_jobs_entity per entity,
        # so the cost follows the size of the run, never the size of the job history.
        last = (select(j.id, j.status, j.cursor).where(j.network == network, j.entity_id == p.entity_id)
                .order_by(j.id.desc()).limit(1).lateral("last"))
        resume_after, posts_after = last.c.cursor["resume_after"], last.c.cursor["posts_after"]
        unfinished = case((_truthy(resume_after), resume_after), (_truthy(posts_after), posts_after))
        resumed = func.jsonb_build_object(literal("resume_after", Text), unfinished,
                                          literal("resume_full_pass", Text), _truthy(last.c.cursor["full_pass"]))
        joined = planned.outerjoin(last, true())
        previous: ColumnElement[Any] = last.c.id
        if replanned:  # a cleared run's job comes first, whatever ran since
            of_run = (select(j.entity_id, func.max(j.id).label("id"))
                      .join(sync_batches, b.job_id == j.id).where(b.network == network, b.run_id == run_id)
                      .group_by(j.entity_id).subquery("of_run"))
            joined = joined.outerjoin(of_run, of_run.c.entity_id == p.entity_id)
            previous = func.coalesce(of_run.c.id, last.c.id)
        # Read first, written next: an INSERT reading sync_jobs while it grows would let the planner,
        # misled by statistics taken while sync_jobs was empty, rescan its new rows once per entity.
        conn.execute(insert(continued).from_select(
            ["job_id", "entity_id", "previous_job_id", "resumed"],
            select(p.job_id, p.entity_id, previous,
                   case((and_(last.c.status.in_(RESUMABLE), unfinished.is_not(None)), resumed)))
            .select_from(joined),
        ))
        c = continued.c
        start = literal(cursor, JSONB)
        conn.execute(insert(sync_jobs).from_select(
            ["id", "network", "entity_id", "cursor", "status", "previous_job_id", "run_id", "started_at"],
            select(c.job_id, literal(network), c.entity_id,
                   case((c.resumed.is_not(None), start.op("||")(c.resumed)), else_=start),
                   literal("pending"), c.previous_job_id, literal(run_id), literal(now, UtcDateTime)),
        ))
        if replanned:
            _drop_batches(conn, network, run_id)
        # ord is the entity's index in the list: the same round-robin deal as the portable path.
        conn.execute(insert(sync_batches).from_select(
            ["network", "run_id", "job_id", "batch_no"],
            select(literal(network), literal(run_id), p.job_id, p.ord % batches).select_from(planned),
        ))
    return job_ids


def _acquire_leases_postgresql(conn: Connection, network: str, run_id: str, jobs: dict[str, int],
                               now: datetime) -> dict[str, str]:
    """``acquire_leases`` as the portable path does it: drop the leases to take over, insert the rest."""
    lease, j = entity_leases.c, sync_jobs.c
    with _scratch(conn, list(jobs), list(jobs.values())) as planned:
        p = planned.c
        # The holder finished, died (stale) or was an earlier plan of this run.
        finished = select(j.id).where(j.id == lease.job_id, j.status.in_(FINISHED)).exists()
        conn.execute(
            delete(entity_leases)
            .where(lease.network == network, lease.entity_id == p.entity_id)
            .where(or_(lease.run_id == run_id, lease.acquired_at <= now - LEASE_TTL, finished))
        )
        # A lease still there is a live holder's (or one a concurrent plan just took): not ours.
        take = pg_insert(entity_leases).from_select(
            ["network", "entity_id", "job_id", "run_id", "acquired_at"],
            select(literal(network), p.entity_id, p.job_id, literal(run_id), literal(now, UtcDateTime))
            .select_from(planned),
        ).on_conflict_do_nothing(index_elements=[lease.network, lease.entity_id])
        if conn.execute(take).rowcount == len(jobs):  # the rows it inserted
            return {}
        message = (literal("entity is being synced by run ") + lease.run_id + literal(" (job ")
                   + sql_cast(lease.job_id, Text) + literal(")"))  # as _busy_message words it
        skipped = conn.execute(
            update(sync_jobs)
            .where(j.id == p.job_id, lease.network == network, lease.entity_id == p.entity_id,
                   lease.job_id != p.job_id)
            .values(status="skipped", error_type="Busy", finished_at=now, error_message=message)
            .returning(p.ord, p.entity_id, j.error_message)
        ).all()
    return {entity_id: reason for _, entity_id, reason in sorted(skipped)}


def _record_unsupported_postgresql(conn: Connection, network: str, pairs: Sequence[tuple[int, str]],
                                   kinds: Sequence[str], reasons: Mapping[str, str]) -> None:
    """``record_unsupported`` as one INSERT ... ON CONFLICT DO NOTHING over the jobs and kinds."""
    kind = values(column("kind", String), column("message", Text), name="kinds").data(
        [(k, _unsupported_message(network, k, reasons)) for k in kinds])
    t = sync_tasks.c
    with _scratch(conn, [e for _, e in pairs], [j for j, _ in pairs]) as planned:
        p = planned.c
        # Present ones are left out before the INSERT, not only by ON CONFLICT, which would draw (and
        # waste) an id from the sequence per row it skips; ordered so that ids follow the jobs, kind
        # by kind, as the portable path numbers them.
        present = select(t.id).where(t.job_id == p.job_id, t.kind == kind.c.kind, t.external_id == p.entity_id)
        conn.execute(
            pg_insert(sync_tasks).from_select(
                ["job_id", "kind", "external_id", "status", "attempts", "last_error"],
                select(p.job_id, kind.c.kind, p.entity_id, literal("skipped"), literal(0), kind.c.message)
                .select_from(planned.join(kind, true())).where(~present.exists()).order_by(p.ord, kind.c.kind),
            ).on_conflict_do_nothing(index_elements=[t.job_id, t.kind, t.external_id])
        )
