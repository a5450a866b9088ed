"""``make airflow``: Airflow 3's UI and scheduler on 127.0.0.1:8080 against the sandbox.

Starts the sandbox and Airflow's api-server, scheduler, dag-processor and triggerer as separate
processes bound to loopback (``airflow standalone`` serves logs on every interface), with the
connections and pools of ``airflow_settings.yaml``; Ctrl-C stops them all.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from socialsync.local.settings import airflow_env, connection_uris, load_settings, pools
from socialsync.sandbox.dataset import Dataset, DatasetSpec
from socialsync.sandbox.server import DEFAULT_PORT
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.jobs import track_entities

ROOT = Path(__file__).resolve().parents[3]


def local_env(workdir: Path, api_port: int) -> dict[str, str]:
    settings = load_settings(ROOT / "airflow_settings.yaml")
    env = airflow_env(workdir / "airflow", ROOT / "dags", connection_uris(settings, ROOT))
    env.update({
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": "0",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__SOCIALSYNC__ENRICH_POLL_SECONDS": "5",
    })
    return env


def prepare(env: dict[str, str], profiles: int) -> None:
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    airflow = [sys.executable, "-m", "airflow"]
    subprocess.run([*airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    for pool in pools(load_settings(ROOT / "airflow_settings.yaml")):
        subprocess.run([*airflow, "pools", "set", pool.name, str(pool.slots), pool.description], env=env,
                       check=True, stdout=subprocess.DEVNULL)
    warehouse = ROOT / ".demo" / "warehouse.db"
    warehouse.parent.mkdir(exist_ok=True)
    engine = warehouse_engine(f"sqlite:///{warehouse}")
    with engine.begin() as conn:
        track_entities(conn, "instagram", Dataset(DatasetSpec(profiles=profiles)).profile_ids(), datetime.now(UTC))
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--profiles", type=int, default=DatasetSpec.profiles)
    args = parser.parse_args(argv)
    env = local_env(ROOT / ".demo", args.port)
    prepare(env, args.profiles)
    airflow = [sys.executable, "-m", "airflow"]
    commands = {
        "sandbox": [sys.executable, "-m", "socialsync.sandbox", "--port", str(DEFAULT_PORT),
                    "--profiles", str(args.profiles), "--job-seconds", "5"],
        "api-server": [*airflow, "api-server", "--host", "127.0.0.1", "--port", str(args.port)],
        "scheduler": [*airflow, "scheduler", "--skip-serve-logs"],
        "dag-processor": [*airflow, "dag-processor"],
        "triggerer": [*airflow, "triggerer", "--skip-serve-logs"],
    }
    signal.signal(signal.SIGTERM, _interrupt)  # stop the children on `kill` as on Ctrl-C
    logs = ROOT / ".demo" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    running = {name: subprocess.Popen(cmd, env=env, stdout=(logs / f"{name}.log").open("w"),
                                      stderr=subprocess.STDOUT, start_new_session=True)
               for name, cmd in commands.items()}
    print(f"Airflow UI: http://127.0.0.1:{args.port}  (DAG instagram_sync starts paused: unpause or trigger it)")
    print(f"sandbox: http://127.0.0.1:{DEFAULT_PORT}; logs: {logs}; Ctrl-C stops everything", flush=True)
    try:
        while all(p.poll() is None for p in running.values()):
            time.sleep(1)
        dead = [name for name, p in running.items() if p.poll() is not None]
        print(f"stopped: {', '.join(dead)} exited; see {logs}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for process in running.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in running.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    raise SystemExit(main())
