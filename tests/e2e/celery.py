"""The production topology on loopback, for the Celery e2e modules: Airflow's components and Celery workers.

Without a Docker engine, ``docker-compose.yaml``'s shape is run from real processes: PostgreSQL holds
Airflow's metadata and Celery's results, Debian's ``redis-server`` is the broker, and ``airflow celery
worker`` processes (one task at a time each) share the ``instagram_sync`` runs. The caller starts the
servers (so that it can stop them: a fault test restarts the broker or the warehouse) and the sandbox.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from socialsync.local.airflow import api_env, component_commands, local_airflow, prepare_metadata, start_component
from socialsync.local.settings import HOSTNAME_VARIABLE, airflow_env
from socialsync.networks import get_network
from socialsync.sandbox.dataset import Dataset
from socialsync.storage.planning import track_entities
from tests.conftest import ROOT
from tests.e2e.stack import free_port, wait
from tests.integration.sync_helpers import clock, tracked_ids
from tests.sandbox_connections import sandbox_connections

DAG = "instagram_sync"
NETWORKS = ("instagram", "youtube", "tiktok")
# What a worker logs for each workload it starts: the task instance's log path names its task and map index.
EXECUTING = re.compile(r"Executing workload in Celery: .*?log_path='[^']*"
                       r"/task_id=([^/']+)/(?:map_index=(\d+)/)?attempt=")


def database(server_url: str, name: str) -> str:
    """A new database of the server of ``server_url`` (Airflow's metadata next to a warehouse)."""
    url = make_url(server_url)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def celery_env(env: dict[str, str], metadata_url: str, broker_url: str) -> dict[str, str]:
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


def worker_command(name: str, concurrency: int = 1) -> list[str]:
    return [sys.executable, "-m", "airflow", "celery", "worker", "--celery-hostname", f"{name}@%h",
            "--concurrency", str(concurrency), "--skip-serve-logs", "--without-gossip", "--without-mingle"]


@dataclass
class CeleryStack:
    """The running stack: each component's process, the REST API (logged in), the sandbox's truth."""

    port: int
    logs: Path
    env: dict[str, str]
    commands: dict[str, list[str]]
    process_env: dict[str, dict[str, str]]
    running: dict[str, subprocess.Popen[bytes]]
    api: httpx.Client
    dataset: Dataset
    workers: tuple[str, ...]

    def start(self, name: str) -> None:
        """Start ``name`` again (after :meth:`kill`), appending to its log."""
        self.running[name] = start_component(name, self.commands[name],
                                             {**self.env, **self.process_env.get(name, {})}, self.logs)

    def kill(self, name: str) -> None:
        """``SIGKILL`` to ``name``'s whole process tree, as an OOM kill of its container or a lost host: a
        worker's pool, the supervisors it forked and their task processes (each in a process group of its
        own, so a signal to the worker's group would leave them running)."""
        process = self.running[name]
        tree = psutil.Process(process.pid)
        for member in [tree, *tree.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.send_signal(signal.SIGKILL)
        process.wait(timeout=60)

    def scale(self, concurrency: int) -> None:
        """Redeploy the workers with ``concurrency`` task slots each, and the scheduler with as many in all
        (``[core] parallelism``, as docker-compose.yaml ties them), one component after the other, idle."""
        for name in self.workers:
            self.kill(name)
            self.commands[name] = worker_command(name, concurrency)
            since = self.log_size(name)
            self.start(name)
            wait(f"{name} to be ready", lambda name=name, since=since: self.ready(name, since), self.logs, timeout=120)
        self.process_env.setdefault("scheduler", {})["AIRFLOW__CORE__PARALLELISM"] = str(
            concurrency * len(self.workers))
        self.kill("scheduler")
        self.start("scheduler")

    def freeze(self, name: str, frozen: bool = True) -> None:
        """``SIGSTOP`` (``SIGCONT``) to ``name``'s own process: a frozen worker takes no message from the
        broker, while the task it already runs (its pool's process and their own) goes on."""
        os.kill(self.running[name].pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def ready(self, name: str, since: int = 0) -> bool:
        """Whether worker ``name`` has said it is ready (in its log past byte ``since``)."""
        assert self.running[name].poll() is None, f"{name} exited; see {self.logs / f'{name}.log'}"
        log = (self.logs / f"{name}.log").read_bytes()[since:].decode(errors="replace")
        return re.search(rf"\b{re.escape(name)}@\S+ ready\.", log) is not None

    def memory(self) -> dict[str, float]:
        """Resident memory (MiB) of each component's process tree: a worker's pool included, and the task
        processes of a task running at the time (measured between runs, there are none)."""
        used = {}
        for name, process in self.running.items():
            tree = psutil.Process(process.pid)
            members = [tree, *tree.children(recursive=True)]
            total = 0
            for member in members:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += member.memory_info().rss
            used[name] = total / 2**20
        return used

    def log_size(self, name: str) -> int:
        return (self.logs / f"{name}.log").stat().st_size

    def executed_by(self) -> dict[tuple[str, int], list[str]]:
        """Celery's own account: the workers that started each (task, map index), from their logs, in order."""
        executed: dict[tuple[str, int], list[str]] = {}
        for name in self.workers:
            for match in EXECUTING.finditer((self.logs / f"{name}.log").read_text(errors="replace")):
                key = (match[1], int(match[2]) if match[2] is not None else -1)
                executed.setdefault(key, []).append(name)
        return executed

    def runs(self, dag: str = DAG) -> list[dict[str, Any]]:
        return list(self.api.get(f"/api/v2/dags/{dag}/dagRuns").json()["dag_runs"])

    def task_instances(self, run_id: str, dag: str = DAG) -> list[dict[str, Any]]:
        answer = self.api.get(f"/api/v2/dags/{dag}/dagRuns/{run_id}/taskInstances", params={"limit": 100}).json()
        assert answer["total_entries"] == len(answer["task_instances"])
        return list(answer["task_instances"])

    def trigger(self, conf: dict[str, Any] | None = None, dag: str = DAG) -> str:
        answer = self.api.post(f"/api/v2/dags/{dag}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["dag_run_id"])

    def finished(self, run_id: str, timeout: float, dag: str = DAG) -> dict[str, Any]:
        """The run once it has ended (successfully or not), within ``timeout`` seconds."""
        def ended() -> dict[str, Any] | None:
            run = self.api.get(f"/api/v2/dags/{dag}/dagRuns/{run_id}").json()
            return run if run["state"] in ("success", "failed") else None
        return dict(wait(f"run {run_id} to end", ended, self.logs, timeout=timeout))

    def running_task(self, run_id: str, prefix: str) -> dict[str, Any] | None:
        """A task instance of ``run_id`` whose task id starts with ``prefix`` that is running, if any."""
        return next((ti for ti in self.task_instances(run_id)
                     if ti["task_id"].startswith(prefix) and ti["state"] == "running"), None)


@contextmanager
def celery_stack(tmp_path: Path, *, dataset: Dataset, sandbox_url: str, warehouse: Engine, warehouse_url: str,
                 metadata_url: str, broker_url: str, workers: tuple[str, ...] = ("worker-a", "worker-b"),
                 extra_env: dict[str, str] | None = None, instagram_extra: dict[str, object] | None = None,
                 youtube_extra: dict[str, object] | None = None, tiktok_extra: dict[str, object] | None = None,
                 tracked: list[str] | None = None) -> Iterator[CeleryStack]:
    """The stack over the servers given, ``tracked`` (default: every profile of ``dataset``) tracked and the
    networks' pools made; yields once every worker is ready and the DAG is parsed (still paused)."""
    port, logs = free_port(), tmp_path / "logs"
    with warehouse.begin() as conn:
        track_entities(conn, "instagram", tracked_ids(dataset) if tracked is None else tracked, clock())
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "socialsync_dags.py").symlink_to(ROOT / "dags" / "socialsync_dags.py")
    connections = sandbox_connections(sandbox_url, warehouse_url, youtube_extra, tiktok_extra,
                                      **(instagram_extra or {}))
    env = api_env(airflow_env(tmp_path / "airflow", dags, connections), port)
    env = {**celery_env(env, metadata_url, broker_url), **(extra_env or {})}
    prepare_metadata(env, [])  # the pool is made through REST below: one Airflow CLI start less
    commands = {**{name: worker_command(name) for name in workers}, **component_commands(port)}
    process_env = {name: {HOSTNAME_VARIABLE: name} for name in workers}
    with local_airflow(env, port, logs, extra={name: commands[name] for name in workers},
                       process_env=process_env) as running:
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        token = api.post("/auth/token", json={"username": "admin", "password": "admin"}).json()["access_token"]
        api.headers["Authorization"] = f"Bearer {token}"
        stack = CeleryStack(port, logs, env, commands, process_env, running, api, dataset, workers)
        for network in NETWORKS:  # each network's extract pool, as airflow_settings.yaml makes them
            pool = api.post("/api/v2/pools", json={"name": get_network(network).pool_name, "slots": 4,
                                                   "description": f"{network} API work"})
            assert pool.status_code == 201, pool.text
        # Each worker consumes the queue before a run exists; each takes one task at a time (concurrency 1,
        # Airflow's prefetch multiplier 1), so tasks queued together go to both.
        for name in workers:
            wait(f"{name} to be ready", lambda name=name: stack.ready(name), logs, timeout=120)
        for network in NETWORKS:
            wait(f"{network}'s DAG to be parsed", lambda network=network: api.get(
                f"/api/v2/dags/{get_network(network).dag_id}").status_code == 200, logs)
        try:
            yield stack
        finally:
            api.close()

