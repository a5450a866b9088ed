from __future__ import annotations

import pytest

from socialsync.local.settings import (
    HOSTNAME_VARIABLE,
    MAX_SLOTS,
    MIN_SLOTS,
    Machine,
    process_hostname,
    sized_env,
    task_slots,
    this_machine,
)

GIB = 2**30


def test_two_task_slots_a_cpu_when_memory_is_plenty() -> None:
    assert task_slots(Machine(cpus=2, memory_bytes=24 * GIB)) == 4
    assert task_slots(Machine(cpus=8, memory_bytes=64 * GIB)) == 16


def test_memory_caps_the_slots_after_what_the_components_hold() -> None:
    # 4 GiB: 2 GiB for the components, 0.5 GiB a slot.
    assert task_slots(Machine(cpus=8, memory_bytes=4 * GIB)) == 4
    assert task_slots(Machine(cpus=4, memory_bytes=1 * GIB)) == MIN_SLOTS


def test_slots_stay_within_bounds() -> None:
    assert task_slots(Machine(cpus=1, memory_bytes=0)) == MIN_SLOTS  # memory unknown: CPUs alone
    assert task_slots(Machine(cpus=128, memory_bytes=1024 * GIB)) == MAX_SLOTS


def test_the_env_a_two_core_machine_gets() -> None:
    assert sized_env(Machine(cpus=2, memory_bytes=24 * GIB)) == {
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__SOCIALSYNC__TARGET_BATCHES": "8",
    }
    assert sized_env(Machine(cpus=16, memory_bytes=64 * GIB))["AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES"] == "2"


def test_this_machine_is_read_deterministically() -> None:
    machine = this_machine()
    assert machine.cpus >= 1 and machine.memory_bytes >= 0
    assert this_machine() == machine and sized_env(machine) == sized_env(this_machine())


def test_a_worker_names_itself_by_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOSTNAME_VARIABLE, "worker-a")  # unset, Airflow's own callable answers (the e2e runs it)
    assert process_hostname() == "worker-a"
