"""The warehouse schema, versioned with Alembic (``storage/migrations``): every engine brings its
database to the head revision before it is used.

A warehouse made by an earlier release with ``create_all`` (before migrations existed) is
recognised by its tables and columns, stamped with the revision that release made, then upgraded:
its data stays. On PostgreSQL an advisory lock makes concurrent tasks migrate one at a time.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from socialsync.storage.schema import metadata

SCRIPT_LOCATION = str(Path(__file__).with_name("migrations"))
LOCK_KEY = 0x50C1A15  # the advisory lock every migrating process takes in turn


def config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["connection"] = connection
    return cfg


@cache
def head() -> str:
    revision = ScriptDirectory.from_config(config()).get_current_head()
    assert revision is not None
    return revision


def current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the warehouse to ``revision`` (the newest by default); nothing to do costs one query."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        at = current(conn)
        if at == (head() if revision == "head" else revision):
            return
        if at is None and (made_by := unversioned_revision(conn)) is not None:
            command.stamp(config(conn), made_by)
        command.upgrade(config(conn), revision)


def unversioned_revision(conn: Connection) -> str | None:
    """The revision a warehouse made by ``create_all`` at an earlier release matches; ``None`` when empty."""
    found = inspect(conn)
    tables = set(found.get_table_names())
    if "sync_jobs" not in tables:
        return None
    if "api_usage" not in tables:
        return "0001_baseline"
    if "reply_count" not in {column["name"] for column in found.get_columns("comments")}:
        return "0002_quota_and_replies"
    return "0003_reply_counts_and_records"


def drop_all(bind: Engine | Connection) -> None:
    """Every warehouse table and the revision it was at (tests and benchmarks start again from nothing)."""
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            drop_all(conn)
        return
    metadata.drop_all(bind)
    bind.execute(text("DROP TABLE IF EXISTS alembic_version"))


def reset(engine: Engine) -> None:
    """An empty warehouse at the newest revision."""
    drop_all(engine)
    upgrade(engine)
