"""Suite-wide setup: Airflow (where a layer imports it) gets a throwaway home, never ~/airflow."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Before anything imports airflow: its config, logs and metadata stay in a temporary home.
_home = Path(tempfile.mkdtemp(prefix="socialsync-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_home)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_home / 'airflow.db'}"


def pytest_sessionfinish() -> None:
    shutil.rmtree(_home, ignore_errors=True)
