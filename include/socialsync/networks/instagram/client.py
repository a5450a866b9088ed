"""The Instagram Graph API client (httpx): accounts the token manages and public ones (business discovery).

An owned account (a numeric IG user id) is read through its own node and edges: the profile, its
``/media`` pages, each media's ``/comments`` with their replies, and its live ``/stories``. A public
professional account (``@username``) is read through ``business_discovery`` on the app user's own
account (the connection's ``ig_user_id`` extra): the profile and its first media page come in one
answer, the next media pages through ``media.after(CURSOR)`` in the same field expression. It gives
no comments and no stories.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from socialsync.extract.calls import JsonApi, JsonApiClient
from socialsync.extract.http import path_segment
from socialsync.extract.paging import DiscoveryMediaPaginator, GraphCursorPaginator
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
    Unavailable,
)

log = logging.getLogger(__name__)

PROFILE_FIELDS = ("id,username,name,biography,followers_count,follows_count,media_count,"
                  "profile_picture_url,website")
MEDIA_FIELDS = ("id,caption,media_type,media_product_type,media_url,thumbnail_url,permalink,timestamp,"
                "like_count,comments_count,username,children{id,media_type,media_url,thumbnail_url}")
REPLY_FIELDS = "id,text,timestamp,username,like_count,from,parent_id"
# Replies come inline (the first page of each comment's replies edge, ``replies.limit(N)``); the rest
# from ``/{comment-id}/replies``.
COMMENT_BASE_FIELDS = "id,text,timestamp,username,like_count,from"
# Graph's largest pages (the sandbox caps them the same way): a client asks for these unless the
# connection's extras say otherwise. Stories and business discovery's media share the media cap.
MAX_MEDIA_PAGE = 100
MAX_COMMENTS_PAGE = 50
STORY_FIELDS = "id,media_type,media_product_type,media_url,thumbnail_url,permalink,timestamp,caption"
# What business discovery gives of another account: no thumbnail_url, no username on media.
DISCOVERY_PROFILE_FIELDS = PROFILE_FIELDS
DISCOVERY_MEDIA_FIELDS = ("id,caption,media_type,media_product_type,media_url,permalink,timestamp,like_count,"
                          "comments_count,children{id,media_type,media_url}")
REPLIES_PAGE = 50  # Graph's cap for a /replies page
# A public account is tracked by ``@username``: Instagram usernames are letters, digits, ``.`` and ``_``.
PUBLIC_ACCOUNT = re.compile(r"^@[A-Za-z0-9._]{1,30}$")
SAFE_CURSOR = re.compile(r"^[A-Za-z0-9_=+/-]{1,512}$")
NO_SUCH_USER_SUBCODES = frozenset({2207013})
FIRST_PAGES_KEPT = 4096  # discovery answers whose media page the posts walk has not taken yet

# Graph's throttling codes: app (4), user (17), page (32), custom (613), Instagram BUC (80002).
THROTTLE_CODES = frozenset({4, 17, 32, 613, 80001, 80002})
AUTH_CODES = frozenset({102, 190, 200, 10})
TRANSIENT_CODES = frozenset({1, 2})
EXPIRED_CURSOR_SUBCODES = frozenset({2018116})
DEFAULT_IN_FLIGHT = 32  # requests a task keeps in flight: profiles, and comment threads within them


def _page_size(options: dict[str, Any], name: str, largest: int) -> int:
    """A page size extra, within what the endpoint serves; the largest page when it is not set."""
    return max(1, min(largest, int(options.get(name) or largest)))


def is_public_account(entity_id: str) -> bool:
    """Whether a tracked Instagram entry names a public account (``@username``), read through discovery."""
    return bool(PUBLIC_ACCOUNT.fullmatch(entity_id))


class InstagramClient(JsonApiClient):
    """Talks the real Graph API protocol; only the connection's host and token say where to.

    Graph counts calls: each request sent is one unit of the app's hourly allowance.
    """

    def __init__(self, credentials: ApiCredentials, transport: httpx.BaseTransport | None = None) -> None:
        options = credentials.options
        self.page_size = _page_size(options, "page_size", MAX_MEDIA_PAGE)
        self.comments_page_size = _page_size(options, "comments_page_size", MAX_COMMENTS_PAGE)
        # A comment's first replies come inline with it, as many as a /replies page holds: most threads
        # then need no request of their own.
        inline = _page_size(options, "inline_replies", REPLIES_PAGE)
        self.comment_fields = f"{COMMENT_BASE_FIELDS},replies.limit({inline}){{{REPLY_FIELDS}}}"
        # The app user's own IG account: business discovery is asked on it.
        self.ig_user_id = str(options["ig_user_id"]) if options.get("ig_user_id") not in (None, "") else None
        self.last_usage: dict[str, Any] = {}
        # A discovery answer holds the profile and its first media page: the posts walk takes that page
        # from here instead of asking again (a quiet public account costs one request). Bounded: a page
        # pushed out is asked for again, which costs a request, never data.
        self._first_pages: OrderedDict[str, tuple[dict[str, Any], int, dict[str, Any]]] = OrderedDict()
        self._first_pages_lock = threading.Lock()
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
        if is_public_account(entity_id):
            request, status, body = self._discover(entity_id, None)
            with self._first_pages_lock:
                self._first_pages[entity_id] = (request, status, body)
                while len(self._first_pages) > FIRST_PAGES_KEPT:
                    self._first_pages.popitem(last=False)
            return FetchedPage("profile", entity_id, request, status, body, None, None, 1)
        params = {"fields": PROFILE_FIELDS}
        path = path_segment(entity_id)
        status, body = self._get(path, params)
        return FetchedPage("profile", entity_id, _request(path, params), status, body, None, None, 1)

    def post_pages(self, entity_id: str, cursor: str | None) -> Iterator[FetchedPage]:
        if is_public_account(entity_id):
            return self._discovery_pages(entity_id, cursor)
        return self._pages("posts", entity_id, f"{path_segment(entity_id)}/media",
                           {"fields": MEDIA_FIELDS, "limit": self.page_size}, cursor)

    def list_pages(self, kind: str, entity_id: str, cursor: str | None) -> Iterator[FetchedPage]:
        """A profile's other lists (the spec's ``lists``): an owned account's live stories."""
        if kind != "stories":
            raise ValueError(f"instagram lists no {kind!r} under a profile")
        if is_public_account(entity_id):
            raise Unavailable("business discovery gives no stories")
        return self._pages("stories", entity_id, f"{path_segment(entity_id)}/stories",
                           {"fields": STORY_FIELDS, "limit": self.page_size}, cursor)

    def comment_pages(self, post_id: str, cursor: str | None,
                      history: CommentHistory | None = None) -> Iterator[FetchedPage]:
        """Every comment page of a post, each with the ``/replies`` pages of its comments whose replies
        did not all come inline: one raw page holding every answer verbatim, so that the page and the
        cursor after it still land together. Graph's walks are always complete (``history`` is not used)."""
        path = f"{path_segment(post_id)}/comments"
        base = {"fields": self.comment_fields, "limit": self.comments_page_size}
        for page in self._pages("comments", post_id, path, base, cursor):
            replies: dict[str, list[dict[str, Any]]] = {}
            calls = [page.request]
            items = page.item_count
            for comment_id, after in _paged_replies(page.payload):
                answers, reply_calls = self._replies(comment_id, after)
                replies[comment_id] = answers
                calls += reply_calls
                items += sum(len(answer["data"]) for answer in answers)
            items += _inline_replies(page.payload)
            payload = {"kind": "socialsync#commentsPage", "comments": page.payload, "replies": replies}
            yield FetchedPage("comments", post_id, {"calls": calls}, page.status_code, payload, page.cursor,
                              page.next_cursor, items, units=len(calls))

    def _replies(self, comment_id: str, after: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The replies of a comment after its inline page, through ``/{comment-id}/replies`` pages."""
        path = f"{path_segment(comment_id)}/replies"
        answers, calls = [], []
        for page in self._pages("replies", comment_id, path, {"fields": REPLY_FIELDS, "limit": REPLIES_PAGE}, after):
            answers.append(page.payload)
            calls.append(page.request)
        return answers, calls

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

    # --- business discovery ----------------------------------------------------------------------
    def _discover(self, entity_id: str, after: str | None) -> tuple[dict[str, Any], int, dict[str, Any]]:
        """One business discovery answer: the public account's profile and the media page from ``after``."""
        if self.ig_user_id is None:
            raise AuthError(f"{entity_id} is a public account, read through business discovery on the app "
                            "user's own IG account: set the connection's `ig_user_id` extra to that account's id")
        username = entity_id.removeprefix("@")
        if after is not None and not SAFE_CURSOR.fullmatch(after):
            # The cursor goes inside a field expression: one that could close it must never be sent.
            raise PageAnomaly(f"business_discovery of {entity_id}: a cursor that is not a cursor: {after[:40]!r}")
        media = f"media.after({after}).limit({self.page_size})" if after else f"media.limit({self.page_size})"
        params = {"fields": f"business_discovery.username({username}){{{DISCOVERY_PROFILE_FIELDS},"
                            f"{media}{{{DISCOVERY_MEDIA_FIELDS}}}}}"}
        path = path_segment(self.ig_user_id)
        try:
            status, body = self._api.get(path, params, f"GET business_discovery of {entity_id} "
                                                       f"after={after or '-'}")
        except NotFoundError as exc:
            if exc.code == 110:
                raise NotFoundError(f"{exc}: no business or creator account is named {entity_id} (an account "
                                    f"that was renamed answers so: track its new @username)", exc.status,
                                    exc.code) from None
            # The app user's own account is not one this token reads: every discovery would fail alike.
            raise AuthError(f"{exc}: the connection's ig_user_id {self.ig_user_id} is not an IG account its "
                            "token reads; business discovery is asked on the app user's own account",
                            exc.status, exc.code) from None
        return _request(path, params), status, body

    def _discovery_pages(self, entity_id: str, cursor: str | None) -> Iterator[FetchedPage]:
        """A public account's media pages, newest first, through business discovery's nested paging;
        the first comes from the profile's answer when this client just fetched it."""
        paginator = DiscoveryMediaPaginator(cursor)
        while True:
            asked_with = paginator.cursor
            held = None
            if asked_with is None:
                with self._first_pages_lock:
                    held = self._first_pages.pop(entity_id, None)
            request, status, body = held if held is not None else self._discover(entity_id, asked_with)
            try:
                paginator.update_state(body)
            except PageAnomaly as exc:
                raise PageAnomaly(f"business_discovery of {entity_id} after={asked_with or '-'}: {exc}") from None
            yield FetchedPage("posts", entity_id, request, status, body, asked_with, paginator.cursor,
                              paginator.items, units=0.0 if held is not None else 1.0)
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


def _reply_edges(payload: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for comment in payload.get("data") or []:
        if (isinstance(comment, dict) and isinstance(comment.get("id"), str)
                and isinstance(comment.get("replies"), dict)):
            yield comment["id"], comment["replies"]


def _inline_replies(payload: dict[str, Any]) -> int:
    return sum(len(edge["data"]) for _, edge in _reply_edges(payload) if isinstance(edge.get("data"), list))


def _paged_replies(payload: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The comments of a page whose replies go on past the inline page, with the cursor to go on from.

    The inline edge is proven like any page: a ``next`` with no cursor, or with no replies, cannot be
    a page, and taking it for the end would let the pass prove replies gone that it never saw.
    """
    for comment_id, edge in _reply_edges(payload):
        try:
            GraphCursorPaginator().update_state(edge)
        except PageAnomaly as exc:
            raise PageAnomaly(f"inline replies of comment {comment_id}: {exc}") from None
        paging = edge.get("paging")
        if isinstance(paging, dict) and paging.get("next"):
            yield comment_id, paging["cursors"]["after"]


def _graph_error(response: httpx.Response, body: Any, path: str, max_wait_s: float,
                 regain_after_s: float | None) -> ApiError:
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    message = f"GET {path}: HTTP {response.status_code} {error.get('message') or response.reason_phrase}"
    if isinstance(error.get("error_user_msg"), str):
        message += f" ({error['error_user_msg']})"
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
    # 100/33: no such object, or not one this token may read; 110/2207013: business discovery knows no
    # business or creator account of that username.
    if ((code == 100 and error.get("error_subcode") == 33) or response.status_code == 404
            or (code == 110 and error.get("error_subcode") in NO_SUCH_USER_SUBCODES)):
        return NotFoundError(message, response.status_code, code)
    if response.status_code >= 500 or code in TRANSIENT_CODES or error.get("is_transient"):
        return TransientError(message, response.status_code, code, retryable=True, retry_after=wait)
    return ApiError(message, response.status_code, code)
