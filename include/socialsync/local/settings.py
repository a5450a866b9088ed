"""Reads ``airflow_settings.yaml`` (Astronomer format) into Airflow's own env-var connections."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Pool:
    name: str
    slots: int
    description: str


def load_settings(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    airflow = data.get("airflow") or {}
    if not isinstance(airflow, dict):
        raise ValueError(f"{path}: 'airflow' must be a mapping")
    return airflow


def connection_uris(settings: dict[str, Any], root: Path) -> dict[str, str]:
    """``AIRFLOW_CONN_<ID>`` values (Airflow's JSON form); relative SQLite paths resolve from ``root``."""
    env: dict[str, str] = {}
    for conn in settings.get("connections") or []:
        conn_type = conn["conn_type"]
        host = conn.get("conn_host")
        if conn_type == "sqlite" and host and not os.path.isabs(host):
            host = str((root / host).resolve())
        body = {"conn_type": conn_type, "host": host, "login": conn.get("conn_login"),
                "password": conn.get("conn_password"), "schema": conn.get("conn_schema"),
                "port": conn.get("conn_port"), "extra": conn.get("conn_extra") or None}
        env[f"AIRFLOW_CONN_{conn['conn_id'].upper()}"] = json.dumps({k: v for k, v in body.items() if v})
    return env


def pools(settings: dict[str, Any]) -> list[Pool]:
    return [Pool(p["pool_name"], int(p["pool_slot"]), p.get("pool_description", ""))
            for p in settings.get("pools") or []]


def airflow_env(airflow_home: Path, dags_folder: Path, connections: dict[str, str]) -> dict[str, str]:
    """The environment of a self-contained local Airflow: SQLite metadata, no examples."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__"))}
    env.update(connections)
    env.update({
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__SOCIALSYNC__ENRICH_POLL_SECONDS": "2",
        "NO_PROXY": "*",
    })
    return env
