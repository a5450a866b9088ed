"""Real Airflow 3 components on loopback: the daily run, a clear through REST, a conf-triggered run."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from socialsync.local.airflow import api_env, local_airflow, prepare_metadata
from socialsync.local.settings import Pool, airflow_env
from socialsync.sandbox.dataset import Dataset
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.storage import schema
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.planning import track_entities
from tests.conftest import ROOT
from tests.integration.conftest import SMALL
from tests.integration.sync_helpers import checksums, clock
from tests.integration.truth import assert_warehouse_matches
from tests.sandbox_connections import sandbox_connections

DAG = "instagram_sync"
DOWNSTREAM = "fresh_instagram_comments"
# A team's own DAG, scheduled on a socialsync Asset: it runs when a sync has loaded comments.
DOWNSTREAM_DAG = """
from datetime import datetime

from airflow.sdk import DAG, Asset, task

with DAG("fresh_instagram_comments", schedule=[Asset("socialsync://instagram/comments")],
         start_date=datetime(2026, 1, 1), catchup=False):

    @task
    def report(*, triggering_asset_events=None):
        rows = [event.extra["rows"] for events in triggering_asset_events.values() for event in events]
        print(f"fresh comments: {sum(rows)} row(s) in {len(rows)} event(s)")
        return sum(rows)

    report()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, check: Any, logs: Path, timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1)
    tails = {p.name: p.read_text()[-3000:] for p in logs.glob("*.log")}
    raise AssertionError(f"timed out waiting for {what}; logs:\n" + "\n".join(f"== {k}\n{v}" for k, v in tails.items()))


def test_daily_run_clear_and_conf_run_through_the_rest_api(tmp_path: Path) -> None:
    port, logs = _free_port(), tmp_path / "logs"
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = warehouse_engine(url)
    with SandboxServer(SandboxConfig(spec=SMALL, job_seconds=1.0)) as sandbox:
        dataset: Dataset = sandbox.app.state.dataset
        with engine.begin() as conn:
            track_entities(conn, "instagram", dataset.profile_ids(), clock())
        connections = sandbox_connections(sandbox.url, url)
        dags = tmp_path / "dags"  # the package's DAGs, and a downstream one of the team's own
        dags.mkdir()
        (dags / "socialsync_dags.py").symlink_to(ROOT / "dags" / "socialsync_dags.py")
        (dags / "fresh_instagram_comments.py").write_text(DOWNSTREAM_DAG)
        env = api_env(airflow_env(tmp_path / "airflow", dags, connections), port)
        env["AIRFLOW__SOCIALSYNC__ENRICH_POLL_SECONDS"] = "2"
        prepare_metadata(env, [Pool("instagram_api", 4, "Instagram Graph API work")])

        with local_airflow(env, port, logs):
            api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
            token = api.post("/auth/token", json={"username": "admin", "password": "admin"}).json()["access_token"]
            api.headers["Authorization"] = f"Bearer {token}"
            _wait("the DAG to be parsed", lambda: api.get(f"/api/v2/dags/{DAG}").status_code == 200, logs)
            _wait("the downstream DAG to be parsed",
                  lambda: api.get(f"/api/v2/dags/{DOWNSTREAM}").status_code == 200, logs)
            assert api.patch(f"/api/v2/dags/{DOWNSTREAM}", json={"is_paused": False}).status_code == 200

            refused = api.post(f"/api/v2/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": {"scope": "nope"}})
            assert refused.status_code == 400 and "is not one of" in refused.text

            # New DAGs start paused; unpausing lets the scheduler create today's daily run.
            assert api.patch(f"/api/v2/dags/{DAG}", json={"is_paused": False}).status_code == 200

            def finished_runs() -> list[dict[str, Any]]:
                runs = api.get(f"/api/v2/dags/{DAG}/dagRuns", params={"order_by": "run_after"}).json()["dag_runs"]
                bad = [r for r in runs if r["state"] == "failed"]
                assert not bad, f"run failed: {bad}; see {logs}"
                return [r for r in runs if r["state"] == "success"]

            daily = _wait("the daily run", finished_runs, logs)[0]
            assert daily["run_type"] == "scheduled"
            # The run's outcome is its note: jobs per status, rows loaded, requests.
            note = api.get(f"/api/v2/dags/{DAG}/dagRuns/{daily['dag_run_id']}").json()["note"] or ""
            assert f"socialsync instagram: {SMALL.profiles} job(s): {SMALL.profiles} succeeded" in note, note
            assert "rows loaded: " in note and "API requests: " in note
            assert_warehouse_matches(engine, dataset, enrich=True)
            before = checksums(engine)

            # load emitted socialsync://instagram/comments (rows in extra): the downstream DAG ran on it.
            events = api.get("/api/v2/assets/events", params={"order_by": "timestamp"}).json()["asset_events"]
            comment_events = [e for e in events if e["uri"] == "socialsync://instagram/comments"]
            assert comment_events and sum(e["extra"]["rows"] for e in comment_events) > 0, events
            _wait("the downstream DAG's asset-triggered run", lambda: [
                r for r in api.get(f"/api/v2/dags/{DOWNSTREAM}/dagRuns").json()["dag_runs"]
                if r["state"] == "success" and r["run_type"] == "asset_triggered"], logs)

            # Clear the finished run, as from the UI: it runs again and changes nothing.
            cleared = api.post(f"/api/v2/dags/{DAG}/clearTaskInstances", json={
                "dag_run_id": daily["dag_run_id"], "dry_run": False, "only_failed": False, "reset_dag_runs": True})
            assert cleared.status_code == 200, cleared.text
            _wait("the cleared run to finish again", lambda: any(
                r["dag_run_id"] == daily["dag_run_id"] and r["end_date"] != daily["end_date"]
                for r in finished_runs()), logs)
            assert checksums(engine) == before
            with engine.connect() as conn:
                relinked = conn.scalar(select(func.count()).where(schema.sync_jobs.c.previous_job_id.is_not(None)))
            assert relinked == SMALL.profiles

            # Another system triggers a run with conf through the REST API.
            one = dataset.profile_ids()[1]
            triggered = api.post(f"/api/v2/dags/{DAG}/dagRuns", json={
                "logical_date": None, "conf": {"entity_ids": [one], "scope": "posts", "full_refresh": True}})
            assert triggered.status_code == 200, triggered.text
            run_id = triggered.json()["dag_run_id"]
            _wait("the conf run", lambda: any(r["dag_run_id"] == run_id for r in finished_runs()), logs)
            with engine.connect() as conn:
                last = conn.execute(select(schema.sync_jobs.c.entity_id, schema.sync_jobs.c.status)
                                    .order_by(schema.sync_jobs.c.id.desc()).limit(1)).one()
            assert tuple(last) == (one, "succeeded")
    engine.dispose()
    # No component's log (api-server, scheduler, dag-processor, triggerer, every task's log) holds a
    # credential, although the sandbox's paging links carry the token as Graph's do.
    files = [p for p in (*logs.rglob("*"), *(tmp_path / "airflow").rglob("*.log*")) if p.is_file()]
    assert any("extract_posts" in str(p) for p in files), "no task log was found to check"
    for path in files:
        text = path.read_text(errors="replace")
        assert "sandbox-token" not in text and "sandbox-key" not in text, path
