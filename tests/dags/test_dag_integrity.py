"""The DAG folder imports cleanly, fast, without I/O, and has the shape the design asks for."""

from __future__ import annotations

import copy
import itertools
import socket
import time

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.providers.http.sensors.http import HttpSensor
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import ParamValidationError

from socialsync.airflow import tasks
from socialsync.airflow.sensors import JobStatusSensor
from socialsync.networks import REGISTRY
from tests.conftest import ROOT

MAX_MAP_LENGTH = 1024  # Airflow's core.max_map_length default


def _dagbag() -> DagBag:
    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return _dagbag()


def test_dags_import_without_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"instagram_sync", "instagram_rebuild"}
    assert {spec.dag_id for spec in REGISTRY.values()} == {"instagram_sync"}


def test_parsing_does_no_io_and_takes_under_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    _dagbag()  # warm: imports of airflow and socialsync are not the DAG file's parse cost

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the DAG file did I/O at parse time")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(BaseHook, "get_connection", refuse)
    started = time.perf_counter()
    bag = _dagbag()
    elapsed = time.perf_counter() - started
    assert bag.import_errors == {}
    assert elapsed < 1.0, f"parsing took {elapsed:.2f}s"


def test_the_flow_is_mapped_over_batches(dagbag: DagBag) -> None:
    dag = dagbag.dags["instagram_sync"]
    assert dag.timetable.expression in ("@daily", "0 0 * * *")
    assert dag.catchup is False
    order = ["plan", "extract_posts", "extract_comments", "normalize", "submit_enrichment"]
    for upstream, downstream in itertools.pairwise(order):
        assert upstream in dag.get_task(downstream).upstream_task_ids
    for task_id in ("wait_ml", "wait_vision"):
        assert "submit_enrichment" in dag.get_task(task_id).upstream_task_ids
        assert task_id in dag.get_task("load").upstream_task_ids
    mapped = {t.task_id for t in dag.tasks if t.is_mapped}
    assert mapped == set(order[1:]) | {"wait_ml", "wait_vision", "load"}
    assert all(t.retries >= 1 for t in dag.tasks)
    assert dag.get_task("extract_posts").pool == "instagram_api"
    assert tasks.MAX_BATCHES < MAX_MAP_LENGTH


def test_enrichment_waits_are_deferrable_http_sensors(dagbag: DagBag) -> None:
    dag = dagbag.dags["instagram_sync"]
    for task_id, conn_id in (("wait_ml", "ml_api"), ("wait_vision", "vision_api")):
        sensor = dag.get_task(task_id)
        assert issubclass(sensor.operator_class, JobStatusSensor)
        assert issubclass(sensor.operator_class, HttpSensor)
        assert sensor.partial_kwargs["deferrable"] is True
        assert sensor.partial_kwargs["http_conn_id"] == conn_id


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"scope": "everything"}, "is not one of"),
        ({"entity_ids": "178400000000000000"}, "is not of type"),
        ({"entity_ids": ["ok", "not an id!"]}, "does not match"),
        ({"last_synced_at": "last tuesday"}, "does not match"),
        ({"full_refresh": "yes"}, "is not of type"),
    ],
)
def test_a_bad_conf_is_refused_with_the_schema_message(dagbag: DagBag, conf: dict, message: str) -> None:
    params = copy.deepcopy(dagbag.dags["instagram_sync"].params)
    with pytest.raises(ParamValidationError, match=message):
        params.update(conf)
        params.validate()


def test_a_good_conf_validates(dagbag: DagBag) -> None:
    params = copy.deepcopy(dagbag.dags["instagram_sync"].params)
    params.update({"entity_ids": ["178400000000000001"], "scope": "posts",
                   "last_synced_at": "2026-10-01T00:00:00+00:00", "full_refresh": True})
    assert params.validate()["scope"] == "posts"
