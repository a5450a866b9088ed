"""socialsync installed as a team installs it: its wheel into a fresh environment that already runs Airflow.

At both ends of the supported range (Airflow 3.2 and 3.3), Airflow is installed first, from a constraints
file, and the wheel (``make dist``) after it. The wheel must change no package Airflow brought; Airflow must
then find it as a provider and a plugin, with one DAG file (the README's) and no ``plugins/`` folder: the
providers list, every network's DAGs, an ``instagram_sync`` run that loads the sandbox's truth through
connections of socialsync's own types, and the sync API answering on the api-server.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from socialsync.local.airflow import api_env
from socialsync.local.settings import airflow_env
from socialsync.sandbox.dataset import Dataset
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.planning import track_entities
from tests.conftest import ROOT
from tests.e2e.stack import free_port
from tests.integration.conftest import SMALL
from tests.integration.sync_helpers import clock, tracked_ids
from tests.integration.truth import assert_warehouse_matches
from tests.sandbox_connections import APP_USER, warehouse_connection

pytestmark = pytest.mark.timeout(900)

ENDS = {"3.2.2": ROOT / "tests" / "data" / "airflow-3.2.2-constraints.txt", "3.3.2": ROOT / "constraints.txt"}
# The README's DAG file, word for word: the only file a deployment adds.
DAG_FILE = "# Airflow DAGs of socialsync\nfrom socialsync.dags import *  # noqa: F403\n"
DAGS = {f"{network}_{kind}" for network in ("instagram", "youtube", "tiktok") for kind in ("sync", "rebuild")}
SPEC = dataclasses.replace(SMALL, profiles=4, posts_median=6, comments_median=3)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``make dist``'s wheel, built from this tree."""
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
          "-w", str(dist), str(ROOT)])
    (built,) = dist.glob("socialsync-*.whl")
    return built


def _run(command: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> str:
    result = subprocess.run(command, env=env, text=True, capture_output=True, timeout=timeout, cwd=ROOT)
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-6000:]}\n" \
                                   f"{result.stderr[-6000:]}"
    return result.stdout


def _json(output: str) -> list[dict[str, str]]:
    """A CLI's ``-o json`` table (Airflow logs to the same stdout first)."""
    start = next(i for i, line in enumerate(output.splitlines()) if line.startswith("["))
    return list(json.loads("\n".join(output.splitlines()[start:])))


def _freeze(python: Path) -> dict[str, str]:
    listed = _run([str(python), "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"])
    return {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(listed)}


def _connections(sandbox_url: str, warehouse_url: str) -> dict[str, str]:
    """Connections of socialsync's own types, as a team fills in their forms (Instagram, ML, vision)."""
    key = {"X-Api-Key": "sandbox-key"}
    return {
        "AIRFLOW_CONN_INSTAGRAM_API": json.dumps({
            "conn_type": "socialsync_instagram", "host": f"{sandbox_url}/v21.0", "password": "sandbox-token",
            "extra": {"ig_user_id": APP_USER, "page_size": 10, "quota_units": ""}}),
        "AIRFLOW_CONN_ML_API": json.dumps({"conn_type": "socialsync_ml", "host": f"{sandbox_url}/ml/v1",
                                           "extra": key}),
        "AIRFLOW_CONN_VISION_API": json.dumps({"conn_type": "socialsync_vision", "host": f"{sandbox_url}/vision/v1",
                                               "extra": key}),
        "AIRFLOW_CONN_SOCIALSYNC_DB": warehouse_connection(warehouse_url),
    }


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(spec=SPEC, job_seconds=0.5)) as server:
        yield server


