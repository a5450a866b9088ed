"""``make airflow``: Airflow 3's UI and scheduler on 127.0.0.1:8080 against the sandbox.

Starts the sandbox and Airflow's api-server, scheduler, dag-processor and triggerer as separate
processes bound to loopback (``airflow standalone`` serves logs on every interface), with the
connections and pools of ``airflow_settings.yaml`` and task slots sized for the machine
(``settings.sized_env``); Ctrl-C stops them all.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

from socialsync.local.settings import Pool, airflow_env, connection_uris, load_settings, pools, sized_env, this_machine
from socialsync.sandbox.dataset import Dataset, DatasetSpec
from socialsync.sandbox.instagram_dataset import InstagramDataset
from socialsync.sandbox.server import DEFAULT_PORT
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.planning import track_entities

ROOT = Path(__file__).resolve().parents[3]
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def api_env(env: dict[str, str], api_port: int) -> dict[str, str]:
    """Airflow's components on loopback only, talking to the api-server on ``api_port``."""
    return {
        **env,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        # Where a run's summary task writes the run's note (every local user is an admin).
        "AIRFLOW_CONN_AIRFLOW_API": json.dumps({"conn_type": "http", "host": f"http://127.0.0.1:{api_port}",
                                                "login": "admin", "password": "admin"}),
    }


def prepare_metadata(env: dict[str, str], pool_list: list[Pool]) -> None:
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    airflow = [sys.executable, "-m", "airflow"]
    subprocess.run([*airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    for pool in pool_list:
        subprocess.run([*airflow, "pools", "set", pool.name, str(pool.slots), pool.description], env=env,
                       check=True, stdout=subprocess.DEVNULL)


@contextmanager
def local_airflow(env: dict[str, str], api_port: int, logs: Path, extra: dict[str, list[str]] | None = None,
                  process_env: dict[str, dict[str, str]] | None = None,
                  ) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Airflow's four components (and ``extra`` processes) until the block ends; then all stopped.

    Each process logs to ``logs/<name>.log``; ``process_env`` adds variables to the named processes' ``env``
    (e.g. a name of its own for each of several Celery workers).
    """
    commands = {**(extra or {}), **component_commands(api_port)}
    logs.mkdir(parents=True, exist_ok=True)
    running: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, cmd in commands.items():
            (logs / f"{name}.log").write_bytes(b"")
            running[name] = start_component(name, cmd, {**env, **(process_env or {}).get(name, {})}, logs)
        _wait_for_api(api_port, running)
        yield running
    finally:
        for process in running.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in running.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def component_commands(api_port: int) -> dict[str, list[str]]:
    """The command line of each of Airflow's four components, on loopback."""
    airflow = [sys.executable, "-m", "airflow"]
    return {
        "api-server": [*airflow, "api-server", "--host", "127.0.0.1", "--port", str(api_port)],
        "scheduler": [*airflow, "scheduler", "--skip-serve-logs"],
        "dag-processor": [*airflow, "dag-processor"],
        "triggerer": [*airflow, "triggerer", "--skip-serve-logs"],
    }


def start_component(name: str, cmd: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    """One process in a session of its own (a signal to its group reaches its children), appending to
    ``logs/<name>.log`` (a restarted component continues its log)."""
    with (logs / f"{name}.log").open("ab") as log:
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for_api(port: int, running: dict[str, subprocess.Popen[bytes]], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [name for name, p in running.items() if p.poll() is not None]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} exited while starting")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/version", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the api-server did not answer on port {port} within {timeout:.0f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--profiles", type=int, default=DatasetSpec.profiles)
    args = parser.parse_args(argv)
    settings = load_settings(ROOT / "airflow_settings.yaml")
    workdir = ROOT / ".demo"
    env = api_env(airflow_env(workdir / "airflow", ROOT / "dags", connection_uris(settings, ROOT)), args.port)
    env["AIRFLOW__SOCIALSYNC__ENRICH_POLL_SECONDS"] = "5"
    machine = this_machine()
    sizing = sized_env(machine)
    env.update(sizing)
    prepare_metadata(env, pools(settings))
    engine = warehouse_engine(f"sqlite:///{workdir / 'warehouse.db'}")
    with engine.begin() as conn:
        track_entities(conn, "instagram", InstagramDataset(Dataset(DatasetSpec(profiles=args.profiles))).tracked_ids(),
                       datetime.now(UTC))
    engine.dispose()
    sandbox = [sys.executable, "-m", "socialsync.sandbox", "--port", str(DEFAULT_PORT),
               "--profiles", str(args.profiles), "--job-seconds", "5"]
    signal.signal(signal.SIGTERM, _interrupt)  # stop the children on `kill` as on Ctrl-C
    logs = workdir / "logs"
    with local_airflow(env, args.port, logs, extra={"sandbox": sandbox}) as running:
        print(f"Airflow UI: http://127.0.0.1:{args.port}  (DAG instagram_sync starts paused: unpause or trigger it)")
        print(f"sync jobs page: http://127.0.0.1:{args.port}/plugin/socialsync-jobs; "
              f"sync API: http://127.0.0.1:{args.port}/socialsync/docs")
        print(f"sized for {machine.cpus} CPU(s), {machine.memory_bytes / 2**30:.1f} GiB: "
              + ", ".join(f"{k.removeprefix('AIRFLOW__').lower().replace('__', '.')}={v}" for k, v in sizing.items()))
        print(f"sandbox: http://127.0.0.1:{DEFAULT_PORT}; logs: {logs}; Ctrl-C stops everything", flush=True)
        try:
            while all(p.poll() is None for p in running.values()):
                time.sleep(1)
        except KeyboardInterrupt:
            return 0
        dead = [name for name, p in running.items() if p.poll() is not None]
        print(f"stopped: {', '.join(dead)} exited; see {logs}", file=sys.stderr)
        return 1


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    raise SystemExit(main())
