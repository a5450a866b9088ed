"""One HTTP exchange with a total deadline, no redirects followed, and transport failures classified."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from socialsync.networks.base import ApiError, RedirectRefused, TransientError


def path_segment(value: str) -> str:
    """An id as one URL path segment: encoded, never able to climb out of the API's version path."""
    if value in ("", ".", ".."):
        raise ApiError(f"{value!r} is not a valid id")
    return quote(value, safe="")


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else "a relative location"


class DeadlineClient:
    """An ``httpx.Client`` whose every request must be answered whole within ``deadline_s``.

    httpx bounds each read, not the exchange: an answer trickling a byte at a time under the read
    timeout would hold a task for ever. Each request runs on a helper thread; when the deadline
    passes, its client is closed under it (its read fails at the next byte or read timeout, on a
    thread nobody waits for) and a fresh client and thread serve the next request. Redirects are
    never followed: they would carry the credentials to wherever the upstream points.
    """

    def __init__(self, make_client: Callable[[], httpx.Client], deadline_s: float) -> None:
        self._make = make_client
        self.deadline_s = deadline_s
        self._lock = threading.Lock()
        self._http = make_client()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="http-deadline")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    def get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        http = self._http
        future: Future[httpx.Response] = self._pool.submit(self._exchange, http, path, params)
        try:
            response = future.result(timeout=self.deadline_s)
        except FutureTimeout:
            with self._lock:
                http.close()
                if self._http is http:
                    self._http = self._make()
                    self._pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="http-deadline")
            raise TransientError(f"GET {path}: no complete answer within {self.deadline_s:.0f}s",
                                 retryable=True) from None
        except httpx.TimeoutException as exc:
            raise TransientError(f"timeout on GET {path}: {type(exc).__name__}", retryable=True) from exc
        except httpx.TransportError as exc:
            raise TransientError(f"connection error on GET {path}: {type(exc).__name__}",
                                 retryable=True) from exc
        if response.is_redirect:
            where = origin(response.headers.get("location", ""))
            raise RedirectRefused(f"GET {path}: HTTP {response.status_code} redirect to {where}, not followed",
                                  status=response.status_code)
        return response

    @staticmethod
    def _exchange(http: httpx.Client, path: str, params: dict[str, Any]) -> httpx.Response:
        response = http.get(path, params=params, follow_redirects=False)
        response.read()
        return response
