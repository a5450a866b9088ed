"""JobStatusTrigger: serializes to what the triggerer re-creates it from, and polls to an outcome."""

from __future__ import annotations

import asyncio
import importlib
import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from socialsync.airflow.triggers import JobStatusTrigger
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from tests.integration.conftest import SMALL

KEY = {"X-Api-Key": "sandbox-key"}


def _first_event(trigger: JobStatusTrigger, timeout: float = 30.0) -> dict:
    async def first() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(first(), timeout))


@pytest.fixture
def ml_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SandboxServer, str]]:
    with SandboxServer(SandboxConfig(spec=SMALL, job_seconds=0.6)) as server:
        monkeypatch.setenv("AIRFLOW_CONN_ML_API", json.dumps(
            {"conn_type": "http", "host": f"{server.url}/ml/v1", "extra": KEY}))
        yield server, f"{server.url}/ml/v1"


def _submit(base: str) -> str:
    answer = httpx.post(f"{base}/jobs", headers=KEY, json={"items": [{"id": "post:1", "text": "love it"}]})
    return str(answer.json()["job_id"])


def test_serialize_round_trip() -> None:
    trigger = JobStatusTrigger(http_conn_id="ml_api", job_id="ml-00000007", poll_interval=5.0,
                               deadline=1_900_000_000.0, max_consecutive_errors=3)
    path, kwargs = trigger.serialize()
    module, _, name = path.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert isinstance(rebuilt, JobStatusTrigger)
    assert rebuilt.serialize() == (path, kwargs)
    assert json.loads(json.dumps(kwargs)) == kwargs  # JSON-serializable, no secrets
    assert "sandbox-key" not in json.dumps(kwargs)


def test_waits_through_pending_and_processing_until_done(ml_api: tuple[SandboxServer, str]) -> None:
    server, base = ml_api
    job_id = _submit(base)
    started = time.monotonic()
    event = _first_event(JobStatusTrigger("ml_api", job_id, poll_interval=0.1))
    assert event == {"status": "done", "job_id": job_id, "message": "job done"}
    assert time.monotonic() - started >= 0.5  # it really waited for the job
    assert server.counters["ml:poll"] >= 3  # pending, processing, done


def test_reports_a_failed_job(monkeypatch: pytest.MonkeyPatch) -> None:
    with SandboxServer(SandboxConfig(spec=SMALL, job_seconds=0.3, job_failure_rate=1.0)) as server:
        monkeypatch.setenv("AIRFLOW_CONN_ML_API", json.dumps(
            {"conn_type": "http", "host": f"{server.url}/ml/v1", "extra": KEY}))
        job_id = _submit(f"{server.url}/ml/v1")
        event = _first_event(JobStatusTrigger("ml_api", job_id, poll_interval=0.1))
    assert event["status"] == "failed" and event["job_id"] == job_id


def test_gives_up_at_its_deadline(ml_api: tuple[SandboxServer, str]) -> None:
    _, base = ml_api
    job_id = _submit(base)
    event = _first_event(JobStatusTrigger("ml_api", job_id, poll_interval=0.05, deadline=time.time() + 0.2))
    assert event["status"] == "timeout"


def test_a_dead_service_ends_in_an_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    monkeypatch.setenv("AIRFLOW_CONN_ML_API", json.dumps(
        {"conn_type": "http", "host": f"http://127.0.0.1:{port}/ml/v1", "extra": KEY}))
    event = _first_event(JobStatusTrigger("ml_api", "ml-1", poll_interval=0.01, max_consecutive_errors=2))
    assert event["status"] == "error" and "2 failed polls" in event["message"]
