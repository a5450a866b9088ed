"""JobStatusTrigger: serializes to what the triggerer re-creates it from, and polls to an outcome."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import quote_plus

import httpx
import pytest
from airflow._shared.secrets_masker import SecretsMasker as CoreSecretsMasker
from airflow._shared.secrets_masker import _secrets_masker as core_masker
from airflow._shared.secrets_masker import redact as core_redact
from airflow.sdk._shared.secrets_masker import redact as sdk_redact
from airflow.sdk.exceptions import AirflowException
from airflow.sdk.log import mask_logs

from socialsync.airflow.connections import api_credentials, connection_secrets
from socialsync.airflow.sensors import JobStatusSensor
from socialsync.airflow.triggers import JobStatusTrigger
from socialsync.enrich.client import JobApiClient, JobApiError
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


class _Recorder(ThreadingHTTPServer):
    """A loopback HTTP origin that records every request's headers and gives one canned answer."""

    def __init__(self, status: int = 200, headers: dict[str, str] | None = None, body: bytes = b"{}") -> None:
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.answer = (status, headers or {}, body)
        self.received: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> Self:
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _RecordingHandler(BaseHTTPRequestHandler):
    server: _Recorder

    def _answer(self) -> None:
        self.server.received.append({"path": self.path, **dict(self.headers.items())})
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, headers, body = self.server.answer
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:  # the test output stays quiet
        pass


@pytest.fixture
def foreign() -> Iterator[_Recorder]:
    """Another origin, which must never hear from a client that holds the API key."""
    with _Recorder(body=b'{"job_id": "ml-1", "status": "done"}') as server:
        yield server


@pytest.fixture
def redirecting_api(foreign: _Recorder, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Recorder]:
    """A job API that answers every call with a 302 to the foreign origin, a token in its query."""
    location = f"{foreign.url}/steal?access_token=leaked-token-123&next=1"
    with _Recorder(status=302, headers={"Location": location}) as api:
        # The connection even asks for redirects: the client's refusal must win over the extras.
        monkeypatch.setenv("AIRFLOW_CONN_ML_API", json.dumps(
            {"conn_type": "http", "host": f"{api.url}/ml/v1", "extra": {**KEY, "allow_redirects": True}}))
        yield api


def _assert_not_followed(message: str, api: _Recorder, foreign: _Recorder) -> None:
    assert f"redirected to {foreign.url}, not followed" in message
    assert "leaked-token-123" not in message and "/steal" not in message
    assert api.received and api.received[0].get("X-Api-Key") == KEY["X-Api-Key"]  # it did ask the right origin
    assert foreign.received == []


def test_the_trigger_never_follows_a_redirect(redirecting_api: _Recorder, foreign: _Recorder) -> None:
    event = _first_event(JobStatusTrigger("ml_api", "ml-1", poll_interval=0.01, max_consecutive_errors=2))
    assert event["status"] == "error"
    _assert_not_followed(event["message"], redirecting_api, foreign)
    assert len(redirecting_api.received) == 2


def test_the_job_client_never_follows_a_redirect(redirecting_api: _Recorder, foreign: _Recorder) -> None:
    client = JobApiClient(f"{redirecting_api.url}/ml/v1", KEY)
    with pytest.raises(JobApiError) as raised:
        client.state("ml-1")
    client.close()
    _assert_not_followed(str(raised.value), redirecting_api, foreign)


def test_the_sensor_never_follows_a_redirect(redirecting_api: _Recorder, foreign: _Recorder) -> None:
    sensor = JobStatusSensor(task_id="wait_for_job", job_id="ml-1", http_conn_id="ml_api", deferrable=False)
    sensor.endpoint = "jobs/ml-1"
    with pytest.raises(AirflowException) as raised:
        sensor.poke({})  # type: ignore[arg-type]
    _assert_not_followed(str(raised.value), redirecting_api, foreign)


