"""One JSON API call the way every network client makes it, whatever the network.

Ask the task's rate budget for a slot, count the request, send it on the worker's own HTTP client
with a total deadline and no redirects, scrub the answer of every credential before anything reads
it, and turn an error answer into the network's ``ApiError``: a spent quota or refused credentials
stop every worker of the task, a throttle answer holds them all. Transient errors are retried with
backoff (tenacity). A network client supplies only how its API says "error" and what each error means.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from socialsync.extract.budget import RateBudget
from socialsync.extract.http import DeadlineClient, shared_ssl_context
from socialsync.extract.retrying import MAX_WAIT_S, call_with_retries
from socialsync.extract.secrets import SecretScrubber
from socialsync.networks.base import (
    ApiCredentials,
    ApiError,
    AuthError,
    FetchedPage,
    PageAnomaly,
    QuotaExhaustedError,
    ThrottledError,
    TransientError,
)

ErrorOf = Callable[[httpx.Response, Any, str], ApiError]
# A list under a profile (followers, subscriptions) longer than this is not walked: 10 million followers
# are 100,000 requests. A connection extra ``max_list_items`` sets a deployment's own.
DEFAULT_MAX_LIST_ITEMS = 5_000
# A newest-first list is walked to its end (proving removals) at least this often (``full_list_days``).
DEFAULT_FULL_LIST_DAYS = 7


def http_clients(base_url: str, headers: dict[str, str], timeout: float,
                 transport: httpx.BaseTransport | None = None) -> Callable[[], httpx.Client]:
    """How a worker's own client is made: credentials in headers (never in a URL), a read timeout,
    redirects not followed, and the process's one TLS context."""

    def make() -> httpx.Client:
        return httpx.Client(base_url=base_url.rstrip("/") + "/", headers=headers,
                            timeout=httpx.Timeout(timeout, connect=10.0), transport=transport,
                            follow_redirects=False, verify=shared_ssl_context())

    return make


def error_key_failure(response: httpx.Response, body: Any) -> bool:
    """Graph's and Google's convention: an answer is an error when it is not 2xx or has an ``error`` key."""
    return not response.is_success or "error" in body


