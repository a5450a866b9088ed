"""The preload the scheduler (through the plugin) and a Celery worker import for their task processes."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

# In a fresh interpreter: what parsing the DAG file and running a task's code still imports after the
# preload, and what the preload left running (a fork would inherit a thread or a connection).
PROBE = """
import json, sys, threading, runpy, gc
from airflow.sdk.listener import get_listener_manager
get_listener_manager()  # Airflow's plugins (the package's entry point), as the scheduler loads them before it forks
before = set(sys.modules)
runpy.run_path(sys.argv[1])
from socialsync.networks import get_network
for name in ("instagram", "youtube", "tiktok"):
    get_network(name)
new = sorted(m for m in set(sys.modules) - before)
print(json.dumps({"new": new, "threads": threading.active_count(),
                  "sockets": sum(1 for o in gc.get_objects() if type(o).__name__ == "socket")}))
"""


def test_the_plugin_leaves_the_dag_file_and_the_tasks_nothing_to_import(tmp_path):
    done = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "dags" / "socialsync_dags.py")],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "AIRFLOW_HOME": str(tmp_path),
                               "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    # socialsync.dags is the DAG file's own body (it builds the DAGs), which the one-line file imports.
    heavy = [m for m in found["new"] if m.split(".")[0] in {"socialsync", "sqlalchemy", "httpx", "pydantic",
                                                            "fastapi", "psycopg", "alembic", "orjson"}
             and m != "socialsync.dags"]
    assert heavy == [], heavy
    assert len(found["new"]) < 20, found["new"]  # a few of Airflow's timetable modules at most
    assert found["threads"] == 1 and found["sockets"] == 0, found


def test_the_celery_config_is_the_providers_plus_the_preload():
    from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

    from socialsync.airflow.celery_config import CELERY_CONFIG

    assert {k: v for k, v in CELERY_CONFIG.items() if k != "imports"} == DEFAULT_CELERY_CONFIG
    assert "socialsync.airflow.preload" in CELERY_CONFIG["imports"]
