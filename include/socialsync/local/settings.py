"""Reads ``airflow_settings.yaml`` (Astronomer format) into Airflow's own env-var connections; sizes a local
Airflow for the machine it runs on."""

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


# How soon Airflow recovers from a lost component, instead of its defaults' 5 to 10 minutes. The same values
# are in docker-compose.yaml (tests/unit/test_compose.py checks it); an operator tunes them together.
RECOVERY = {
    # A task whose supervisor stopped heartbeating (its worker was killed or lost its host) is failed, and
    # so retried, after 45 s (default 300; a live supervisor heartbeats every 5 s), looked for every 5 s.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "45",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    # A task queued but never started (its Celery message lost with a broker restart) is queued again after
    # 90 s (default 600), looked for every 15 s (default 120). Only safe when the executor never queues
    # more than its workers run at once: a Celery deployment sets [core] parallelism to its workers' slots.
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
    # A restarted scheduler adopts the task instances of the one it replaces once that one's heartbeat is
    # 30 s old: looked for every 30 s (default 300).
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "30",
}


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
        **RECOVERY,
    })
    return env


# Sizing a local Airflow (``make airflow``) for its machine instead of Airflow's defaults (32 task slots,
# 16 a DAG, whatever the machine). A task slot is a supervisor and a task process (two Airflow interpreters,
# ~0.5 GiB together); tasks mostly wait on HTTP, so two slots a CPU keep the CPUs busy without thrashing.
SLOTS_PER_CPU = 2
MEMORY_PER_SLOT = 512 * 2**20
# What the api-server, scheduler, dag-processor, triggerer and the sandbox hold before any task runs.
MEMORY_RESERVED = 2 * 2**30
MIN_SLOTS, MAX_SLOTS = 2, 32  # at least plan + one batch task; never more than Airflow's own default


@dataclass(frozen=True)
class Machine:
    cpus: int
    memory_bytes: int


def this_machine() -> Machine:
    """The CPUs this process may run on (its affinity, not the host's count) and the physical memory."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        memory = 0  # unknown: the CPUs decide alone
    return Machine(cpus=max(1, cpus), memory_bytes=max(0, memory))


def task_slots(machine: Machine) -> int:
    """Tasks that may run at once: two a CPU, as many as the memory left after the components holds."""
    by_cpu = SLOTS_PER_CPU * machine.cpus
    if machine.memory_bytes:
        by_cpu = min(by_cpu, (machine.memory_bytes - MEMORY_RESERVED) // MEMORY_PER_SLOT)
    return int(max(MIN_SLOTS, min(MAX_SLOTS, by_cpu)))


def sized_env(machine: Machine) -> dict[str, str]:
    """The ``AIRFLOW__*`` settings of a local Airflow sized for ``machine`` (deterministic in it)."""
    slots = task_slots(machine)
    return {
        "AIRFLOW__CORE__PARALLELISM": str(slots),  # the LocalExecutor's worker processes too
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(slots),
        # One DAG file: a second parser is only worth a CPU to spare.
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": str(max(1, min(2, machine.cpus // 2))),
        # A run's batches (when its conf names no batch_size): twice the slots, so that each slot runs a
        # couple of batches' chains, not dozens of small ones each paying seven task starts.
        "AIRFLOW__SOCIALSYNC__TARGET_BATCHES": str(2 * slots),
    }


# Several workers on one machine (the Celery e2e) each name themselves through this variable.
HOSTNAME_VARIABLE = "SOCIALSYNC_HOSTNAME"


def process_hostname() -> str:
    """``[core] hostname_callable`` naming a worker by ``$SOCIALSYNC_HOSTNAME``, else by the host's FQDN.

    A task instance's ``hostname`` tells which worker ran it; two workers on one host would otherwise both
    report the host's name.
    """
    name = os.environ.get(HOSTNAME_VARIABLE)
    if name:
        return name
    from airflow.utils.net import getfqdn  # Airflow's default callable

    return str(getfqdn())
