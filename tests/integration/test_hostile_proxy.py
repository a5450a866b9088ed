"""The hostile proxy does each kind of harm at the transport, against the real sandbox, with a plain httpx client."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from socialsync.sandbox.dataset import Dataset
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from tests.hostile import HostileProxy, Recorder, RequestInfo, Rule
from tests.integration.conftest import SMALL

AUTH = {"Authorization": "Bearer sandbox-token"}
MEDIA = r"^GET /v21\.0/\d+/media\b"


@pytest.fixture(scope="module")
def upstream() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(spec=SMALL, job_seconds=0.6)) as server:
        yield server


@pytest.fixture
def proxy(upstream: SandboxServer) -> Iterator[HostileProxy]:
    with HostileProxy(upstream.url) as hostile:
        yield hostile
    assert hostile.errors == []


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(headers=AUTH, timeout=5) as http:
        yield http


def _media_path(upstream: SandboxServer) -> str:
    dataset: Dataset = upstream.app.state.dataset
    return f"/v21.0/{dataset.profile_id(0)}/media"


def test_passthrough_is_identical_and_keeps_the_connection(upstream: SandboxServer, proxy: HostileProxy,
                                                           client: httpx.Client) -> None:
    params: dict[str, str | int] = {"fields": "id,caption,media_type", "limit": 4}
    direct = client.get(upstream.url + _media_path(upstream), params=params)
    proxied = [client.get(proxy.url + _media_path(upstream), params=params) for _ in range(3)]
    assert all(r.status_code == 200 and r.content == proxied[0].content for r in proxied)
    assert proxied[0].content == direct.content.replace(upstream.url.encode(), proxy.url.encode())
    assert proxied[0].json()["paging"]["next"].startswith(proxy.url + "/")  # Host is preserved: next stays here
    assert proxied[0].headers["x-app-usage"] and proxied[0].headers["content-type"] == "application/json"
    assert proxy.connections == 1, "keep-alive: httpx reuses one pooled connection"
    assert [r.action for r in proxy.requests] == [None] * 3


def test_posts_forward_body_and_api_key(proxy: HostileProxy, client: httpx.Client) -> None:
    key = {"X-Api-Key": "sandbox-key"}
    submitted = client.post(f"{proxy.url}/ml/v1/jobs", json={"items": [{"id": "1", "text": "hello"}]}, headers=key)
    assert submitted.status_code == 202
    polled = client.get(f"{proxy.url}/ml/v1/jobs/{submitted.json()['job_id']}", headers=key)
    assert polled.status_code == 200 and polled.json()["items"] == 1
    assert proxy.requests[0].method == "POST" and b'"hello"' in proxy.requests[0].body


def test_reset_is_a_transport_error(upstream: SandboxServer, proxy: HostileProxy, client: httpx.Client) -> None:
    rule = Rule(MEDIA, "reset")
    proxy.rules.append(rule)
    with pytest.raises(httpx.ReadError, match="reset"):
        client.get(proxy.url + _media_path(upstream))
    assert proxy.hits(rule) == 1 and proxy.requests[-1].action == "reset"
    assert client.get(f"{proxy.url}/v21.0/{upstream.app.state.dataset.profile_id(0)}").status_code == 200


def test_reset_after_forwarding_lets_the_upstream_act(upstream: SandboxServer, proxy: HostileProxy,
                                                      client: httpx.Client) -> None:
    before = upstream.counters["ml:submit"]
    proxy.rules.append(Rule("^POST /ml/v1/jobs", "reset", forward=True))
    with pytest.raises(httpx.ReadError):
        client.post(f"{proxy.url}/ml/v1/jobs", json={"items": [{"id": "1", "text": "x"}]},
                    headers={"X-Api-Key": "sandbox-key"})
    assert upstream.counters["ml:submit"] == before + 1


def test_stall_times_out_and_exit_does_not_wait_for_it(upstream: SandboxServer, client: httpx.Client) -> None:
    before = sum(upstream.counters.values())
    with HostileProxy(upstream.url) as proxy:
        proxy.rules.append(Rule(MEDIA, "stall", stall_s=30))
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.get(proxy.url + _media_path(upstream), timeout=httpx.Timeout(5, read=0.3))
        assert time.monotonic() - started < 2
        # A second client is still stalled when the proxy shuts down: it gets a hang-up, not a 30 s wait.
        outcome: list[BaseException] = []
        thread = threading.Thread(target=lambda: _capture(outcome, proxy.url + _media_path(upstream)))
        thread.start()
        while len(proxy.requests) < 2:
            time.sleep(0.01)
        leaving = time.monotonic()
    assert time.monotonic() - leaving < 2
    thread.join(5)
    assert isinstance(outcome[0], httpx.RemoteProtocolError)  # "Server disconnected without sending a response."
    assert sum(upstream.counters.values()) == before and proxy.errors == []  # stalls never reach the sandbox


def _capture(outcome: list[BaseException], url: str) -> None:
    try:
        httpx.get(url, headers=AUTH, timeout=10)
    except httpx.HTTPError as exc:
        outcome.append(exc)


def _tiny(_: Any, __: RequestInfo) -> Any:
    return {"data": []}


@pytest.mark.parametrize("phase", ["body", "headers"])
def test_trickle_arrives_whole_but_slowly(upstream: SandboxServer, proxy: HostileProxy, client: httpx.Client,
                                          phase: str) -> None:
    every = 0.02 if phase == "body" else 0.001
    proxy.rules.append(Rule(MEDIA, "trickle", trickle_every_s=every, trickle_phase=phase, rewrite=_tiny))
    started = time.monotonic()
    response = client.get(proxy.url + _media_path(upstream))
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and response.json() == {"data": []}
    sent = len(response.content) if phase == "body" else len(response.content) + 150  # a head is > 150 bytes
    assert elapsed >= sent * every


def test_redirect_points_abroad_and_nothing_goes_there_unless_followed(upstream: SandboxServer, proxy: HostileProxy,
                                                                       client: httpx.Client) -> None:
    with Recorder() as foreign:
        foreign.body = {"data": [], "paging": {}}
        proxy.rules.append(Rule(MEDIA, "redirect", redirect_to=foreign.url))
        response = client.get(proxy.url + _media_path(upstream), params={"limit": 2})
        assert response.status_code == 302
        assert response.headers["location"] == f"{foreign.url}{_media_path(upstream)}?limit=2"
        assert foreign.requests == []
        followed = client.get(proxy.url + _media_path(upstream), params={"limit": 2}, follow_redirects=True)
    assert followed.status_code == 200 and followed.json() == {"data": [], "paging": {}}
    assert [(r.method, r.path, r.query) for r in foreign.requests] == [("GET", _media_path(upstream), "limit=2")]
    assert "authorization" not in foreign.requests[0].headers  # httpx strips it on a cross-origin redirect


def test_truncate_breaks_the_body(upstream: SandboxServer, proxy: HostileProxy, client: httpx.Client) -> None:
    proxy.rules.append(Rule(MEDIA, "truncate", truncate_at=7))
    with pytest.raises(httpx.RemoteProtocolError, match="received 7 bytes"):
        client.get(proxy.url + _media_path(upstream))
    with client.stream("GET", proxy.url + _media_path(upstream)) as response:  # headers arrive intact
        assert response.status_code == 200 and int(response.headers["content-length"]) > 7
        with pytest.raises(httpx.RemoteProtocolError):
            response.read()


def test_rewrite_changes_the_json_and_fixes_the_length(upstream: SandboxServer, proxy: HostileProxy,
                                                       client: httpx.Client) -> None:
    seen: list[str] = []

    def null_data(body: Any, request: RequestInfo) -> Any:
        seen.append(request.query)
        return {**body, "data": None}

    proxy.rules.append(Rule(MEDIA, "rewrite", rewrite=null_data))
    response = client.get(proxy.url + _media_path(upstream), params={"limit": 3})
    assert response.status_code == 200 and response.json()["data"] is None
    assert response.json()["paging"]["cursors"]["after"] and seen == ["limit=3"]
    assert int(response.headers["content-length"]) == len(response.content)
    assert "x-app-usage" in response.headers


def test_status_answers_without_forwarding(upstream: SandboxServer, proxy: HostileProxy,
                                           client: httpx.Client) -> None:
    before = sum(upstream.counters.values())
    body = {"error": {"code": 2, "message": "Service temporarily unavailable"}}
    proxy.rules.append(Rule(MEDIA, "status", status=503, body=body, headers={"Retry-After": "1"}))
    response = client.get(proxy.url + _media_path(upstream))
    assert response.status_code == 503 and response.json() == body and response.headers["retry-after"] == "1"
    assert sum(upstream.counters.values()) == before


def test_skip_and_times_then_the_next_rule(upstream: SandboxServer, proxy: HostileProxy,
                                           client: httpx.Client) -> None:
    first = Rule(MEDIA, "status", status=500, skip=1, times=2)
    fallback = Rule(MEDIA, "status", status=429, times=1)
    proxy.rules += [first, fallback]
    codes = [client.get(proxy.url + _media_path(upstream)).status_code for _ in range(5)]
    # 1st skipped by `first` falls to `fallback`; then `first` twice; then `fallback` is spent too.
    assert codes == [429, 500, 500, 200, 200]
    assert (proxy.hits(first), proxy.hits(fallback)) == (2, 1)
    assert [r.action for r in proxy.requests] == ["status", "status", "status", None, None]
    proxy.rules.clear()
    assert client.get(proxy.url + _media_path(upstream)).status_code == 200


def test_requests_record_headers_and_only_matching_requests_are_touched(upstream: SandboxServer,
                                                                        proxy: HostileProxy,
                                                                        client: httpx.Client) -> None:
    proxy.rules.append(Rule(MEDIA, "status", status=500))
    profile = f"/v21.0/{upstream.app.state.dataset.profile_id(0)}"
    assert client.get(proxy.url + profile, params={"fields": "id,username"}).status_code == 200
    assert client.get(proxy.url + profile + "/media").status_code == 500
    untouched, touched = proxy.requests
    assert untouched.headers["authorization"] == "Bearer sandbox-token" and untouched.action is None
    assert untouched.query == "fields=id%2Cusername"  # rules match the raw, percent-encoded query
    assert touched.path == profile + "/media" and touched.action == "status"
