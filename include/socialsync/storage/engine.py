"""Engines for the warehouse: one code path for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import orjson
from sqlalchemy import URL, Engine, create_engine, event, make_url

from socialsync.storage import migrate


def warehouse_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the schema at its newest revision; SQLite gets WAL and a busy timeout."""
    if make_url(url).get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {"timeout": 60})
    # An extract task's workers (a few dozen threads) each hold a connection only for a page's short
    # transaction, never across a request: 8 connections serve them without reconnecting, and a burst
    # waits for one (``pool_timeout``) rather than opening more. Bounded, so that a worker's task slots
    # never hold more than 12 connections each (PostgreSQL's default ``max_connections`` is 100).
    kwargs.setdefault("pool_size", 8)
    kwargs.setdefault("max_overflow", 4)
    # Raw pages are the warehouse's largest values, written once and read back by normalize: orjson.
    kwargs.setdefault("json_serializer", json_text)
    kwargs.setdefault("json_deserializer", json_value)
    engine = create_engine(url, future=True, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    migrate.upgrade(engine)
    return engine


def json_text(value: Any) -> str:
    """A JSON column's value as text: orjson's, or json's for what orjson refuses (an integer past 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def json_value(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN, an integer past 64 bits: json reads them
        return json.loads(text)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the UI's readers and one writer task work at once on the embedded default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
