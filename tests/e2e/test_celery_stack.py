"""The production topology on loopback: PostgreSQL, Redis, Airflow's components and two Celery workers.

PostgreSQL holds Airflow's metadata (database ``airflow``), Celery's results and the warehouse (database
``warehouse``), as in ``docker-compose.yaml``; two ``airflow celery worker`` processes share the daily
``instagram_sync`` run. The sandbox holds enough profiles for ``plan`` to deal them into two batches.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from socialsync.sandbox.dataset import Dataset
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.storage.engine import warehouse_engine
from tests.e2e.celery import DAG, celery_stack, database
from tests.e2e.redis import redis_server
from tests.e2e.stack import wait
from tests.integration.conftest import SMALL
from tests.integration.postgres import postgres_server
from tests.integration.truth import assert_warehouse_matches

# plan deals the due profiles into batches of at least 25 (tasks.MIN_BATCH_SIZE): 30 make two batches,
# and each worker (one task at a time) must take one of the two extract_posts queued together.
SPEC = dataclasses.replace(SMALL, profiles=30, posts_median=6, comments_median=3, posts_max=40)
BATCHES = 2


def test_daily_run_shares_its_batches_between_two_celery_workers(tmp_path: Path) -> None:
    with postgres_server() as warehouse_url, redis_server() as broker_url, \
            SandboxServer(SandboxConfig(spec=SPEC, job_seconds=1.0)) as sandbox:
        engine = warehouse_engine(warehouse_url)
        dataset: Dataset = sandbox.app.state.dataset
        with celery_stack(tmp_path, dataset=dataset, sandbox_url=sandbox.url, warehouse=engine,
                          warehouse_url=warehouse_url, metadata_url=database(warehouse_url, "airflow"),
                          broker_url=broker_url) as stack:
            api, logs = stack.api, stack.logs
            # New DAGs start paused; unpausing lets the scheduler create today's daily run.
            assert api.patch(f"/api/v2/dags/{DAG}", json={"is_paused": False}).status_code == 200

            def finished_runs() -> list[dict[str, Any]]:
                runs = stack.runs()
                bad = [r for r in runs if r["state"] == "failed"]
                assert not bad, f"run failed: {bad}; see {logs}"
                return [r for r in runs if r["state"] == "success"]

            daily = wait("the daily run", finished_runs, logs, timeout=300)[0]
            assert daily["run_type"] == "scheduled"
            run_id = daily["dag_run_id"]
            note = api.get(f"/api/v2/dags/{DAG}/dagRuns/{run_id}").json()["note"] or ""
            assert f"socialsync instagram: {SPEC.profiles} job(s): {SPEC.profiles} succeeded" in note, note
            instances = stack.task_instances(run_id)
            executed = stack.executed_by()

        # Every task ran on one of the two workers, each named by its own hostname callable (not the host's
        # name, which both share), and each worker ran some of the batches' mapped extract / load tasks.
        hosts = {(ti["task_id"], ti["map_index"]): ti["hostname"] for ti in instances}
        assert all(ti["state"] == "success" for ti in instances), instances
        assert set(hosts.values()) <= set(stack.workers), hosts
        mapped = {key: host for key, host in hosts.items() if key[0].startswith("batch.")}
        assert {index for _, index in mapped} == set(range(BATCHES)), mapped
        extract_load = {host for (task, _), host in mapped.items()
                        if task in ("batch.extract_posts", "batch.extract_comments", "batch.load")}
        assert extract_load == set(stack.workers), mapped
        # Celery's own account agrees: the worker a task instance names started it (a deferred sensor
        # resumes as a new workload, maybe on the other worker).
        for key, host in hosts.items():
            assert host in executed.get(key, []), (key, host, executed)

        assert_warehouse_matches(engine, dataset, enrich=True)
        engine.dispose()
    # No component's or worker's log, nor any task's log, holds a credential.
    files = [p for p in (*logs.rglob("*"), *(tmp_path / "airflow").rglob("*.log*")) if p.is_file()]
    assert any("extract_posts" in str(p) for p in files), "no task log was found to check"
    for path in files:
        body = path.read_text(errors="replace")
        assert "sandbox-token" not in body and "sandbox-key" not in body, path
