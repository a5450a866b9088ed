"""Run a sync in-process, without Airflow: the library calls the DAG's tasks make, in their order.

For benchmarks and tests: the same extract, normalize and bookkeeping code as the DAG, one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from hashlib import sha256
from typing import Any

from sqlalchemy import Engine, select

from socialsync.extract import runner
from socialsync.extract.connections import extract_per_connection
from socialsync.networks import get_network
from socialsync.networks.base import NetworkClient, NetworkSpec
from socialsync.storage import jobs as bookkeeping
from socialsync.storage import planning, usage
from socialsync.storage.schema import NORMALIZED_TABLES
from socialsync.transform.pipeline import NormalizeBehind, normalize_jobs

# Scope "all" but the lists of people and of likes.
SCOPE = frozenset({"profile", "posts", "comments", "stories", "pinned"})


def clock() -> datetime:
    return datetime.now(UTC)


def open_batch(engine: Engine, network: str, entity_ids: list[str], run_id: str, as_of: datetime, *,
               scope: frozenset[str] = SCOPE, **cursor: object) -> list[bookkeeping.JobRef]:
    """What ``plan`` does for one batch: open the jobs (continuing earlier ones) and take the leases."""
    with engine.begin() as conn:
        spec = get_network(network)
        parts = bookkeeping.owed_parts(scope & spec.scopes, spec.lists)
        start = {"as_of": as_of.isoformat(), "parts": parts, **cursor}
        ids = planning.open_jobs(conn, network, run_id, entity_ids, start, 1, clock())
        planning.acquire_leases(conn, network, run_id, ids, entity_ids, clock())
        return bookkeeping.jobs_in_batch(conn, network, run_id, 0)


def sync(engine: Engine, network: NetworkSpec, client: NetworkClient | None, entity_ids: list[str], run_id: str,
         as_of: datetime, quota_units: float | None = None, connect: Callable[[str], NetworkClient] | None = None,
         scope: frozenset[str] = SCOPE, **window: Any) -> dict[str, int]:
    """plan -> extract posts -> extract comments -> normalize -> close, for one batch (no enrichment).

    With ``connect`` (a client for a connection id), each tracked entity is read with its own
    connection (``tracked_entities.conn_id``), as the DAG's extract tasks do; else with ``client``.
    """
    if connect is not None:
        return _sync_per_connection(engine, network, connect, entity_ids, run_id, as_of, **window)
    assert client is not None, "a client, or connect for a client per connection"
    bounds: dict[str, Any] = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in window.items()
              if k in ("since_id", "last_synced_at", "full_refresh") and v}
    jobs = open_batch(engine, network.name, entity_ids, run_id, as_of, scope=scope, **bounds)
    settings = runner.ExtractWindow(scope=scope & network.scopes, as_of=as_of, **window)
    units_before, records_before = client.units, client.records
    allowance = None
    if network.quota is not None:  # counted on the run's own day, as the DAG counts on the wall clock's
        allowance = usage.DailyAllowance(engine, network, quota_units, lambda: client.records - records_before,
                                         lambda: as_of)
        client.budget.allowance = allowance
    try:
        posts = runner.extract_posts(engine, network, client, jobs, settings, clock)
        jobs = _reload(engine, network.name, run_id)
        with NormalizeBehind(engine, network, clock) as behind:  # as the DAG's extract_comments task does
            comments = runner.extract_comments(engine, network, client, jobs, settings, clock, done=behind.submit)
        jobs = _reload(engine, network.name, run_id)
    finally:
        if allowance is not None:
            allowance.settle(client.units - units_before, client.records - records_before)
    live = [j for j in jobs if j.status != "skipped"]
    normalized = normalize_jobs(engine, network, [j.id for j in live], clock, skip_normalized=True)
    with engine.begin() as conn:
        bookkeeping.close_jobs(conn, network.name, jobs, [], clock())
        planning.release_leases(conn, network.name, [j.id for j in jobs])
    return {"post_pages": posts.pages, "comment_pages": comments.pages, "comment_posts": comments.comment_posts,
            "quota_stopped": int(posts.quota_stopped or comments.quota_stopped), "rows": normalized.posts
            + normalized.comments + normalized.media + normalized.profiles}


def _sync_per_connection(engine: Engine, network: NetworkSpec, connect: Callable[[str], NetworkClient],
                         entity_ids: list[str], run_id: str, as_of: datetime, **window: Any) -> dict[str, int]:
    bounds: dict[str, Any] = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in window.items()
              if k in ("since_id", "last_synced_at", "full_refresh") and v}
    jobs = open_batch(engine, network.name, entity_ids, run_id, as_of, **bounds)
    settings = runner.ExtractWindow(scope=SCOPE & network.scopes, as_of=as_of, **window)
    with engine.connect() as conn:
        readers = planning.connections_of(conn, network.name, entity_ids)

    @contextmanager
    def open_client(conn_id: str) -> Iterator[NetworkClient]:
        client = connect(conn_id)
        try:
            yield client
        finally:
            client.close()

    reports = []
    with NormalizeBehind(engine, network, clock) as behind:
        for step in (runner.extract_posts, partial(runner.extract_comments, done=behind.submit)):
            reports.append(extract_per_connection(step, engine, network, jobs, settings, clock, reader_of=readers,
                                                  open_client=open_client))
            jobs = _reload(engine, network.name, run_id)
    live = [j for j in jobs if j.status != "skipped"]
    normalized = normalize_jobs(engine, network, [j.id for j in live], clock, skip_normalized=True)
    with engine.begin() as conn:
        bookkeeping.close_jobs(conn, network.name, jobs, [], clock())
        planning.release_leases(conn, network.name, [j.id for j in jobs])
    return {"post_pages": reports[0].pages, "comment_pages": reports[1].pages,
            "failed_jobs": reports[0].failed_jobs + reports[1].failed_jobs,
            "rows": normalized.posts + normalized.comments + normalized.media + normalized.profiles}


def admitted(engine: Engine, network: NetworkSpec, entity_ids: list[str], as_of: datetime,
             quota_units: float | None = None) -> usage.Admission:
    """What ``plan`` admits of ``entity_ids`` within the network's quota on the day of ``as_of``."""
    with engine.begin() as conn:
        return usage.admit_within_quota(conn, network, entity_ids, as_of, quota_units)


def _reload(engine: Engine, network: str, run_id: str) -> list[bookkeeping.JobRef]:
    with engine.connect() as conn:
        return bookkeeping.jobs_in_batch(conn, network, run_id, 0)


def checksums(engine: Engine) -> dict[str, str]:
    """One digest per table derived from raw (every column, rows in key order)."""
    out = {}
    with engine.connect() as conn:
        for table in NORMALIZED_TABLES:
            if table.name == "enrichments":
                continue  # the external services' answers carry their own job ids and times
            digest = sha256()
            for row in conn.execute(select(table).order_by(*table.primary_key.columns)):
                digest.update(repr(tuple(row)).encode())
            out[table.name] = digest.hexdigest()
    return out