@pytest.mark.parametrize("airflow", sorted(ENDS))
def test_the_wheel_installs_into_an_existing_airflow_and_runs_there(airflow: str, wheel: Path, tmp_path: Path,
                                                                     sandbox: SandboxServer) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    python, constraints = venv / "bin" / "python", str(ENDS[airflow])
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c", constraints]
    _run([*pip, f"apache-airflow=={airflow}", "apache-airflow-providers-http"])  # the team's Airflow
    before = _freeze(python)
    _run([*pip, str(wheel)])
    after = _freeze(python)
    changed = {name: (version, after.get(name)) for name, version in before.items() if after.get(name) != version}
    assert not changed, f"installing socialsync changed what Airflow installed: {changed}"
    assert after["socialsync"] == "0.1.0" and after["apache-airflow"] == airflow
    assert "starlette" not in set(after) - set(before)  # the sandbox's server is an extra, not installed here

    home, dags = tmp_path / "airflow", tmp_path / "dags"
    dags.mkdir()
    (dags / "socialsync.py").write_text(DAG_FILE)
    warehouse = f"sqlite:///{tmp_path / 'warehouse.db'}"
    env = airflow_env(home, dags, _connections(sandbox.url, warehouse))
    env = {k: v for k, v in env.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["AIRFLOW__SOCIALSYNC__ENRICH_POLL_SECONDS"] = "0.5"
    assert not (home / "plugins").exists()
    airflow_cli = [str(venv / "bin" / "airflow")]
    _run([*airflow_cli, "db", "migrate"], env)
    providers = _run([*airflow_cli, "providers", "list", "-o", "json"], env)
    assert {"package_name": "socialsync", "version": "0.1.0"}.items() <= next(
        p for p in _json(providers) if p["package_name"] == "socialsync").items()
    hooks = _run([*airflow_cli, "providers", "hooks", "-o", "json"], env)
    assert {"socialsync_instagram", "socialsync_youtube", "socialsync_tiktok", "socialsync_ml",
            "socialsync_vision"} <= {h["connection_type"] for h in _json(hooks)}
    _run([*airflow_cli, "dags", "reserialize"], env)
    listed = {d["dag_id"] for d in _json(_run([*airflow_cli, "dags", "list", "-o", "json"], env))}
    assert listed == DAGS

    dataset: Dataset = sandbox.app.state.dataset
    engine = warehouse_engine(warehouse)
    try:
        with engine.begin() as conn:
            track_entities(conn, "instagram", tracked_ids(dataset), clock())
        _run([*airflow_cli, "dags", "test", "instagram_sync"], env)
        assert_warehouse_matches(engine, dataset, enrich=True)
    finally:
        engine.dispose()
    if airflow == min(ENDS):  # on 3.3 the e2e stacks (tests/e2e) serve it from the entry point too
        _the_sync_api_answers_on_the_api_server(airflow_cli, env)


def _the_sync_api_answers_on_the_api_server(airflow_cli: list[str], env: dict[str, str]) -> None:
    port = free_port()
    env = api_env(env, port)
    log = Path(env["AIRFLOW_HOME"]) / "api-server.log"
    with log.open("wb") as out:
        server = subprocess.Popen([*airflow_cli, "api-server", "--port", str(port)], env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as api:
            deadline = time.monotonic() + 180
            while True:
                assert server.poll() is None, log.read_text(errors="replace")[-4000:]
                try:
                    answer = api.post("/auth/token", json={"username": "admin", "password": "admin"})
                    if answer.status_code in (200, 201):
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
                time.sleep(1)
            token = answer.json()["access_token"]
            networks = api.get("/socialsync/v1/networks", headers={"Authorization": f"Bearer {token}"})
            assert networks.status_code == 200, networks.text
            assert [n["name"] for n in networks.json()] == ["instagram", "youtube", "tiktok"]
            # Without a token it answers as Airflow's own API does under this auth manager's settings (its
            # SIMPLE_AUTH_MANAGER_ALL_ADMINS lets anyone in on 3.2; tests/e2e checks the 401s on 3.3).
            anonymous = api.get("/socialsync/v1/networks").status_code
            assert anonymous == api.get("/api/v2/dags").status_code and anonymous in (200, 401)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
