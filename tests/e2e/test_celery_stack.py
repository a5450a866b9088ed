"""The production topology on loopback: PostgreSQL, Redis, Airflow's components and two Celery workers.

Without a Docker engine, ``docker-compose.yaml``'s shape is run from real processes: PostgreSQL holds
Airflow's metadata (database ``airflow``), Celery's results and the warehouse (database ``warehouse``),
Debian's ``redis-server`` is the broker, and two ``airflow celery worker`` processes share the daily
``instagram_sync`` run. The sandbox holds enough profiles for ``plan`` to deal them into two batches.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import sys
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from socialsync.local.airflow import api_env, local_airflow, prepare_metadata
from socialsync.local.settings import HOSTNAME_VARIABLE, airflow_env
from socialsync.sandbox.dataset import Dataset
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.planning import track_entities
from tests.conftest import ROOT
from tests.e2e.redis import redis_server
from tests.e2e.stack import free_port, wait
from tests.integration.conftest import SMALL
from tests.integration.postgres import postgres_server
from tests.integration.sync_helpers import clock, tracked_ids
from tests.integration.truth import assert_warehouse_matches
from tests.sandbox_connections import sandbox_connections

DAG = "instagram_sync"
WORKERS = ("worker-a", "worker-b")
# plan deals the due profiles into batches of at least 25 (tasks.MIN_BATCH_SIZE): 30 make two batches,
# and each worker (one task at a time) must take one of the two extract_posts queued together.
SPEC = dataclasses.replace(SMALL, profiles=30, posts_median=6, comments_median=3, posts_max=40)
BATCHES = 2
# What a worker logs for each workload it starts: the task instance's log path names its task and map index.
EXECUTING = re.compile(r"Executing workload in Celery: .*?log_path='[^']*"
                       r"/task_id=([^/']+)/(?:map_index=(\d+)/)?attempt=")


def _database(warehouse_url: str, name: str) -> str:
    """A second database of the same server (Airflow's metadata next to the warehouse)."""
    url = make_url(warehouse_url)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _celery_env(env: dict[str, str], metadata_url: str, broker_url: str) -> dict[str, str]:
    result_backend = make_url(metadata_url).set(drivername="postgresql").render_as_string(hide_password=False)
    return {
        **env,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{result_backend}",
        "AIRFLOW__CELERY__OPERATION_TIMEOUT": "10",  # sending to the broker on a busy 2-core machine
        # As docker-compose.yaml: the workers import the sync's code once, before forking their pools.
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "socialsync.airflow.celery_config.CELERY_CONFIG",
        # The scheduler signs each workload's token and the api-server checks it: one secret for all.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        # A task instance's hostname names the worker that ran it (each worker sets its own name).
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "socialsync.local.settings.process_hostname",
    }


def _worker(name: str) -> list[str]:
    return [sys.executable, "-m", "airflow", "celery", "worker", "--celery-hostname", f"{name}@%h",
            "--concurrency", "1", "--skip-serve-logs", "--without-gossip", "--without-mingle"]


def _executed_by(logs: Path) -> dict[tuple[str, int], set[str]]:
    """Celery's own account: which worker started each (task, map index), from the workers' logs."""
    executed: dict[tuple[str, int], set[str]] = {}
    for name in WORKERS:
        for match in EXECUTING.finditer((logs / f"{name}.log").read_text(errors="replace")):
            key = (match[1], int(match[2]) if match[2] is not None else -1)
            executed.setdefault(key, set()).add(name)
    return executed


def _ready(name: str, process: Any, logs: Path) -> bool:
    assert process.poll() is None, f"{name} exited; see {logs / f'{name}.log'}"
    log = (logs / f"{name}.log").read_text(errors="replace")
    return re.search(rf"\b{re.escape(name)}@\S+ ready\.", log) is not None


def test_daily_run_shares_its_batches_between_two_celery_workers(tmp_path: Path) -> None:
    port, logs = free_port(), tmp_path / "logs"
    with postgres_server() as warehouse_url, redis_server() as broker_url, \
            SandboxServer(SandboxConfig(spec=SPEC, job_seconds=1.0)) as sandbox:
        metadata_url = _database(warehouse_url, "airflow")
        engine = warehouse_engine(warehouse_url)
        dataset: Dataset = sandbox.app.state.dataset
        with engine.begin() as conn:
            track_entities(conn, "instagram", tracked_ids(dataset), clock())
        dags = tmp_path / "dags"
        dags.mkdir()
        (dags / "socialsync_dags.py").symlink_to(ROOT / "dags" / "socialsync_dags.py")
        env = api_env(airflow_env(tmp_path / "airflow", dags, sandbox_connections(sandbox.url, warehouse_url)), port)
        env = _celery_env(env, metadata_url, broker_url)
        env["AIRFLOW__SOCIALSYNC__ENRICH_POLL_SECONDS"] = "2"
        prepare_metadata(env, [])  # the pool is made through REST below: one Airflow CLI start less

        workers = {name: _worker(name) for name in WORKERS}
        with local_airflow(env, port, logs, extra=workers,
                           process_env={name: {HOSTNAME_VARIABLE: name} for name in WORKERS}) as running:
            api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
            token = api.post("/auth/token", json={"username": "admin", "password": "admin"}).json()["access_token"]
            api.headers["Authorization"] = f"Bearer {token}"
            pool = api.post("/api/v2/pools", json={"name": "instagram_api", "slots": 4,
                                                   "description": "Instagram Graph API work"})
            assert pool.status_code == 201, pool.text
            # Both workers consume the queue before the run exists; each takes one task at a time (concurrency 1,
            # Airflow's prefetch multiplier 1), so tasks queued together go to both.
            for name in WORKERS:
                wait(f"{name} to be ready", lambda name=name: _ready(name, running[name], logs), logs, timeout=120)
            wait("the DAG to be parsed", lambda: api.get(f"/api/v2/dags/{DAG}").status_code == 200, logs)
            # New DAGs start paused; unpausing lets the scheduler create today's daily run.
            assert api.patch(f"/api/v2/dags/{DAG}", json={"is_paused": False}).status_code == 200

            def finished_runs() -> list[dict[str, Any]]:
                runs = api.get(f"/api/v2/dags/{DAG}/dagRuns").json()["dag_runs"]
                bad = [r for r in runs if r["state"] == "failed"]
                assert not bad, f"run failed: {bad}; see {logs}"
                return [r for r in runs if r["state"] == "success"]

            daily = wait("the daily run", finished_runs, logs, timeout=300)[0]
            assert daily["run_type"] == "scheduled"
            run_id = daily["dag_run_id"]
            note = api.get(f"/api/v2/dags/{DAG}/dagRuns/{run_id}").json()["note"] or ""
            assert f"socialsync instagram: {SPEC.profiles} job(s): {SPEC.profiles} succeeded" in note, note
            tis = api.get(f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances", params={"limit": 100}).json()
            instances = tis["task_instances"]
            assert tis["total_entries"] == len(instances)

        # Every task ran on one of the two workers, each named by its own hostname callable (not the host's
        # name, which both share), and each worker ran some of the batches' mapped extract / load tasks.
        hosts = {(ti["task_id"], ti["map_index"]): ti["hostname"] for ti in instances}
        assert all(ti["state"] == "success" for ti in instances), instances
        assert set(hosts.values()) <= set(WORKERS), hosts
        mapped = {key: host for key, host in hosts.items() if key[0].startswith("batch.")}
        assert {index for _, index in mapped} == set(range(BATCHES)), mapped
        extract_load = {host for (task, _), host in mapped.items()
                        if task in ("batch.extract_posts", "batch.extract_comments", "batch.load")}
        assert extract_load == set(WORKERS), mapped
        # Celery's own account agrees: the worker a task instance names started it (a deferred sensor
        # resumes as a new workload, maybe on the other worker).
        executed = _executed_by(logs)
        for key, host in hosts.items():
            assert host in executed.get(key, set()), (key, host, executed)

        assert_warehouse_matches(engine, dataset, enrich=True)
        engine.dispose()
    # No component's or worker's log, nor any task's log, holds a credential.
    files = [p for p in (*logs.rglob("*"), *(tmp_path / "airflow").rglob("*.log*")) if p.is_file()]
    assert any("extract_posts" in str(p) for p in files), "no task log was found to check"
    for path in files:
        body = path.read_text(errors="replace")
        assert "sandbox-token" not in body and "sandbox-key" not in body, path