def test_an_error_answer_quoting_the_key_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    key = f"echoed-key-{uuid.uuid4().hex}"
    body = json.dumps({"error": f"key {key} is revoked", "retry": "https://x.example/?api_key=another-one"})
    with _Recorder(status=401, body=body.encode()) as api:
        monkeypatch.setenv("AIRFLOW_CONN_ML_API", json.dumps(
            {"conn_type": "http", "host": f"{api.url}/ml/v1", "extra": {"X-Api-Key": key}}))
        with pytest.raises(JobApiError) as raised:
            JobApiClient(f"{api.url}/ml/v1", {"X-Api-Key": key}).state("ml-1")
        event = _first_event(JobStatusTrigger("ml_api", "ml-1", poll_interval=0.01, max_consecutive_errors=1))
        sensor = JobStatusSensor(task_id="wait_for_job", job_id="ml-1", http_conn_id="ml_api", deferrable=False)
        sensor.endpoint = "jobs/ml-1"
        with pytest.raises(AirflowException) as poked:
            sensor.poke({})  # type: ignore[arg-type]
    for message in (str(raised.value), event["message"], str(poked.value)):
        assert "401" in message
        assert key not in message and "another-one" not in message
    assert "key *** is revoked" in str(raised.value)


def test_the_trigger_registers_the_key_with_the_masker(monkeypatch: pytest.MonkeyPatch) -> None:
    # A header name outside Airflow's own sensitive-name list, and a value that URL-encoding changes.
    key = f"trigger/key+{uuid.uuid4().hex}"
    line = f"calling the job API with X-Client-Key: {key}, as a query: ?k={quote_plus(key)}"
    assert sdk_redact(line) == line  # nobody told the masker yet
    with _Recorder(body=b'{"job_id": "ml-1", "status": "done"}') as api:
        monkeypatch.setenv("AIRFLOW_CONN_ML_API", json.dumps(
            {"conn_type": "http", "host": f"{api.url}/ml/v1", "extra": {"X-Client-Key": key}}))
        event = _first_event(JobStatusTrigger("ml_api", "ml-1", poll_interval=0.01))
    assert event["status"] == "done"
    assert api.received[0].get("X-Client-Key") == key
    assert sdk_redact(line) == "calling the job API with X-Client-Key: ***, as a query: ?k=***"


def test_reading_a_connection_registers_its_secrets_with_both_maskers(monkeypatch: pytest.MonkeyPatch) -> None:
    token, key, client = (f"{what}+{uuid.uuid4().hex}" for what in ("EAAtoken", "api-key", "client-key"))
    monkeypatch.setenv("AIRFLOW_CONN_SECRETIVE_API", json.dumps(
        {"conn_type": "http", "host": "https://graph.example/v21.0", "password": token,
         "extra": {"X-Api-Key": key, "page_size": 25, "X-Client-Key": client,
                   "headers": {"Authorization": f"Bearer {key}"}}}))
    line = (f"GET /media?access_token={quote_plus(token)}&after=QVFH failed; token {token}, key {key}, "
            f"client key {client}")
    assert sdk_redact(line) == line and core_redact(line) == line

    assert connection_secrets("secretive_api") == [token, key, client, f"Bearer {key}"]
    expected = "GET /media?access_token=***&after=QVFH failed; token ***, key ***, client key ***"
    assert sdk_redact(line) == expected  # task and trigger logs (structlog's mask_logs processor)
    assert mask_logs(None, "info", {"event": line}) == {"event": expected}
    assert core_redact(line) == expected  # the stdlib handlers of core components (scheduler)
    monkeypatch.setattr(CoreSecretsMasker, "mask_secrets_in_logs", True)
    record = logging.LogRecord("scheduler", logging.INFO, __file__, 1, "%s", (line,), None)
    core_masker().filter(record)
    assert record.getMessage() == expected

    # api_credentials registers too (the password, here a token the masker has not seen yet).
    fresh = f"fresh-token-{uuid.uuid4().hex}"
    monkeypatch.setenv("AIRFLOW_CONN_SECRETIVE_API", json.dumps(
        {"conn_type": "http", "host": "https://graph.example/v21.0", "password": fresh}))
    assert api_credentials("secretive_api").token == fresh
    assert sdk_redact(f"token {fresh}") == "token ***"
