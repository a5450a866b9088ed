"""The whole tiktok_sync DAG through ``airflow dags test`` on a real PostgreSQL (SQLite: test_tiktok_sync)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, select

from socialsync.sandbox.server import SandboxServer
from socialsync.sandbox.tiktok_dataset import TikTokDataset
from socialsync.storage import migrate, schema
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.planning import track_entities
from tests.integration.test_instagram_dag import _airflow, _env, _now, airflow_home, sandbox_for_dags  # noqa: F401
from tests.integration.tiktok_truth import (
    assert_tiktok_matches,
    calls,
    calls_since,
    first_sync_requests,
    follow_truth,
    held_follows,
    held_names,
    held_pinned,
    pinned_truth,
)


def test_tiktok_sync_loads_the_ground_truth_and_keeps_no_token(
        airflow_home: Path, sandbox_for_dags: SandboxServer, request: pytest.FixtureRequest,  # noqa: F811
        tmp_path: Path) -> None:
    url = str(request.getfixturevalue("postgres_url"))
    engine = warehouse_engine(url)
    data: TikTokDataset = sandbox_for_dags.app.state.tiktok.data
    accounts = list(range(data.dataset.spec.profiles))
    ids = [data.user(p).username for p in accounts]
    before = calls(sandbox_for_dags.counters)
    try:
        with engine.begin() as conn:
            track_entities(conn, "tiktok", ids, _now())
        env = {**_env(airflow_home, sandbox_for_dags, url), "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(tmp_path / "logs")}
        as_of = _now().date()
        result = _airflow(env, "dags", "test", "tiktok_sync", "--conf", json.dumps({"enrich": False}))
        assert_tiktok_matches(engine, data)
        assert calls_since(sandbox_for_dags.counters, before) == first_sync_requests(data, accounts, as_of)
        # scope all: who follows each account and whom it follows, as far as max_list_items allows.
        assert held_names(held_follows(engine), data, accounts) == follow_truth(data, accounts)
        pins = held_pinned(engine)  # and which of its videos each account pinned
        assert {video: row[1] for video, row in pins.items()} == pinned_truth(data, accounts, pins)
        p, _ = data.busiest_video() or (0, 0)
        with engine.connect() as conn:
            statuses = dict(conn.execute(select(schema.sync_jobs.c.entity_id, schema.sync_jobs.c.status)
                                         .where(schema.sync_jobs.c.network == "tiktok")).tuples().all())
            rows = "\n".join(str(tuple(row)) for table in schema.metadata.sorted_tables
                             for row in conn.execute(select(table)))
            assert conn.scalar(select(func.count()).select_from(schema.comments).where(
                schema.comments.c.network == "tiktok")) == data.totals()["reachable_comments"]
        # The account whose video passes the 1,000-comment cap is partial, the others succeeded.
        assert statuses == {u: "partial" if u == ids[p] else "succeeded" for u in ids}
        secrets = [*sandbox_for_dags.app.state.tiktok.issued_tokens(), "sandbox-secret"]
        output = result.stdout + result.stderr
        assert not [s for s in secrets if s in output or s in rows]
        for path in [*(tmp_path / "logs").rglob("*"), *airflow_home.rglob("*.log")]:
            if path.is_file():
                assert not [s for s in secrets if s in path.read_text(errors="replace")], path
        metadata_db = (airflow_home / "airflow.db").read_bytes()  # XCom, rendered fields, task notes
        assert not [s for s in secrets if s.encode() in metadata_db]
        # load emitted an Asset event per table it changed, with the rows in extra (one batch here).
        events = sqlite3.connect(airflow_home / "airflow.db").execute(
            "select a.uri, e.extra from asset_event e join asset a on a.id = e.asset_id "
            "where a.uri like 'socialsync://tiktok/%' order by e.id").fetchall()
        extras = {uri: json.loads(extra) for uri, extra in events}
        tables = ("profiles", "posts", "media", "comments", "metrics")
        assert set(extras) == {f"socialsync://tiktok/{t}" for t in tables}
        assert extras["socialsync://tiktok/comments"]["rows"] == data.totals()["reachable_comments"]
        assert extras["socialsync://tiktok/posts"]["rows"] == data.totals()["videos"]
        # Each mapped task names its batch in the UI, and the extract logs tell how far the batch is.
        labels = {row[0] for row in sqlite3.connect(airflow_home / "airflow.db").execute(
            "select rendered_map_index from task_instance where dag_id = 'tiktok_sync' and task_id like 'batch.%'")}
        assert f"batch 0: {len(ids)} profile(s)" in labels, labels
        assert f"posts: {len(ids)} of {len(ids)} profile(s) done" in output
    finally:
        migrate.drop_all(engine)
        engine.dispose()
