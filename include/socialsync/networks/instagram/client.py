"""The Instagram Graph API client (httpx): profile, media pages and comment pages of a media."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from socialsync.extract.calls import JsonApi, JsonApiClient
from socialsync.extract.http import path_segment
from socialsync.extract.paging import GraphCursorPaginator
from socialsync.networks.base import (
    ApiCredentials,
    ApiError,
    AuthError,
    CommentHistory,
    CursorExpiredError,
    FetchedPage,
    NotFoundError,
    PageAnomaly,
    QuotaExhaustedError,
    ThrottledError,
    TransientError,
)

log = logging.getLogger(__name__)

PROFILE_FIELDS = ("id,username,name,biography,followers_count,follows_count,media_count,"
                  "profile_picture_url,website")
MEDIA_FIELDS = ("id,caption,media_type,media_product_type,media_url,thumbnail_url,permalink,timestamp,"
                "like_count,comments_count,username,children{id,media_type,media_url,thumbnail_url}")
COMMENT_FIELDS = "id,text,timestamp,username,like_count,from"

# Graph's throttling codes: app (4), user (17), page (32), custom (613), Instagram BUC (80002).
THROTTLE_CODES = frozenset({4, 17, 32, 613, 80001, 80002})
AUTH_CODES = frozenset({102, 190, 200, 10})
TRANSIENT_CODES = frozenset({1, 2})
EXPIRED_CURSOR_SUBCODES = frozenset({2018116})
DEFAULT_IN_FLIGHT = 32  # requests a task keeps in flight: profiles, and comment threads within them


class InstagramClient(JsonApiClient):
    """Talks the real Graph API protocol; only the connection's host and token say where to.

    Graph counts calls: each request sent is one unit of the app's hourly allowance.
    """

    def __init__(self, credentials: ApiCredentials, transport: httpx.BaseTransport | None = None) -> None:
        options = credentials.options
        self.page_size = int(options.get("page_size", 25))
        self.comments_page_size = int(options.get("comments_page_size", 50))
        self.last_usage: dict[str, Any] = {}
        # The token travels in a header, so it never appears in URLs, logs or stored requests; what
        # the API sends back is scrubbed of it (and of any access_token in a URL, as Graph's
        # paging.next links carry) before it reaches a page, an error, a log or a table.
        self._api = JsonApi.for_connection(
            credentials, {"Authorization": f"Bearer {credentials.token}"},
            error_of=lambda response, body, path: _graph_error(response, body, path, self._api.max_wait_s,
                                                               self._regain_after_s()),
            default_in_flight=DEFAULT_IN_FLIGHT, transport=transport, on_answer=self._read_usage)
        self.budget = self._api.budget  # one for everything this client has in flight

    def fetch_profiles(self, entity_ids: Sequence[str]) -> list[FetchedPage]:
        """Graph looks a node up by itself: one call per profile (the spec's ``profiles_per_call`` is 1)."""
        return [self.fetch_profile(entity_id) for entity_id in entity_ids]

    def fetch_profile(self, entity_id: str) -> FetchedPage:
        params = {"fields": PROFILE_FIELDS}
        path = path_segment(entity_id)
        status, body = self._get(path, params)
        return FetchedPage("profile", entity_id, _request(path, params), status, body, None, None, 1)

    def post_pages(self, entity_id: str, cursor: str | None) -> Iterator[FetchedPage]:
        return self._pages("posts", entity_id, f"{path_segment(entity_id)}/media",
                           {"fields": MEDIA_FIELDS, "limit": self.page_size}, cursor)

    def comment_pages(self, post_id: str, cursor: str | None,
                      history: CommentHistory | None = None) -> Iterator[FetchedPage]:
        """Every comment page of a post: Graph's walks are always complete (``history`` is not used)."""
        return self._pages("comments", post_id, f"{path_segment(post_id)}/comments",
                           {"fields": COMMENT_FIELDS, "limit": self.comments_page_size}, cursor)

    def _pages(self, kind: str, parent_id: str, path: str, base: dict[str, Any],
               cursor: str | None) -> Iterator[FetchedPage]:
        paginator = GraphCursorPaginator(cursor)
        while True:
            params = dict(base)
            asked_with = paginator.cursor
            paginator.update_request(params)
            status, body = self._get(path, params)
            try:
                paginator.update_state(body)
            except PageAnomaly as exc:
                raise PageAnomaly(f"GET {path} after={asked_with or '-'}: {exc}") from None
            items = body["data"]
            yield FetchedPage(kind, parent_id, _request(path, params), status, body, asked_with,
                              paginator.cursor, len(items))
            if not paginator.has_next_page:
                return

    def _get(self, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self._api.get(path, params, f"GET {path} after={params.get('after', '-')}")

    def _read_usage(self, response: httpx.Response) -> None:
        for header in ("x-app-usage", "x-business-use-case-usage"):
            value = response.headers.get(header)
            if value:
                try:
                    self.last_usage[header] = json.loads(value)
                except json.JSONDecodeError:
                    log.warning("ignoring unreadable %s header", header)
        self.budget.observe_usage(self.usage_percent())

    def _buc_entries(self) -> list[dict[str, Any]]:
        buc = self.last_usage.get("x-business-use-case-usage")
        if not isinstance(buc, dict):
            return []
        return [e for entries in buc.values() if isinstance(entries, list) for e in entries if isinstance(e, dict)]

    def usage_percent(self) -> int:
        """The highest share of any quota the last answers reported (Graph's own accounting)."""
        reports = [self.last_usage.get("x-app-usage") or {}, *self._buc_entries()]
        values = [float(entry[k]) for entry in reports for k in ("call_count", "total_cputime", "total_time")
                  if isinstance(entry.get(k), (int, float))]
        return int(max(values, default=0))

    def _regain_after_s(self) -> float | None:
        minutes = [e.get("estimated_time_to_regain_access") for e in self._buc_entries()]
        waits = [float(m) * 60 for m in minutes if isinstance(m, (int, float)) and m > 0]
        return max(waits) if waits else None


def _request(path: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"method": "GET", "path": path, "params": dict(params)}


def _graph_error(response: httpx.Response, body: Any, path: str, max_wait_s: float,
                 regain_after_s: float | None) -> ApiError:
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    message = f"GET {path}: HTTP {response.status_code} {error.get('message') or response.reason_phrase}"
    retry_after = response.headers.get("retry-after")
    wait = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else regain_after_s
    if response.status_code == 429 or code in THROTTLE_CODES:
        if wait is not None and wait > max_wait_s:
            return QuotaExhaustedError(f"{message}; access returns in {wait:.0f}s", response.status_code, code,
                                       retry_after=wait)
        return ThrottledError(message, response.status_code, code, retryable=True, retry_after=wait)
    if code == 100 and error.get("error_subcode") in EXPIRED_CURSOR_SUBCODES:
        return CursorExpiredError(message, response.status_code, code)
    if code in AUTH_CODES or response.status_code == 401:
        return AuthError(message, response.status_code, code)
    if (code == 100 and error.get("error_subcode") == 33) or response.status_code == 404:
        return NotFoundError(message, response.status_code, code)
    if response.status_code >= 500 or code in TRANSIENT_CODES or error.get("is_transient"):
        return TransientError(message, response.status_code, code, retryable=True, retry_after=wait)
    return ApiError(message, response.status_code, code)
