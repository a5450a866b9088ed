"""Fixtures: the sandbox on loopback, a real PostgreSQL server, and empty warehouses on both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from socialsync.sandbox.dataset import DatasetSpec
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.storage import migrate
from socialsync.storage.engine import warehouse_engine
from tests.integration.postgres import postgres_server

# Small but with every shape: a profile with no posts, carousels, reels, long comment threads.
SMALL = DatasetSpec(seed=4242, profiles=6, posts_median=18, comments_median=5, posts_max=300)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(spec=SMALL, job_seconds=0.6)) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        engine = warehouse_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    else:
        engine = warehouse_engine(request.getfixturevalue("postgres_url"))
    yield engine
    migrate.drop_all(engine)
    engine.dispose()
