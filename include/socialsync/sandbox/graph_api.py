"""The Instagram Graph API protocol over the generated dataset: tokens, nodes, edges, discovery, paging, usage."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from socialsync.sandbox.dataset import Dataset, graph_time
from socialsync.sandbox.faults import FaultPlan
from socialsync.sandbox.fields import FieldsError, Selection, format_fields, parse_fields, project
from socialsync.sandbox.instagram_dataset import InstagramDataset, StoryTruth

_VERSION = re.compile(r"^v\d+\.\d+$")
MEDIA_LIMIT_DEFAULT, MEDIA_LIMIT_MAX = 25, 100
COMMENTS_LIMIT_DEFAULT, COMMENTS_LIMIT_MAX = 25, 50
REPLIES_LIMIT_DEFAULT, REPLIES_LIMIT_MAX = 25, 50
INLINE_REPLIES = 5  # replies a comment carries inline (``replies.limit(N)`` asks more, up to the cap)
STORIES_LIMIT_DEFAULT, STORIES_LIMIT_MAX = 25, 100
NO_APP_USER = "17841400000000000"  # the app user of a token that manages no account
REQUEST_LOG_MAX = 500_000
NO_SUCH_USER_SUBCODE = 2207013


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
                subcode: int | None = None, **extra: str) -> JSONResponse:
    error: dict[str, Any] = {"message": message, "type": kind, "code": code,
                             "fbtrace_id": hashlib.sha1(message.encode()).hexdigest()[:11]}
    if subcode is not None:
        error["error_subcode"] = subcode
    error |= extra
    return JSONResponse({"error": error}, status_code=status)


def _no_such_user(username: str) -> JSONResponse:
    """Business discovery's answer for a username that is no business or creator account right now."""
    what = ("is not a business or creator account" if InstagramDataset.is_personal(username)
            else "cannot be found")
    return graph_error(400, "Invalid user id", 110, subcode=NO_SUCH_USER_SUBCODE,
                       error_user_title="Cannot find User",
                       error_user_msg=f"The user with username: {username} {what}.")


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
    """An ASGI endpoint answering ``/{version}/{node}[/{edge}]`` like graph.facebook.com.

    Each token manages some profiles (its owned accounts); the first is its app user, on whose node
    business discovery reads any professional account's public data. ``access_token`` stays the
    default token.
    """

    def __init__(self, dataset: Dataset, access_token: str, usage: UsageMeter, counters: Counter[str],
                 latency_s: float = 0.0, faults: FaultPlan | None = None, instagram: InstagramDataset | None = None,
                 tokens: Mapping[str, Sequence[int]] | None = None) -> None:
        self.dataset = dataset
        self.access_token = access_token
        self.usage = usage
        self.counters = counters
        self.latency_s = latency_s
        self.faults = faults or FaultPlan()
        self.instagram = instagram or InstagramDataset(dataset)
        listed = tokens if tokens is not None else {access_token: self.instagram.managed_profiles()}
        # A public-only profile is managed by no token, whatever a config lists: only discovery reads it.
        self.tokens: dict[str, tuple[int, ...]] = {
            token: tuple(p for p in profiles if not self.instagram.public_only(p))
            for token, profiles in listed.items()}
        self._managed = {token: frozenset(profiles) for token, profiles in self.tokens.items()}
        self.request_log: deque[tuple[str, str]] = deque(maxlen=REQUEST_LOG_MAX)  # (token as sent, path)

    def app_user_id(self, token: str) -> str:
        """The token's own IG account: the first profile it manages."""
        managed = self.tokens[token]
        return self.dataset.profile_id(managed[0]) if managed else NO_APP_USER

    def manages(self, token: str, p: int) -> bool:
        return p in self._managed[token]

    async def handle(self, request: Request) -> Response:
        self.counters["received:graph"] += 1  # every call sent: what the app's rate limit counts
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        segments = [s for s in request.url.path.split("/") if s]
        if segments and _VERSION.match(segments[0]):
            segments = segments[1:]
        node = segments[0] if segments else ""
        token = self._token(request)
        if token not in self.tokens:
            self.counters["graph:unauthorized"] += 1
            return graph_error(400, "Invalid OAuth access token - Cannot parse access token", 190)
        self.request_log.append((token, request.url.path))
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
            response = self._route(request, segments, token, repeat=fault == "repeat")
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

    @staticmethod
    def _token(request: Request) -> str:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").removeprefix("OAuth ").strip() if header else ""
        return token or request.query_params.get("access_token", "")

    def _usage_headers(self, response: Response, node: str, percent: int, regain_minutes: int = 0) -> None:
        app = {"call_count": percent, "total_cputime": percent // 2, "total_time": percent // 2}
        response.headers["X-App-Usage"] = json.dumps(app)
        buc = {"type": "instagram", "call_count": percent, "total_cputime": percent // 2,
               "total_time": percent // 2, "estimated_time_to_regain_access": regain_minutes}
        response.headers["X-Business-Use-Case-Usage"] = json.dumps({node: [buc]})

    def _route(self, request: Request, segments: list[str], token: str, repeat: bool = False) -> JSONResponse:
        if len(segments) == 1:
            return self._node_or_discovery(request, segments[0], token, repeat)
        edges = {"media": self._media_edge, "comments": self._comments_edge, "replies": self._replies_edge,
                 "stories": self._stories_edge}
        if len(segments) == 2 and segments[1] in edges:
            self.counters[f"graph:{segments[1]}"] += 1
            return edges[segments[1]](request, segments[0], token, repeat)
        self.counters["graph:unknown"] += 1
        return graph_error(400, "Unknown path components: /" + "/".join(segments[1:]), 2500)

    def _node_or_discovery(self, request: Request, node_id: str, token: str, repeat: bool) -> JSONResponse:
        try:
            selection = parse_fields(request.query_params.get("fields", "id"))
        except FieldsError:
            self.counters["graph:node"] += 1  # as before discovery existed: a bad expression is a node request
            raise
        if "business_discovery" in selection:
            self.counters["graph:discovery"] += 1
            return self._discovery(node_id, token, selection, repeat)
        self.counters["graph:node"] += 1
        return self._node(node_id, token, selection)

    # --- nodes ----------------------------------------------------------------------------------
    def _missing(self, node_id: str) -> JSONResponse:
        return graph_error(
            400,
            f"Unsupported get request. Object with ID '{node_id}' does not exist, cannot be loaded due "
            "to missing permissions, or does not support this operation.",
            100, kind="GraphMethodException", subcode=33,
        )

    def _node(self, node_id: str, token: str, selection: Selection) -> JSONResponse:
        p = self.dataset.parse_profile_id(node_id)
        if p is not None and self.manages(token, p):
            return JSONResponse(project(self.profile_node(p), selection))
        post = self.dataset.parse_post_id(node_id)
        if post is not None and self.manages(token, post[0]):
            return JSONResponse(project(self.media_node(*post), selection))
        if node_id == NO_APP_USER == self.app_user_id(token):
            return JSONResponse(project({"id": node_id}, selection))
        return self._missing(node_id)

    def profile_node(self, p: int) -> dict[str, Any]:
        truth = self.dataset.profile(p)
        return {
            "id": truth.id, "username": self.instagram.username(p), "name": truth.name,
            "biography": truth.biography, "followers_count": truth.followers_count,
            "follows_count": truth.follows_count, "media_count": truth.media_count,
            "profile_picture_url": truth.profile_picture_url, "website": truth.website,
        }

    def media_node(self, p: int, j: int) -> dict[str, Any]:
        post = self.dataset.post(p, j)
        comments = self.instagram.comments_count(p, j)  # replies included, as Graph counts them
        if self.faults.malformed(post.id):  # a record Graph sends broken, every time
            return {"id": post.id, "media_type": "HOLOGRAM", "timestamp": "not-a-time", "comments_count": comments}
        node: dict[str, Any] = {
            "id": post.id, "caption": post.caption, "media_type": post.media_type,
            "media_product_type": post.media_product_type, "media_url": post.media_url,
            "thumbnail_url": post.thumbnail_url, "permalink": post.permalink,
            "timestamp": graph_time(post.timestamp), "like_count": post.like_count,
            "comments_count": comments, "username": post.username,
            "owner": {"id": post.owner_id}, "is_comment_enabled": True,
        }
        if post.children:
            node["children"] = {"data": [
                {"id": c.id, "media_type": c.media_type, "media_url": c.media_url,
                 "thumbnail_url": c.thumbnail_url, "timestamp": graph_time(post.timestamp)}
                for c in post.children
            ]}
        return node

    # --- business discovery ---------------------------------------------------------------------
    def _discovery(self, node_id: str, token: str, selection: Selection, repeat: bool) -> JSONResponse:
        """``business_discovery.username(NAME){...}`` on the token's app user: any account's public data."""
        app_user = self.app_user_id(token)
        if node_id != app_user:
            return self._missing(node_id)
        username = selection.modifier("business_discovery", "username")
        if not username:
            raise FieldsError("(#100) business_discovery needs a username: business_discovery.username(NAME)")
        p = None if self.instagram.is_personal(username) else self.instagram.parse_username(username)
        if p is None:
            return _no_such_user(username)
        wanted = selection["business_discovery"] or Selection({"id": None})
        account = project(self.profile_node(p), wanted)
        if "media" in wanted:
            account["media"] = self._discovery_media(p, wanted, repeat)
        own = Selection({name: sub for name, sub in selection.items() if name != "business_discovery"})
        owner = self.dataset.parse_profile_id(app_user)
        body = project(self.profile_node(owner), own) if owner is not None else {}
        return JSONResponse(body | {"business_discovery": account, "id": app_user})

    def _discovery_media(self, p: int, wanted: Selection, repeat: bool) -> dict[str, Any]:
        """One page of the account's media, asked inside the expression (``media.after(C).limit(N)``)."""
        limit = _limit_value(wanted.modifier("media", "limit"), MEDIA_LIMIT_DEFAULT, MEDIA_LIMIT_MAX)
        parent, epoch = self.dataset.profile_id(p), self.dataset.epoch
        after = wanted.modifier("media", "after")
        before_index = _uncursor("bd_media", parent, after, epoch) if after else None
        taken, more = page_indexes(lambda before: self.instagram.posts_newest_first(p, before), parent,
                                   before_index, limit)
        if not taken:
            return {"data": []}
        items = wanted["media"] or Selection({"id": None})
        shown = [before_index, *taken] if repeat and before_index is not None else taken
        cursors = {"before": _cursor("bd_media", parent, taken[0] + 1, epoch)}
        if more:  # discovery's last page has no ``after``, and no page has a ``next`` link
            cursors["after"] = _cursor("bd_media", parent, taken[-1], epoch)
        return {"data": [project(self.discovery_media_node(p, j), items) for j in shown],
                "paging": {"cursors": cursors}}

    def discovery_media_node(self, p: int, j: int) -> dict[str, Any]:
        node = self.media_node(p, j)
        if self.instagram.likes_hidden(p, j):  # the owner hid the count: discovery omits the field
            node.pop("like_count", None)
        return node

    # --- edges ----------------------------------------------------------------------------------
    def _limit(self, request: Request, default: int, cap: int) -> int:
        return _limit_value(request.query_params.get("limit"), default, cap)

    def _page(self, request: Request, kind: str, parent: str, ordered: Callable[[int | None], Iterator[int]],
              limit: int, render: Callable[[int], dict[str, Any]], token: str, repeat: bool = False,
              oldest_first: bool = False) -> JSONResponse:
        after = request.query_params.get("after")
        epoch = self.dataset.epoch
        before_index = _uncursor(kind, parent, after, epoch) if after else None
        taken, more = page_indexes(ordered, parent, before_index, limit)
        if not taken:
            return JSONResponse({"data": []})
        selection = parse_fields(request.query_params.get("fields", "id"))
        shown = [before_index, *taken] if repeat and before_index is not None else taken
        body: dict[str, Any] = {"data": [project(render(i), selection) for i in shown]}
        paging: dict[str, Any] = {"cursors": _cursors(kind, parent, taken, epoch, oldest_first)}
        # Graph's paging links repeat the access token the call was made with, however it was sent:
        # a client must scrub them before it stores a page.
        echo = {"access_token": token}
        if more:
            paging["next"] = str(request.url.include_query_params(after=paging["cursors"]["after"], **echo))
        if after:
            paging["previous"] = str(request.url.remove_query_params("after").include_query_params(
                before=paging["cursors"]["before"], **echo))
        body["paging"] = paging
        return JSONResponse(body)

    def _media_edge(self, request: Request, node_id: str, token: str, repeat: bool = False) -> JSONResponse:
        p = self.dataset.parse_profile_id(node_id)
        if p is None or not self.manages(token, p):
            return self._missing(node_id)
        limit = self._limit(request, MEDIA_LIMIT_DEFAULT, MEDIA_LIMIT_MAX)
        return self._page(request, "media", node_id,
                          lambda before: self.dataset.posts_newest_first(p, before), limit,
                          lambda j: self.media_node(p, j), token, repeat)

    def _comments_edge(self, request: Request, node_id: str, token: str, repeat: bool = False) -> JSONResponse:
        post = self.dataset.parse_post_id(node_id)
        if post is None or not self.manages(token, post[0]):
            return self._missing(node_id)
        p, j = post
        limit = self._limit(request, COMMENTS_LIMIT_DEFAULT, COMMENTS_LIMIT_MAX)
        selection = parse_fields(request.query_params.get("fields", "id"))

        def render(k: int) -> dict[str, Any]:
            node = self.comment_node(p, j, k)
            if "replies" in selection:
                edge = self._inline_replies(request, token, (p, j, k), selection)
                if edge is not None:  # Graph leaves the field out for a comment nobody answered
                    node["replies"] = edge
            return node

        return self._page(request, "comments", node_id,
                          lambda before: self.dataset.comments_newest_first(p, j, before), limit, render, token,
                          repeat)

    def comment_node(self, p: int, j: int, k: int) -> dict[str, Any]:
        c = self.dataset.comment(p, j, k)
        return {"id": c.id, "text": c.text, "timestamp": graph_time(c.timestamp), "username": c.username,
                "like_count": c.like_count, "from": {"id": c.author_id, "username": c.username},
                "hidden": False}

    def _inline_replies(self, request: Request, token: str, comment: tuple[int, int, int],
                        selection: Selection) -> dict[str, Any] | None:
        """A comment's ``replies`` field: the first replies, oldest first, with a ``next`` to ``/replies``."""
        p, j, k = comment
        limit = _limit_value(selection.modifier("replies", "limit"), INLINE_REPLIES, REPLIES_LIMIT_MAX)
        first = list(islice(self.instagram.replies_oldest_first(p, j, k), limit + 1))
        if not first:
            return None
        taken, comment_id = first[:limit], self.dataset.comment_id(p, j, k)
        paging: dict[str, Any] = {"cursors": _cursors("replies", comment_id, taken, self.dataset.epoch, True)}
        if len(first) > limit:
            fields = format_fields(selection["replies"] or Selection({"id": None}))
            query = urlencode({"fields": fields, "limit": limit, "after": paging["cursors"]["after"],
                               "access_token": token})
            path = f"{_version_prefix(request)}/{comment_id}/replies"
            paging["next"] = str(request.url.replace(path=path, query=query))
        return {"data": [self.reply_node(p, j, k, r) for r in taken], "paging": paging}

    def _replies_edge(self, request: Request, node_id: str, token: str, repeat: bool = False) -> JSONResponse:
        comment = self.instagram.parse_comment_id(node_id)
        if comment is None or not self.manages(token, comment[0]):
            return self._missing(node_id)
        p, j, k = comment
        limit = self._limit(request, REPLIES_LIMIT_DEFAULT, REPLIES_LIMIT_MAX)
        return self._page(request, "replies", node_id,
                          lambda after: self.instagram.replies_oldest_first(p, j, k, after), limit,
                          lambda r: self.reply_node(p, j, k, r), token, repeat, oldest_first=True)

    def reply_node(self, p: int, j: int, k: int, r: int) -> dict[str, Any]:
        reply = self.instagram.reply(p, j, k, r)
        return {"id": reply.id, "text": reply.text, "timestamp": graph_time(reply.timestamp),
                "username": reply.username, "like_count": reply.like_count,
                "from": {"id": reply.author_id, "username": reply.username}, "parent_id": reply.parent_id}

    def _stories_edge(self, request: Request, node_id: str, token: str, repeat: bool = False) -> JSONResponse:
        p = self.dataset.parse_profile_id(node_id)
        if p is None or not self.manages(token, p):
            return self._missing(node_id)
        stories = self.instagram.live_stories(p)  # newest first: story s sits at position len - 1 - s
        count = len(stories)
        limit = self._limit(request, STORIES_LIMIT_DEFAULT, STORIES_LIMIT_MAX)
        return self._page(request, "stories", node_id, lambda before: _newest_first(count, before), limit,
                          lambda s: story_node(stories[count - 1 - s]), token, repeat)


def story_node(story: StoryTruth) -> dict[str, Any]:
    return {"id": story.id, "media_type": story.media_type, "media_product_type": story.media_product_type,
            "media_url": story.media_url, "thumbnail_url": story.thumbnail_url, "permalink": story.permalink,
            "timestamp": graph_time(story.timestamp), "caption": story.caption}


def _newest_first(count: int, before: int | None) -> Iterator[int]:
    top = count if before is None else min(before, count)
    return iter(range(top - 1, -1, -1))


def _limit_value(raw: str | None, default: int, cap: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise FieldsError(f"(#100) Param limit must be a positive integer, got {raw!r}")
    return min(int(raw), cap)


def _cursors(kind: str, parent: str, taken: list[int], epoch: int, oldest_first: bool = False) -> dict[str, str]:
    """A page's Graph cursors: ``after`` resumes past its last item, ``before`` points at its first."""
    first = taken[0] - 1 if oldest_first else taken[0] + 1
    return {"before": _cursor(kind, parent, first, epoch), "after": _cursor(kind, parent, taken[-1], epoch)}


def _version_prefix(request: Request) -> str:
    first = next((s for s in request.url.path.split("/") if s), "")
    return f"/{first}" if _VERSION.match(first) else ""


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


def discovery_pages(ig: InstagramDataset, p: int, limit: int, before_index: int | None = None) -> list[list[int]]:
    """The media index pages a client walking business discovery of profile ``p`` gets (``[[]]``: none)."""
    return walk_pages(lambda before: ig.posts_newest_first(p, before), ig.dataset.profile_id(p),
                      min(limit, MEDIA_LIMIT_MAX), before_index)


def reply_pages(ig: InstagramDataset, p: int, j: int, k: int, inline: int = INLINE_REPLIES,
                limit: int = REPLIES_LIMIT_MAX) -> int:
    """The ``/replies`` requests a client asking ``limit`` needs for comment ``k`` past its inline page."""
    inline = min(inline, REPLIES_LIMIT_MAX)
    first = list(islice(ig.replies_oldest_first(p, j, k), inline + 1))
    if len(first) <= inline:
        return 0
    pages = walk_pages(lambda after: ig.replies_oldest_first(p, j, k, after), ig.dataset.comment_id(p, j, k),
                       min(limit, REPLIES_LIMIT_MAX), first[inline - 1])
    return len(pages)
