"""Idempotent upserts on natural keys: loading the same rows twice leaves the table as once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, CursorResult, Table
from sqlalchemy.dialects import postgresql, sqlite

# SQLite allows 32766 bound parameters a statement; stay well inside it for wide tables.
_MAX_PARAMS = 30000


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key an ``INSERT`` just made."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the insert returned no primary key")
    return int(key[0])


def dialect_insert(conn: Connection, table: Table) -> Any:
    """``INSERT`` with ``ON CONFLICT`` for the connection's database (PostgreSQL or SQLite)."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def upsert(conn: Connection, table: Table, rows: Iterable[Mapping[str, Any]], newer: str | None = None) -> int:
    """Insert ``rows`` or update them in place on the table's primary key; returns rows offered.

    With ``newer`` (a column name), a stored row is only replaced by a row whose ``newer`` value is
    at least its own: replaying older data over newer never turns it back.
    """
    unique = _last_per_key(table, rows)
    if not unique:
        return 0
    key = [c.name for c in table.primary_key.columns]
    columns = list(unique[0].keys())
    chunk = max(1, _MAX_PARAMS // max(1, len(columns)))
    for start in range(0, len(unique), chunk):
        stmt = dialect_insert(conn, table).values(unique[start : start + chunk])
        updates = {c: stmt.excluded[c] for c in columns if c not in key}
        where = table.c[newer] <= stmt.excluded[newer] if newer else None
        stmt = stmt.on_conflict_do_update(index_elements=key, set_=updates, where=where) if updates else (
            stmt.on_conflict_do_nothing(index_elements=key)
        )
        conn.execute(stmt)
    return len(unique)


def _last_per_key(table: Table, rows: Iterable[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    # One statement may not touch a key twice (PostgreSQL refuses); the last version wins.
    key = [c.name for c in table.primary_key.columns]
    by_key: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for row in rows:
        by_key[tuple(row[k] for k in key)] = row
    return list(by_key.values())
