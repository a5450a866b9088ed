"""One HTTP exchange with a total deadline, no redirects followed, and transport failures classified."""

from __future__ import annotations

import queue
import ssl
import threading
from collections.abc import Callable
from functools import cache
from typing import Any
from urllib.parse import quote

import httpx

from socialsync.extract.secrets import redirect_origin
from socialsync.networks.base import ApiError, RedirectRefused, TransientError


def path_segment(value: str) -> str:
    """An id as one URL path segment: encoded, never able to climb out of the API's version path."""
    if value in ("", ".", ".."):
        raise ApiError(f"{value!r} is not a valid id")
    return quote(value, safe="")


@cache
def shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every client of the process: building one loads the CA bundle
    (tens of milliseconds of CPU), and a task makes a client per worker thread."""
    return httpx.create_ssl_context()


class _Helper:
    """A worker's own daemon thread that runs its exchanges one after another: a thread made once per
    worker, not once per request. It ends when told (``None``), after the exchange it is in."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="http-deadline", daemon=True).start()

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            job()


class DeadlineClient:
    """``httpx.Client``s whose every request must be answered whole within ``deadline_s``.

    httpx bounds each read, not the exchange: an answer trickling a byte at a time under the read
    timeout would hold a task for ever. Each worker's requests run on a helper thread of its own;
    when the deadline passes, the worker's client is closed under it (its read fails at the next
    byte or read timeout, on a thread nobody waits for, which then ends) and the worker gets a fresh
    client and helper. Each worker thread has its own client, so one stuck answer never aborts
    another worker's requests. Redirects are never followed: they would carry the credentials to
    wherever the upstream points.
    """

    def __init__(self, make_client: Callable[[], httpx.Client], deadline_s: float) -> None:
        self._make = make_client
        self.deadline_s = deadline_s
        self._local = threading.local()
        self._lock = threading.Lock()
        self._clients: set[httpx.Client] = set()
        self._helpers: set[_Helper] = set()

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, set()
            helpers, self._helpers = self._helpers, set()
        for helper in helpers:
            helper.jobs.put(None)
        for http in clients:
            http.close()

    def _helper(self) -> _Helper:
        helper: _Helper | None = getattr(self._local, "helper", None)
        if helper is None:
            helper = self._local.helper = _Helper()
            with self._lock:
                self._helpers.add(helper)
        return helper

    def _drop_helper(self, helper: _Helper) -> None:
        """The helper is stuck in an exchange past its deadline: it ends once that read fails."""
        self._local.helper = None
        with self._lock:
            self._helpers.discard(helper)
        helper.jobs.put(None)

    def _client(self) -> httpx.Client:
        http: httpx.Client | None = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = self._make()
            with self._lock:
                self._clients.add(http)
        return http

    def _discard(self, http: httpx.Client) -> None:
        self._local.http = None
        with self._lock:
            self._clients.discard(http)
        http.close()

    def get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        return self.request("GET", path, params)

    def request(self, method: str, path: str, params: dict[str, Any], json: Any = None,
                headers: dict[str, str] | None = None) -> httpx.Response:
        http = self._client()
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def exchange() -> None:
            try:
                response = http.request(method, path, params=params, json=json, headers=headers,
                                        follow_redirects=False)
                response.read()
                outcome["response"] = response
            except BaseException as exc:  # handed to the waiting worker, which classifies it
                outcome["error"] = exc
            finally:
                done.set()

        helper = self._helper()
        helper.jobs.put(exchange)
        if not done.wait(self.deadline_s):
            self._discard(http)
            self._drop_helper(helper)
            raise TransientError(f"{method} {path}: no complete answer within {self.deadline_s:.0f}s", retryable=True)
        error = outcome.get("error")
        if isinstance(error, httpx.TimeoutException):
            raise TransientError(f"timeout on {method} {path}: {type(error).__name__}", retryable=True) from error
        if isinstance(error, httpx.TransportError):
            raise TransientError(f"connection error on {method} {path}: {type(error).__name__}",
                                 retryable=True) from error
        if error is not None:
            raise error
        response: httpx.Response = outcome["response"]
        if response.is_redirect:
            where = redirect_origin(str(response.url), response.headers.get("location"))
            raise RedirectRefused(f"{method} {path}: HTTP {response.status_code} redirect to {where}, not followed",
                                  status=response.status_code)
        return response
