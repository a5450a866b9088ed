"""The sync API under 32 concurrent readers while a sync writes, on the embedded SQLite warehouse and on
PostgreSQL: no server error, and no page repeats or skips a row (tests/api_load.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from socialsync.storage.engine import warehouse_engine
from tests.api_load import under_load
from tests.integration.postgres import postgres_server
from tests.integration.truth import assert_warehouse_matches


@contextmanager
def _warehouse(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"
    else:
        with postgres_server() as url:
            yield url


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_32_readers_page_the_api_while_a_sync_writes(backend: str, tmp_path: Path) -> None:
    with _warehouse(backend, tmp_path) as url:
        result, dataset = under_load(url, readers=32)
        print(f"\n{backend}: {result.summary()}")
        assert not result.errors, result.errors[:5]
        assert set(result.statuses) == {200} and result.passes >= 2 * 32
        engine = warehouse_engine(url)
        assert_warehouse_matches(engine, dataset, enrich=False, story_epochs=[0, 1])  # the writer's day is whole
        engine.dispose()
