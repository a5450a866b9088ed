"""The whole youtube_sync DAG through ``airflow dags test`` on a real PostgreSQL (SQLite: test_youtube_sync)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from socialsync.sandbox.server import SandboxServer
from socialsync.sandbox.youtube_dataset import YouTubeDataset
from socialsync.storage import schema
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.planning import track_entities
from tests.integration.test_instagram_dag import _airflow, _env, _now, airflow_home, sandbox_for_dags  # noqa: F401
from tests.integration.youtube_truth import assert_youtube_matches, minimum_calls

CALLS = ("channels", "playlistItems", "videos", "commentThreads", "comments")


def test_youtube_sync_loads_the_ground_truth(airflow_home: Path, sandbox_for_dags: SandboxServer,  # noqa: F811
                                             request: pytest.FixtureRequest) -> None:
    url = str(request.getfixturevalue("postgres_url"))
    engine = warehouse_engine(url)
    data: YouTubeDataset = sandbox_for_dags.app.state.youtube.data
    channels = list(range(data.dataset.spec.profiles))
    before = {c: sandbox_for_dags.counters[f"youtube:{c}"] for c in CALLS}
    try:
        with engine.begin() as conn:
            track_entities(conn, "youtube", [data.channel_id(p) for p in channels], _now())
        # Batches of four: the first batch's channels come in one call, the second's in another.
        _airflow(_env(airflow_home, sandbox_for_dags, url), "dags", "test", "youtube_sync",
                 "--conf", json.dumps({"batch_size": 4}))
        assert_youtube_matches(engine, data)
        spent = {c: sandbox_for_dags.counters[f"youtube:{c}"] - before[c] for c in CALLS}
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
        schema.metadata.drop_all(engine)
        engine.dispose()
