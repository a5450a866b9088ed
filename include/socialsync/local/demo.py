"""``make demo``: a real sync of every registered network through Airflow 3 against the sandbox, into SQLite.

Starts the sandbox on a free port of 127.0.0.1, prepares a local Airflow (SQLite metadata, connections
and pools from ``airflow_settings.yaml``, pointed at that port), tracks the sandbox's profiles of each
network, runs ``airflow dags test <network>_sync`` for each and prints what landed in each table next
to the sandbox's ground truth, one table per network. It works in ``.demo/run`` only: a ``make
airflow`` running at the same time (sandbox on :8090, warehouse in ``.demo``) is left alone.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import ColumnElement, func, select

from socialsync.local.settings import airflow_env, connection_uris, load_settings, pools
from socialsync.networks import REGISTRY
from socialsync.sandbox.catalog import sandbox_network
from socialsync.sandbox.dataset import Dataset, DatasetSpec
from socialsync.sandbox.server import DEFAULT_PORT, SandboxConfig, SandboxServer
from socialsync.storage import schema
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.planning import track_entities

ROOT = Path(__file__).resolve().parents[3]


def warehouse_counts(url: str, network: str) -> dict[str, int]:
    engine = warehouse_engine(url)
    with engine.connect() as conn:
        def count(table: schema.Table, *where: ColumnElement[bool]) -> int:
            return int(conn.scalar(select(func.count()).select_from(table).where(table.c.network == network,
                                                                                 *where)) or 0)

        tables = ("profiles", "posts", "media", "comments", "follows", "likes")
        out = {name: count(getattr(schema, name)) for name in tables}
        out["enrichments (ml)"] = count(schema.enrichments, schema.enrichments.c.service == "ml")
        out["enrichments (vision)"] = count(schema.enrichments, schema.enrichments.c.service == "vision")
        out["sync_jobs succeeded"] = count(schema.sync_jobs, schema.sync_jobs.c.status == "succeeded")
        out["sync_jobs other"] = count(schema.sync_jobs, schema.sync_jobs.c.status != "succeeded")
        out["raw_pages"] = count(schema.raw_pages)
        out["metrics"] = count(schema.metrics)
        raw = select(schema.raw_pages.c.id).where(schema.raw_pages.c.network == network)
        out["quarantine"] = int(conn.scalar(select(func.count()).select_from(schema.quarantine)
                                            .where(schema.quarantine.c.raw_page_id.in_(raw))) or 0)
    engine.dispose()
    return out


def _airflow(env: dict[str, str], *args: str, quiet: bool = True) -> None:
    command = [sys.executable, "-m", "airflow", *args]
    result = subprocess.run(command, env=env, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None)
    if result.returncode != 0:
        if quiet:
            sys.stdout.write(result.stdout[-6000:])
        raise SystemExit(f"`airflow {' '.join(args)}` failed with exit code {result.returncode}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=60)
    parser.add_argument("--latency-ms", type=float, default=5.0, help="the sandbox's answer delay")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".demo" / "run")
    parser.add_argument("--verbose", action="store_true", help="show the Airflow task logs")
    args = parser.parse_args(argv)

    workdir: Path = args.workdir.resolve()
    home = workdir / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    warehouse_file = workdir / "warehouse.db"
    for stale in workdir.glob("warehouse.db*"):
        stale.unlink()  # every demo starts from an empty warehouse

    settings = load_settings(ROOT / "airflow_settings.yaml")
    connections = connection_uris(settings, ROOT)
    connections["AIRFLOW_CONN_SOCIALSYNC_DB"] = (
        f'{{"conn_type": "sqlite", "host": "{warehouse_file}"}}')
    env = airflow_env(home, ROOT / "dags", connections)

    spec = DatasetSpec(profiles=args.profiles)
    dataset = Dataset(spec)
    started = time.monotonic()
    print(f"1/4 preparing Airflow metadata in {home} ...", flush=True)
    _airflow(env, "db", "migrate")
    for pool in pools(settings):
        _airflow(env, "pools", "set", pool.name, str(pool.slots), pool.description)

    url = f"sqlite:///{warehouse_file}"
    networks = sorted(REGISTRY)
    engine = warehouse_engine(url)
    with engine.begin() as conn:
        tracked = {name: track_entities(conn, name, sandbox_network(name).entity_ids(dataset), _now())
                   for name in networks}
    engine.dispose()
    print(f"2/4 tracking {', '.join(f'{n} {name}' for name, n in tracked.items())} profiles in {warehouse_file}",
          flush=True)

    config = SandboxConfig(spec=spec, job_seconds=2.0, latency_ms=args.latency_ms)
    with SandboxServer(config, port=0) as sandbox:  # a free port: never the one a running `make airflow` holds
        default = f"127.0.0.1:{DEFAULT_PORT}"
        env = {key: value.replace(default, sandbox.url.removeprefix("http://")) if key.startswith("AIRFLOW_CONN_")
               else value for key, value in env.items()}
        for name in networks:
            print(f"3/4 sandbox on {sandbox.url}; running `airflow dags test {REGISTRY[name].dag_id}` ...",
                  flush=True)
            _airflow(env, "dags", "test", REGISTRY[name].dag_id, quiet=not args.verbose)
        requests = dict(sandbox.counters)

    print(f"4/4 done in {time.monotonic() - started:.0f}s; sandbox requests: {requests}")
    ok = True
    for name in networks:
        expected = sandbox_network(name).expected_counts(dataset)
        got = warehouse_counts(url, name)
        print(f"\n{name}\n{'table':<24}{'loaded':>10}{'sandbox truth':>16}")
        for table, value in got.items():
            truth = expected.get(table, 0 if table in ("sync_jobs other", "quarantine") else None)
            mark = "" if truth is None else ("  ok" if truth == value else "  MISMATCH")
            ok &= truth is None or truth == value
            print(f"{table:<24}{value:>10}{'' if truth is None else truth:>16}{mark}")
    print(f"\nwarehouse: {warehouse_file}  (try: sqlite3 {warehouse_file} 'select * from sync_jobs')")
    return 0 if ok else 1


def _now() -> datetime:
    return datetime.now(UTC)


if __name__ == "__main__":
    raise SystemExit(main())
