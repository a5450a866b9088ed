"""One HTTP exchange with a total deadline, no redirects followed, and transport failures classified."""

from __future__ import annotations

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


class DeadlineClient:
    """``httpx.Client``s whose every request must be answered whole within ``deadline_s``.

    httpx bounds each read, not the exchange: an answer trickling a byte at a time under the read
    timeout would hold a task for ever. Each request runs on a short-lived helper thread; when the
    deadline passes, the calling worker's own client is closed under it (its read fails at the next
    byte or read timeout, on a thread nobody waits for) and the worker gets a fresh one. Each worker
    thread has its own client, so one stuck answer never aborts another worker's requests.
    Redirects are never followed: they would carry the credentials to wherever the upstream points.
    """

    def __init__(self, make_client: Callable[[], httpx.Client], deadline_s: float) -> None:
        self._make = make_client
        self.deadline_s = deadline_s
        self._local = threading.local()
        self._lock = threading.Lock()
        self._clients: set[httpx.Client] = set()

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, set()
        for http in clients:
            http.close()

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

        threading.Thread(target=exchange, name="http-deadline", daemon=True).start()
        if not done.wait(self.deadline_s):
            self._discard(http)
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
