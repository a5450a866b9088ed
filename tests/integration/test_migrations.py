"""The warehouse schema is versioned with Alembic: a warehouse made by an earlier release, with its
data, is upgraded to the newest schema and keeps every row; a new one is made by the migrations."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, select, text

from socialsync.storage import migrate
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.schema import comments, metadata, raw_pages, sync_jobs

AT = datetime(2026, 10, 1, tzinfo=UTC)
STORED = {"at": AT.replace(tzinfo=None)}  # timestamps are stored as naive UTC


@pytest.fixture(params=["sqlite", "postgres"])
def bare(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    """An empty database, with no schema (not through ``warehouse_engine``)."""
    url = f"sqlite:///{tmp_path / 'old.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    migrate.drop_all(engine)
    yield engine
    migrate.drop_all(engine)
    engine.dispose()


def _first_release_rows(engine: Engine) -> None:
    """A job, its raw page and a comment as the first release wrote them (no units, no replies)."""
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO sync_jobs (id, network, entity_id, run_id, status, cursor, started_at) "
            "VALUES (1, 'instagram', '17841400000000001', 'run-1', 'succeeded', '{}', :at)"), STORED)
        conn.execute(text(
            "INSERT INTO raw_pages (id, network, job_id, kind, parent_id, request, status_code, payload, "
            "item_count, fetched_at) VALUES (1, 'instagram', 1, 'comments', 'p1', '{}', 200, :payload, 1, :at)"),
            {**STORED, "payload": '{"data": []}'})
        conn.execute(text(
            "INSERT INTO comments (network, comment_id, post_id, content, created_at, deleted, synced_at) "
            "VALUES ('instagram', 'c1', 'p1', 'first!', :at, false, :at)"), STORED)


@pytest.mark.parametrize("made_with", ["alembic", "create_all"])
def test_a_first_release_warehouse_is_upgraded_and_keeps_its_rows(bare: Engine, made_with: str) -> None:
    migrate.upgrade(bare, "0001_baseline")
    if made_with == "create_all":  # made before migrations existed: no revision recorded
        with bare.begin() as conn:
            conn.execute(text("DROP TABLE alembic_version"))
    _first_release_rows(bare)

    engine = warehouse_engine(bare.url)  # what every task does first
    try:
        with engine.connect() as conn:
            assert migrate.current(conn) == migrate.head()
            assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata) == []
            job = conn.execute(select(sync_jobs.c.entity_id, sync_jobs.c.status, sync_jobs.c.units)).one()
            page = conn.execute(select(raw_pages.c.payload, raw_pages.c.units)).one()
            comment = conn.execute(select(comments.c.content, comments.c.parent_comment_id,
                                          comments.c.reply_count, comments.c.created_at)).one()
        assert tuple(job) == ("17841400000000001", "succeeded", None)
        assert tuple(page) == ({"data": []}, 1.0)  # a page stored before quotas were counted was one call
        assert tuple(comment) == ("first!", None, None, AT)
    finally:
        engine.dispose()


def test_a_new_warehouse_is_made_by_the_migrations_and_they_go_down_and_up_again(bare: Engine) -> None:
    migrate.upgrade(bare)
    with bare.connect() as conn:
        assert migrate.current(conn) == migrate.head()
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata) == []
    with bare.begin() as conn:
        command.downgrade(migrate.config(conn), "0001_baseline")
    with bare.connect() as conn:
        assert migrate.unversioned_revision(conn) == "0001_baseline"
    migrate.upgrade(bare)
    with bare.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata) == []
