"""Who may write a network's normalized tables: its syncs (through leases) or one rebuild, never both."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from socialsync.storage.jobs import FINISHED
from socialsync.storage.schema import entity_leases, network_locks, sync_jobs

REBUILD_TTL = timedelta(hours=23)  # a rebuild lock older than this belongs to a run that died
LEASE_TTL = timedelta(hours=23)  # the same bound planning gives entity leases


class NetworkBusy(RuntimeError):
    """The network is being rebuilt (for a sync) or synced (for a rebuild): try again later."""


def _lock(conn: Connection, network: str) -> tuple[str | None, datetime | None]:
    """Lock the network's row until the transaction ends (PostgreSQL: ``FOR UPDATE``; SQLite: the write lock)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(insert(network_locks).values(network=network).on_conflict_do_nothing(index_elements=["network"]))
    # Writing the row takes SQLite's write lock too, so two plans serialize there as well.
    conn.execute(update(network_locks).where(network_locks.c.network == network)
                 .values(network=network_locks.c.network))
    row = conn.execute(select(network_locks.c.rebuild_run_id, network_locks.c.acquired_at)
                       .where(network_locks.c.network == network).with_for_update()).one()
    return row.rebuild_run_id, row.acquired_at


def ensure_not_rebuilding(conn: Connection, network: str, now: datetime) -> None:
    """For a sync's plan: hold the network's lock for this transaction, refuse while a rebuild runs."""
    holder, since = _lock(conn, network)
    if holder is not None and since is not None and since > now - REBUILD_TTL:
        raise NetworkBusy(f"{network} is being rebuilt by run {holder} (since {since.isoformat()}); "
                          "the sync waits for it")


def live_syncs(conn: Connection, network: str, now: datetime) -> dict[str, int]:
    """Runs holding leases of unfinished jobs of ``network``, with how many entities each holds."""
    query = (select(entity_leases.c.run_id, func.count())
             .join(sync_jobs, sync_jobs.c.id == entity_leases.c.job_id)
             .where(entity_leases.c.network == network, sync_jobs.c.status.not_in(FINISHED),
                    entity_leases.c.acquired_at > now - LEASE_TTL)
             .group_by(entity_leases.c.run_id))
    return {run_id: count for run_id, count in conn.execute(query)}


def begin_rebuild(conn: Connection, network: str, run_id: str, now: datetime) -> None:
    """Take the network for a rebuild, unless a sync is working any of its entities."""
    holder, since = _lock(conn, network)
    if holder not in (None, run_id) and since is not None and since > now - REBUILD_TTL:
        raise NetworkBusy(f"{network} is already being rebuilt by run {holder}")
    syncing = live_syncs(conn, network, now)
    if syncing:
        runs = ", ".join(f"{run} ({count} profile(s))" for run, count in sorted(syncing.items()))
        raise NetworkBusy(f"{network} is being synced by {runs}; the rebuild waits for it")
    conn.execute(update(network_locks).where(network_locks.c.network == network)
                 .values(rebuild_run_id=run_id, acquired_at=now))


def end_rebuild(conn: Connection, network: str, run_id: str) -> None:
    conn.execute(update(network_locks).where(network_locks.c.network == network,
                                             network_locks.c.rebuild_run_id == run_id)
                 .values(rebuild_run_id=None, acquired_at=None))
