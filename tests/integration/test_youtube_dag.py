"""The whole youtube_sync DAG through ``airflow dags test`` on a real PostgreSQL (SQLite: test_youtube_sync)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, select

from socialsync.sandbox.server import SandboxServer
from socialsync.sandbox.youtube_dataset import YouTubeDataset
from socialsync.storage import migrate, schema
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.planning import track_entities
from tests.integration.test_instagram_dag import _airflow, _env, _now, airflow_home, sandbox_for_dags  # noqa: F401
from tests.integration.youtube_truth import assert_youtube_matches, calls, calls_since, minimum_calls
from tests.sandbox_connections import sandbox_connections


def test_youtube_sync_loads_the_ground_truth(airflow_home: Path, sandbox_for_dags: SandboxServer,  # noqa: F811
                                             request: pytest.FixtureRequest) -> None:
    url = str(request.getfixturevalue("postgres_url"))
    engine = warehouse_engine(url)
    data: YouTubeDataset = sandbox_for_dags.app.state.youtube.data
    channels = list(range(data.dataset.spec.profiles))
    before = calls(sandbox_for_dags.counters)
    try:
        with engine.begin() as conn:
            track_entities(conn, "youtube", [data.channel_id(p) for p in channels], _now())
        # Batches of four: the first batch's channels come in one call, the second's in another.
        _airflow(_env(airflow_home, sandbox_for_dags, url), "dags", "test", "youtube_sync",
                 "--conf", json.dumps({"batch_size": 4}))
        assert_youtube_matches(engine, data)
        spent = calls_since(sandbox_for_dags.counters, before)
        assert spent == {**minimum_calls(data, channels), "channels": 2}
        with engine.connect() as conn:
            statuses = dict(conn.execute(select(schema.sync_jobs.c.status, func.count())
                                         .where(schema.sync_jobs.c.network == "youtube")
                                         .group_by(schema.sync_jobs.c.status)).tuples().all())
            enriched = conn.scalar(select(func.count()).select_from(schema.enrichments)
                                   .where(schema.enrichments.c.network == "youtube"))
        assert statuses == {"succeeded": len(channels)}
        assert enriched == len(channels) + 2 * data.totals()["videos"]  # bios, titles, thumbnails
    finally:
        migrate.drop_all(engine)
        engine.dispose()


def test_plan_defers_what_today_s_quota_cannot_pay_for(airflow_home: Path, sandbox_for_dags: SandboxServer,  # noqa: F811
                                                      tmp_path: Path) -> None:
    """A deployment's quota of 250 units a day: plan admits the two never-synced channels whose
    estimates (100 units each) fit, says in its log and XCom how many it deferred and why, and the
    run spends no more than the quota."""
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = warehouse_engine(url)
    data: YouTubeDataset = sandbox_for_dags.app.state.youtube.data
    ids = [data.channel_id(p) for p in range(data.dataset.spec.profiles)]
    units = sandbox_for_dags.counters["youtube:units"]
    try:
        with engine.begin() as conn:
            track_entities(conn, "youtube", ids, _now())
        env = {**_env(airflow_home, sandbox_for_dags, url),
               **sandbox_connections(sandbox_for_dags.url, url, youtube_extra={"quota_units": 250})}
        result = _airflow(env, "dags", "test", "youtube_sync", "--conf", json.dumps({"enrich": False}))
        output = result.stdout + result.stderr
        assert f"{len(ids) - 2} of {len(ids)} due profile(s) deferred" in output, output[-3000:]
        with engine.connect() as conn:
            opened = list(conn.scalars(select(schema.sync_jobs.c.entity_id).order_by(schema.sync_jobs.c.id)))
            spent = conn.scalar(select(func.sum(schema.api_usage.c.units)))
        assert opened == sorted(ids)[:2]  # never synced alike: due order (code points) breaks the tie
        assert spent == sandbox_for_dags.counters["youtube:units"] - units <= 250
        xcom = sqlite3.connect(airflow_home / "airflow.db").execute(
            "select value from xcom where key = 'quota' and dag_id = 'youtube_sync' order by timestamp desc limit 1"
        ).fetchone()
        decided = json.loads(xcom[0]) if isinstance(xcom[0], str) else json.loads(xcom[0].decode())
        assert (decided["admitted"], decided["deferred"]) == (2, len(ids) - 2) and "quota" in decided["reason"]
    finally:
        engine.dispose()