class JsonApi:
    """A network's calls: shared by a task's workers (thread-safe), one rate budget for all of them."""

    def __init__(self, make_client: Callable[[], httpx.Client], *, budget: RateBudget, scrubber: SecretScrubber,
                 error_of: ErrorOf, deadline_s: float, max_attempts: int = 6, max_wait_s: float = MAX_WAIT_S,
                 backoff_s: float = 0.5, on_answer: Callable[[httpx.Response], None] | None = None,
                 failed: Callable[[httpx.Response, Any], bool] = error_key_failure,
                 auth: Callable[[], dict[str, str]] | None = None) -> None:
        self._http = DeadlineClient(make_client, deadline_s)
        self._auth = auth  # headers asked for at each request (a token that is renewed), if any
        self.budget = budget
        self.scrubber = scrubber
        self._error_of = error_of
        self._on_answer = on_answer
        self._failed = failed
        self.max_attempts, self.max_wait_s, self.backoff_s = max_attempts, max_wait_s, backoff_s
        self._counted = threading.Lock()
        self.requests = 0  # sent so far, retries included
        self.max_list_items = DEFAULT_MAX_LIST_ITEMS
        self.full_list_days = DEFAULT_FULL_LIST_DAYS

    @classmethod
    def for_connection(cls, credentials: ApiCredentials, headers: dict[str, str], *, error_of: ErrorOf,
                       default_in_flight: int, transport: httpx.BaseTransport | None = None,
                       on_answer: Callable[[httpx.Response], None] | None = None,
                       failed: Callable[[httpx.Response, Any], bool] = error_key_failure,
                       auth: Callable[[], dict[str, str]] | None = None) -> JsonApi:
        """Calls as a connection's extras describe them: ``timeout`` (per read), ``deadline_s`` (a whole
        answer, default 4 read timeouts), ``max_attempts``, ``max_wait_s``, ``backoff_s`` and the rate
        budget's own (``RateBudget.from_options``). ``headers`` carry the credentials; whatever the API
        sends back is scrubbed of ``credentials.token``."""
        options = credentials.options
        timeout = float(options.get("timeout", 30.0))
        api = cls(http_clients(credentials.base_url, headers, timeout, transport),
                   budget=RateBudget.from_options(options, default_in_flight),
                   scrubber=SecretScrubber([credentials.token]), error_of=error_of,
                   deadline_s=float(options.get("deadline_s", 4 * timeout)),
                   max_attempts=int(options.get("max_attempts", 6)),
                   max_wait_s=float(options.get("max_wait_s", MAX_WAIT_S)),
                   backoff_s=float(options.get("backoff_s", 0.5)), on_answer=on_answer, failed=failed,
                   auth=auth)
        api.max_list_items = int(options.get("max_list_items", DEFAULT_MAX_LIST_ITEMS))
        api.full_list_days = int(options.get("full_list_days", DEFAULT_FULL_LIST_DAYS))
        return api

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: dict[str, Any], what: str) -> tuple[int, dict[str, Any]]:
        """``GET path?params``: the status and the scrubbed JSON object, or the classified error."""
        return call_with_retries(lambda: self._once("GET", path, params), self.max_attempts, what,
                                 self.max_wait_s, self.backoff_s)

    def post(self, path: str, params: dict[str, Any], body: Any, what: str) -> tuple[int, dict[str, Any]]:
        """``POST path?params`` with a JSON ``body``, as ``get``."""
        return call_with_retries(lambda: self._once("POST", path, params, body), self.max_attempts, what,
                                 self.max_wait_s, self.backoff_s)

    def _once(self, method: str, path: str, params: dict[str, Any], body: Any = None) -> tuple[int, dict[str, Any]]:
        with self.budget.slot():
            with self._counted:
                self.requests += 1
            headers = self._auth() if self._auth is not None else None
            response = self._http.request(method, path, params, json=body, headers=headers)
        if self._on_answer is not None:
            self._on_answer(response)
        try:
            body = self.scrubber.parse(response.content)
        except (ValueError, UnicodeDecodeError) as exc:  # json's decode error is a ValueError
            raise TransientError(f"unreadable body ({len(response.content)} bytes, HTTP {response.status_code}) "
                                 f"from {method} {path}", status=response.status_code, retryable=True) from exc
        if not isinstance(body, dict):
            if response.is_success:
                raise PageAnomaly(f"{method} {path}: the answer is a JSON {type(body).__name__}, not an object")
        elif not self._failed(response, body):
            return response.status_code, body
        error = self._error_of(response, body, path)
        if isinstance(error, QuotaExhaustedError | AuthError):
            self.budget.stop(error)  # every worker of the task stops at its next request
        elif isinstance(error, ThrottledError):
            self.budget.hold(error.retry_after if error.retry_after is not None else self.backoff_s * 4, str(error))
        raise error


class JsonApiClient:
    """What every network client built on one ``JsonApi`` answers about its calls.

    A request sent is one unit of the API's quota, refused or not; the answers' records are not
    counted. A network whose quota counts otherwise (TikTok's records) says so by overriding.
    """

    _api: JsonApi

    @property
    def requests(self) -> int:
        return self._api.requests

    @property
    def units(self) -> float:
        return float(self._api.requests)

    @property
    def records(self) -> float:
        return 0.0

    @property
    def max_list_items(self) -> int:
        return self._api.max_list_items

    @property
    def full_list_days(self) -> int:
        return self._api.full_list_days

    def list_pages(self, kind: str, entity_id: str, cursor: str | None) -> Iterator[FetchedPage]:
        """A network that declares profile lists (``NetworkSpec.lists``) pages them here."""
        raise ValueError(f"{type(self).__name__} lists nothing under a profile but its posts (asked for {kind!r})")

    def close(self) -> None:
        self._api.close()
