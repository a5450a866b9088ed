"""The Instagram Graph API protocol over the generated dataset: nodes, edges, paging, errors, usage."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import re
import time
from collections import Counter, deque
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from socialsync.sandbox.dataset import Dataset, graph_time
from socialsync.sandbox.faults import FaultPlan
from socialsync.sandbox.fields import FieldsError, parse_fields, project

_VERSION = re.compile(r"^v\d+\.\d+$")
MEDIA_LIMIT_DEFAULT, MEDIA_LIMIT_MAX = 25, 100
COMMENTS_LIMIT_DEFAULT, COMMENTS_LIMIT_MAX = 25, 50


class UsageMeter:
    """Calls in the last hour as a percentage of a quota, reported the way Graph's headers do."""

    def __init__(self, calls_per_hour: int) -> None:
        self.calls_per_hour = max(1, calls_per_hour)
        self._calls: deque[float] = deque()

    def _trim(self) -> None:
        now = time.monotonic()
        while self._calls and self._calls[0] < now - 3600:
            self._calls.popleft()

    @property
    def percent(self) -> int:
        self._trim()
        return min(100, len(self._calls) * 100 // self.calls_per_hour)

    @property
    def exhausted(self) -> bool:
        self._trim()
        return len(self._calls) >= self.calls_per_hour

    def record(self) -> int:
        self._calls.append(time.monotonic())
        return self.percent

    def reset(self, calls_per_hour: int | None = None) -> None:
        self._calls.clear()
        if calls_per_hour is not None:
            self.calls_per_hour = max(1, calls_per_hour)


class _CutShort(Response):
    """Declares the whole body's length, sends half of it, then ends: the client sees a reset."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(self.body)).encode())]})
        try:
            await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2]})
        except RuntimeError:
            pass  # the server refuses to finish a short body and drops the connection: the reset we want


def graph_error(status: int, message: str, code: int, kind: str = "OAuthException",
                subcode: int | None = None) -> JSONResponse:
    error: dict[str, Any] = {"message": message, "type": kind, "code": code,
                             "fbtrace_id": hashlib.sha1(message.encode()).hexdigest()[:11]}
    if subcode is not None:
        error["error_subcode"] = subcode
    return JSONResponse({"error": error}, status_code=status)


class CursorExpired(FieldsError):
    """A cursor from an earlier day of the dataset: Graph cursors do not live forever."""


def _cursor(kind: str, parent: str, index: int, epoch: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{parent}:{index}:{epoch}".encode()).decode().rstrip("=")


def _uncursor(kind: str, parent: str, cursor: str, epoch: int) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        got_kind, got_parent, index, issued = raw.split(":")
        if got_kind != kind or got_parent != parent:
            raise ValueError(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise FieldsError(f"Invalid cursor: {cursor}") from exc
    if int(issued) != epoch:
        raise CursorExpired("The cursor has expired; start again from the first page")
    return int(index)


class GraphApi:
    """An ASGI endpoint answering ``/{version}/{node}[/{edge}]`` like graph.facebook.com."""

    def __init__(self, dataset: Dataset, access_token: str, usage: UsageMeter, counters: Counter[str],
                 latency_s: float = 0.0, faults: FaultPlan | None = None) -> None:
        self.dataset = dataset
        self.access_token = access_token
        self.usage = usage
        self.counters = counters
        self.latency_s = latency_s
        self.faults = faults or FaultPlan()

    async def handle(self, request: Request) -> Response:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        segments = [s for s in request.url.path.split("/") if s]
        if segments and _VERSION.match(segments[0]):
            segments = segments[1:]
        node = segments[0] if segments else ""
        if not self._authorized(request):
            self.counters["graph:unauthorized"] += 1
            return graph_error(400, "Invalid OAuth access token - Cannot parse access token", 190)
        if self.usage.exhausted:
            self.counters["graph:quota_refused"] += 1
            response = graph_error(403, "(#4) Application request limit reached", 4)
            self._usage_headers(response, node, 100, regain_minutes=60)
            return response
        query = "&".join(f"{k}={v}" for k, v in sorted(request.query_params.items()) if k != "access_token")
        fault = self.faults.draw(f"{request.url.path}?{query}")
        if fault:
            self.counters[f"fault:{fault}"] += 1
            early = await self._fail(fault, node)
            if early is not None:
                return early
        try:
            response = self._route(request, segments, repeat=fault == "repeat")
        except CursorExpired as exc:
            response = graph_error(400, str(exc), 100, kind="GraphMethodException", subcode=2018116)
        except FieldsError as exc:
            response = graph_error(400, str(exc), 100, kind="GraphMethodException")
        percent = self.usage.record()
        self._usage_headers(response, node, percent)
        if fault == "truncated" and response.status_code == 200:
            cut = response.body[: len(response.body) * 2 // 3]
            return Response(cut, media_type="application/json", headers=dict(response.headers) | {
                "content-length": str(len(cut))})
        if fault == "reset" and response.status_code == 200:
            return _CutShort(response.body)
        return response

    async def _fail(self, fault: str, node: str) -> Response | None:
        if fault == "throttle_429":
            response = graph_error(429, "(#4) Application request limit reached", 4)
            response.headers["Retry-After"] = f"{self.faults.retry_after_s:g}"
            return response
        if fault == "throttle_graph":
            code = (17, 32, 613, 80002)[len(node) % 4]
            response = graph_error(400, f"(#{code}) User request limit reached", code)
            self._usage_headers(response, node, 100)
            return response
        if fault == "server_error":
            return JSONResponse({"error": {"message": "An unexpected error has occurred. Please retry your "
                                           "request later.", "type": "OAuthException", "code": 2,
                                           "is_transient": True}}, status_code=503)
        if fault == "timeout":
            await asyncio.sleep(self.faults.timeout_s)
        return None

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").removeprefix("OAuth ").strip() if header else ""
        token = token or request.query_params.get("access_token", "")
        return token == self.access_token

    def _usage_headers(self, response: Response, node: str, percent: int, regain_minutes: int = 0) -> None:
        app = {"call_count": percent, "total_cputime": percent // 2, "total_time": percent // 2}
        response.headers["X-App-Usage"] = json.dumps(app)
        buc = {"type": "instagram", "call_count": percent, "total_cputime": percent // 2,
               "total_time": percent // 2, "estimated_time_to_regain_access": regain_minutes}
        response.headers["X-Business-Use-Case-Usage"] = json.dumps({node: [buc]})

    def _route(self, request: Request, segments: list[str], repeat: bool = False) -> JSONResponse:
        params = request.query_params
        if len(segments) == 1:
            self.counters["graph:node"] += 1
            return self._node(segments[0], params.get("fields", "id"))
        if len(segments) == 2 and segments[1] == "media":
            self.counters["graph:media"] += 1
            return self._media_edge(request, segments[0], repeat)
        if len(segments) == 2 and segments[1] == "comments":
            self.counters["graph:comments"] += 1
            return self._comments_edge(request, segments[0], repeat)
        self.counters["graph:unknown"] += 1
        return graph_error(400, "Unknown path components: /" + "/".join(segments[1:]), 2500)

    # --- nodes ----------------------------------------------------------------------------------
    def _missing(self, node_id: str) -> JSONResponse:
        return graph_error(
            400,
            f"Unsupported get request. Object with ID '{node_id}' does not exist, cannot be loaded due "
            "to missing permissions, or does not support this operation.",
            100, kind="GraphMethodException", subcode=33,
        )

    def _node(self, node_id: str, fields: str) -> JSONResponse:
        selection = parse_fields(fields)
        p = self.dataset.parse_profile_id(node_id)
        if p is not None:
            return JSONResponse(project(self.profile_node(p), selection))
        post = self.dataset.parse_post_id(node_id)
        if post is not None:
            return JSONResponse(project(self.media_node(*post), selection))
        return self._missing(node_id)

    def profile_node(self, p: int) -> dict[str, Any]:
        truth = self.dataset.profile(p)
        return {
            "id": truth.id, "username": truth.username, "name": truth.name, "biography": truth.biography,
            "followers_count": truth.followers_count, "follows_count": truth.follows_count,
            "media_count": truth.media_count, "profile_picture_url": truth.profile_picture_url,
            "website": truth.website,
        }

    def media_node(self, p: int, j: int) -> dict[str, Any]:
        post = self.dataset.post(p, j)
        if self.faults.malformed(post.id):  # a record Graph sends broken, every time
            return {"id": post.id, "media_type": "HOLOGRAM", "timestamp": "not-a-time",
                    "comments_count": post.comments_count}
        node: dict[str, Any] = {
            "id": post.id, "caption": post.caption, "media_type": post.media_type,
            "media_product_type": post.media_product_type, "media_url": post.media_url,
            "thumbnail_url": post.thumbnail_url, "permalink": post.permalink,
            "timestamp": graph_time(post.timestamp), "like_count": post.like_count,
            "comments_count": post.comments_count, "username": post.username,
            "owner": {"id": post.owner_id}, "is_comment_enabled": True,
        }
        if post.children:
            node["children"] = {"data": [
                {"id": c.id, "media_type": c.media_type, "media_url": c.media_url,
                 "thumbnail_url": c.thumbnail_url, "timestamp": graph_time(post.timestamp)}
                for c in post.children
            ]}
        return node

    # --- edges ----------------------------------------------------------------------------------
    def _limit(self, request: Request, default: int, cap: int) -> int:
        raw = request.query_params.get("limit")
        if raw is None:
            return default
        if not raw.isdigit() or int(raw) < 1:
            raise FieldsError(f"(#100) Param limit must be a positive integer, got {raw!r}")
        return min(int(raw), cap)

    def _page(self, request: Request, kind: str, parent: str, newest_first: Any, limit: int,
              render: Any, repeat: bool = False) -> JSONResponse:
        after = request.query_params.get("after")
        epoch = self.dataset.epoch
        before_index = _uncursor(kind, parent, after, epoch) if after else None
        taken, more = page_indexes(newest_first, parent, before_index, limit)
        if not taken:
            return JSONResponse({"data": []})
        selection = parse_fields(request.query_params.get("fields", "id"))
        shown = [before_index, *taken] if repeat and before_index is not None else taken
        body: dict[str, Any] = {"data": [project(render(i), selection) for i in shown]}
        paging: dict[str, Any] = {"cursors": {"before": _cursor(kind, parent, taken[0] + 1, epoch),
                                              "after": _cursor(kind, parent, taken[-1], epoch)}}
        # Graph's paging links repeat the access token the call was made with, however it was sent:
        # a client must scrub them before it stores a page.
        token = {"access_token": self.access_token}
        if more:
            paging["next"] = str(request.url.include_query_params(after=paging["cursors"]["after"], **token))
        if after:
            paging["previous"] = str(request.url.remove_query_params("after").include_query_params(
                before=paging["cursors"]["before"], **token))
        body["paging"] = paging
        return JSONResponse(body)

    def _media_edge(self, request: Request, node_id: str, repeat: bool = False) -> JSONResponse:
        p = self.dataset.parse_profile_id(node_id)
        if p is None:
            return self._missing(node_id)
        limit = self._limit(request, MEDIA_LIMIT_DEFAULT, MEDIA_LIMIT_MAX)
        return self._page(request, "media", node_id,
                          lambda before: self.dataset.posts_newest_first(p, before), limit,
                          lambda j: self.media_node(p, j), repeat)

    def _comments_edge(self, request: Request, node_id: str, repeat: bool = False) -> JSONResponse:
        post = self.dataset.parse_post_id(node_id)
        if post is None:
            return self._missing(node_id)
        p, j = post
        limit = self._limit(request, COMMENTS_LIMIT_DEFAULT, COMMENTS_LIMIT_MAX)
        return self._page(request, "comments", node_id,
                          lambda before: self.dataset.comments_newest_first(p, j, before), limit,
                          lambda k: self.comment_node(p, j, k), repeat)

    def comment_node(self, p: int, j: int, k: int) -> dict[str, Any]:
        c = self.dataset.comment(p, j, k)
        return {"id": c.id, "text": c.text, "timestamp": graph_time(c.timestamp), "username": c.username,
                "like_count": c.like_count, "from": {"id": c.author_id, "username": c.username},
                "hidden": False}


def page_indexes(newest_first: Any, parent: str, before_index: int | None, limit: int) -> tuple[list[int], bool]:
    """The item indexes of one page and whether more follow: the sandbox's paging rule.

    Real pages can come back short of ``limit`` (filtered items); so do some of ours.
    """
    size = limit
    start_key = hashlib.sha1(f"{parent}:{before_index}".encode()).digest()[0]
    if limit > 3 and start_key % 4 == 0:
        size = limit - 1 - start_key % 3
    indexes = newest_first(before_index)
    taken: list[int] = []
    for index in indexes:
        taken.append(index)
        if len(taken) == size:
            break
    return taken, next(indexes, None) is not None


def walk_pages(newest_first: Any, parent: str, limit: int, before_index: int | None = None) -> list[list[int]]:
    """Every page a client walking from ``before_index`` (None: the top) gets: for exact request counts."""
    pages: list[list[int]] = []
    while True:
        taken, more = page_indexes(newest_first, parent, before_index, limit)
        if not taken:
            return pages if pages else [[]]
        pages.append(taken)
        if not more:
            return pages
        before_index = taken[-1]
