"""The tasks' warehouse engine: one pool per connection and process, bounded, and new when the connection changes."""

from __future__ import annotations

import json

from socialsync.airflow.connections import warehouse


def test_one_bounded_engine_per_connection_and_a_new_one_when_it_changes(tmp_path, monkeypatch) -> None:
    def point_at(name: str) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_SOCIALSYNC_DB",
                           json.dumps({"conn_type": "sqlite", "host": str(tmp_path / name)}))

    point_at("a.db")
    first = warehouse()
    assert warehouse() is first  # a task's steps and its normalize-behind thread share one pool
    # 8 kept and 4 more in a burst: four task slots stay far below PostgreSQL's 100 connections
    assert (first.pool.size(), first.pool._max_overflow) == (8, 4)  # type: ignore[attr-defined]
    point_at("b.db")
    second = warehouse()
    assert second is not first and second.url.database == str(tmp_path / "b.db")
    first.dispose()
    second.dispose()
