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
from airflow.sdk.definitions.taskgroup import MappedTaskGroup
from airflow.sdk.exceptions import ParamValidationError

from socialsync.airflow import tasks
from socialsync.airflow.sensors import JobStatusSensor
from socialsync.extract.request import MAX_CONF_IDS
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
    assert set(dagbag.dag_ids) == {"instagram_sync", "instagram_rebuild", "youtube_sync", "youtube_rebuild",
                                   "tiktok_sync", "tiktok_rebuild"}
    assert {spec.dag_id for spec in REGISTRY.values()} == {"instagram_sync", "youtube_sync", "tiktok_sync"}


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


def test_each_batch_runs_its_own_chain_in_a_mapped_group(dagbag: DagBag) -> None:
    dag = dagbag.dags["instagram_sync"]
    assert dag.timetable.expression in ("@daily", "0 0 * * *")
    assert dag.catchup is False
    group = "batch."
    order = ["extract_posts", "extract_comments", "normalize", "submit_enrichment"]
    assert "plan" in dag.get_task(group + order[0]).upstream_task_ids
    for upstream, downstream in itertools.pairwise(order):
        assert group + upstream in dag.get_task(group + downstream).upstream_task_ids
    for task_id in ("wait_ml", "wait_vision"):
        assert group + "submit_enrichment" in dag.get_task(group + task_id).upstream_task_ids
        assert group + task_id in dag.get_task(group + "load").upstream_task_ids
    # A mapped task group: each batch's tasks wait for that batch only, not for every batch.
    mapped_group = dag.task_group_dict["batch"]
    assert isinstance(mapped_group, MappedTaskGroup)
    members = {t.task_id for t in mapped_group.iter_tasks()}
    assert members == {group + t for t in [*order, "wait_ml", "wait_vision", "load"]}
    # What must run although an upstream step of the batch failed.
    for task_id in ("normalize", "load"):
        assert dag.get_task(group + task_id).trigger_rule == "all_done"
    summarize = dag.get_task("summarize")
    assert summarize.trigger_rule == "all_done" and group + "load" in summarize.upstream_task_ids
    assert all(t.execution_timeout is not None for t in dag.tasks if not t.task_id.startswith(group + "wait_"))
    assert all(t.retries >= 1 for t in dag.tasks if t.task_id != "summarize")
    assert dag.get_task(group + "extract_posts").pool == "instagram_api"
    assert tasks.MAX_BATCHES < MAX_MAP_LENGTH


def test_every_dag_and_task_says_what_it_does_and_mapped_tasks_name_their_batch(dagbag: DagBag) -> None:
    for dag in dagbag.dags.values():
        assert dag.description and dag.doc_md, dag.dag_id
        for task in dag.tasks:
            assert task.doc_md, f"{dag.dag_id}.{task.task_id} has no doc"
            if task.task_id.startswith("batch.") or task.task_id == "rebuild":
                # The UI shows "batch 3: 100 profile(s)" (set by the task), not a bare map index.
                assert task.map_index_template and "batch" in task.map_index_template, task.task_id
    load = dagbag.dags["youtube_sync"].get_task("batch.load")
    assert [outlet.name for outlet in load.outlets] == ["socialsync_youtube_tables"]  # the Asset alias


def test_enrichment_waits_are_deferrable_http_sensors(dagbag: DagBag) -> None:
    dag = dagbag.dags["instagram_sync"]
    for task_id, conn_id in (("wait_ml", "ml_api"), ("wait_vision", "vision_api")):
        sensor = dag.get_task(f"batch.{task_id}")
        assert isinstance(sensor, JobStatusSensor) and isinstance(sensor, HttpSensor)
        assert sensor.deferrable is True
        assert sensor.http_conn_id == conn_id


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"scope": "everything"}, "is not one of"),
        ({"entity_ids": "178400000000000000"}, "is not of type"),
        ({"entity_ids": ["ok", "not an id!"]}, "does not match"),
        ({"last_synced_at": "last tuesday"}, "does not match"),
        ({"last_synced_at": "2026-13-45T99:99Z"}, "does not match"),
        ({"last_synced_at": "2026-10-01T24:00:00Z"}, "does not match"),
        ({"last_synced_at": "2026-10-01T00:00:00"}, "does not match"),
        ({"entity_ids": [".."]}, "does not match"),
        ({"entity_ids": [str(178400000000000000 + i) for i in range(MAX_CONF_IDS + 1)]}, "is too long"),
        ({"since_id": "../x"}, "does not match"),
        ({"max_failed_percent": 101}, "is greater than the maximum"),
        ({"full_refresh": "yes"}, "is not of type"),
        ({"entity_ids": [{"id": "@brand.one"}]}, "'conn_id' is a required property"),
        ({"entity_ids": [{"id": "@brand.one", "conn_id": "has space"}]}, "'has space' does not match"),
        ({"entity_ids": [{"id": "@brand one", "conn_id": "ig_brand"}]}, "'@brand one' does not match"),
        ({"entity_ids": [{"id": "@brand.one", "conn_id": "ig_brand", "token": "x"}]}, "'token' was unexpected"),
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
    params.update({"entity_ids": [str(178400000000000000 + i) for i in range(MAX_CONF_IDS)],
                   "last_synced_at": "2026-12-31 23:59:59.5-05:30", "max_failed_percent": 25.5})
    assert params.validate()["max_failed_percent"] == 25.5
    # Owned accounts by id, public ones by @username, each possibly with a connection (token) of its own.
    params.update({"entity_ids": ["178400000000000001", "@brand.one", {"id": "@creator_2", "conn_id": "ig_shop"},
                                  {"id": "178400000000000002", "conn_id": "ig_shop.b-2"}]})
    assert len(params.validate()["entity_ids"]) == 4
