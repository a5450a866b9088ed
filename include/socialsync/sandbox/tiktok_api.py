"""The TikTok Research API protocol over the generated dataset: client tokens, the research calls, quota.

Served as open.tiktokapis.com/v2 serves it, with these rules (checked by tests/integration/test_tiktok_sandbox.py):

- ``POST /oauth/token/`` trades the client key and secret for a ``clt.`` token that really expires after
  ``expires_in`` seconds. Every research call needs it as ``Authorization: Bearer``; a missing, unknown or
  expired one is a 401 ``access_token_invalid`` whose message repeats the token when ``echo_token`` is on
  (as real APIs sometimes do, so a client's secret scrubbing is always exercised).
- Answers are ``{"data": ..., "error": {"code": "ok", "message": "", "log_id": ...}}``; errors are
  ``{"error": {"code", "message", "log_id"}}``. Ids (video, comment, music) are JSON integers, as TikTok's are.
- Video query: one ``and`` condition, ``username`` ``IN`` (or ``EQ``) up to 100 names; UTC days, both
  inclusive, end at most 30 days after start. Results run newest first over the listed accounts. The search
  is a fixed list of entries (see ``TikTokDataset.search_slots``) some of which TikTok filters out (private
  videos, deleted ones): a page covers entries [cursor, cursor + max_count), serves the visible videos among
  them, so it may come back short or EMPTY while ``has_more`` is true, and answers ``cursor + max_count``.
  Following ``cursor`` and ``search_id`` until ``has_more`` is false yields every video once. The
  ``search_id`` is derived from the query and the epoch (no server state): another query's, or one from an
  earlier day, is a 400 ``Search Id ... is invalid or expired``; a cursor past the search's end is a 400
  ``Invalid count or cursor``.
- Comment list: comments and replies of a video in one list, NEWEST FIRST (``TikTokDataset.comment_slots``;
  a reply's ``parent_comment_id`` is its top comment, a top comment's is the video). Deleted comments keep
  their place, so pages may be short. Only the first 1,000 entries are reachable: ``cursor + max_count`` past
  1,000 is a 400 ``Invalid count or cursor`` and the page reaching 1,000 says ``has_more: false``. An unknown
  or deleted video is a 400 ``invalid_params`` (TikTok's v2 errors have no not-found code).
- User lists (``user/followers``, ``user/following``, ``user/liked_videos``): newest first by a cursor that is a
  Unix time; a page holds entries strictly older than the cursor (0 or none: from the top) and answers the time
  of the last entry it covers. Unfollowed, un-liked and deleted entries keep their place, so pages may be
  short while ``has_more``. ``user/pinned_videos`` answers the whole list at once. An account hiding a list
  is a 400 ``invalid_params``; an unknown username is refused as user info refuses it (checked by
  tests/integration/test_tiktok_lists_sandbox.py).
- Daily quota, per day of the dataset (a new epoch is a new day): research calls that reach the API count a
  request each, invalid ones included, and the videos and comments they return count as records. Once either
  allowance is spent every research call is a 429 ``daily_quota_limit_exceeded``; the call that crosses the
  records allowance is still served in full. Not charged: token calls, 401s, quota refusals and injected
  throttles and server errors. A timeout, cut or reset fault is charged: the answer was computed and lost.
- Faults (the shared ``FaultPlan``) hit research calls only: throttles are a 429 ``rate_limit_exceeded``,
  server errors a 500 ``internal_error``; ``repeat`` serves the last video, comment or list entry before the
  cursor again at the top of the page.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, TypeAlias
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from socialsync.sandbox.faults import FaultPlan
from socialsync.sandbox.graph_api import _CutShort
from socialsync.sandbox.tiktok_dataset import COMMENT_CAP, WINDOW_DAYS, TikTokDataset
from socialsync.sandbox.tiktok_lists import FollowTruth

USERNAMES_MAX, PAGE_MAX, QUERY_DEFAULT, COMMENTS_DEFAULT, LISTS_DEFAULT = 100, 100, 20, 10, 20
USER_FIELDS = ("display_name", "bio_description", "avatar_url", "is_verified", "follower_count", "following_count",
               "likes_count", "video_count", "bio_url")
VIDEO_FIELDS = ("id", "video_description", "create_time", "username", "region_code", "view_count", "like_count",
                "comment_count", "share_count", "hashtag_names", "music_id")
COMMENT_FIELDS = ("id", "video_id", "text", "like_count", "reply_count", "parent_comment_id", "create_time")
_TOKENS_KEPT = 10_000
_BAD_CURSOR = "Invalid count or cursor"
_LIST_NAMES = {"followers": "followers", "following": "following", "liked_videos": "liked videos",
               "pinned_videos": "pinned videos"}

Serve: TypeAlias = Callable[[Request, dict[str, Any], bool], tuple[dict[str, Any], int]]


def log_id() -> str:
    """TikTok's form: the UTC time to the second, then 20 hex digits."""
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S") + secrets.token_hex(10).upper()


class TikTokError(Exception):
    """An answer in TikTok's v2 error shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JSONResponse:
        body = {"error": {"code": self.code, "message": self.message, "log_id": log_id()}}
        return JSONResponse(body, status_code=self.status)


def _invalid(message: str) -> TikTokError:
    return TikTokError(400, "invalid_params", message)


def _count(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    """An int64 parameter; TikTok takes ``"100"`` as well as ``100``."""
    raw = body.get(name, default)
    if isinstance(raw, bool) or not (isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit())):
        raise _invalid(f"Invalid parameter {name}: {raw!r}")
    if not low <= int(raw) <= high:
        raise _invalid(f"Invalid parameter {name}: {raw} is not within [{low}, {high}]")
    return int(raw)


def _day(body: dict[str, Any], name: str) -> date:
    raw = body.get(name)
    try:
        if not isinstance(raw, str) or len(raw) != 8 or not raw.isdigit():
            raise ValueError(raw)
        return datetime.strptime(raw, "%Y%m%d").date()
    except ValueError:
        raise _invalid(f"Invalid parameter {name}: {raw!r}, expected a date as YYYYMMDD") from None


class TikTokApi:
    """An ASGI endpoint answering ``/tiktok/v2/...`` like open.tiktokapis.com/v2."""

    def __init__(self, data: TikTokDataset, client_key: str, client_secret: str, counters: Counter[str], *,
                 token_ttl_s: int = 7200, requests_per_day: int = 1_000_000, records_per_day: int = 100_000_000,
                 latency_s: float = 0.0, faults: FaultPlan | None = None, echo_token: bool = True) -> None:
        self.data = data
        self.client_key, self.client_secret = client_key, client_secret
        self.counters = counters
        self.token_ttl_s = token_ttl_s
        self.requests_per_day, self.records_per_day = requests_per_day, records_per_day
        self.latency_s = latency_s
        self.faults = faults or FaultPlan()
        self.echo_token = echo_token
        self.research_scope = True  # False: every research call is a 401 scope_not_authorized
        self.requests_used = self.records_used = 0
        self._day = data.epoch
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry, newest last

    def routes(self) -> list[Route]:
        return [Route("/oauth/token/", self.token, methods=["POST"]),
                Route("/research/user/info/", self._research("user_info", self._user_info), methods=["POST"]),
                Route("/research/video/query/", self._research("video_query", self._video_query), methods=["POST"]),
                Route("/research/video/comment/list/", self._research("comment_list", self._comment_list),
                      methods=["POST"]),
                *(Route(f"/research/user/{kind}/", self._research(kind, serve), methods=["POST"])
                  for kind, serve in (("followers", self._follow_list("followers")),
                                      ("following", self._follow_list("following")),
                                      ("liked_videos", self._liked_videos), ("pinned_videos", self._pinned_videos)))]

    def reset_day(self, requests_per_day: int | None = None, records_per_day: int | None = None) -> None:
        """A new quota day: nothing used (and, when given, new daily allowances)."""
        self.requests_used = self.records_used = 0
        self._day = self.data.epoch
        if requests_per_day is not None:
            self.requests_per_day = requests_per_day
        if records_per_day is not None:
            self.records_per_day = records_per_day

    # --- tokens ---------------------------------------------------------------------------------
    def issued_tokens(self) -> list[str]:
        """The tokens handed out (the newest 10,000): for tests that look for them where they must not be."""
        return list(self._tokens)

    async def token(self, request: Request) -> Response:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        # Parsed by hand: Starlette's form parsing needs python-multipart, which socialsync does not depend on.
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
        if form.get("grant_type") != "client_credentials":
            self.counters["tiktok:token_refused"] += 1
            return JSONResponse({"error": "unsupported_grant_type", "error_description":
                                 "The grant_type must be client_credentials.", "log_id": log_id()}, status_code=400)
        if form.get("client_key") != self.client_key or form.get("client_secret") != self.client_secret:
            self.counters["tiktok:token_refused"] += 1
            return JSONResponse({"error": "invalid_client", "error_description":
                                 "The client_key or client_secret is invalid.", "log_id": log_id()}, status_code=401)
        self.counters["tiktok:token"] += 1
        token = "clt." + secrets.token_urlsafe(30)
        self._tokens[token] = time.monotonic() + self.token_ttl_s
        while len(self._tokens) > _TOKENS_KEPT:
            del self._tokens[next(iter(self._tokens))]
        return JSONResponse({"access_token": token, "expires_in": self.token_ttl_s, "token_type": "Bearer"})

    def _refusal(self, request: Request) -> TikTokError | None:
        """Why the call's token does not open the research API, if it does not."""
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        expiry = self._tokens.get(token)
        if expiry is not None and time.monotonic() < expiry:
            if self.research_scope:
                return None
            return TikTokError(401, "scope_not_authorized", "The client is not authorized for the scope "
                               "research.data.basic required by this request.")
        self.counters["tiktok:token_expired" if expiry is not None else "tiktok:unauthorized"] += 1
        if token and self.echo_token:
            return TikTokError(401, "access_token_invalid", f"The access token {token} is invalid or has "
                               "expired. Please refresh the token and retry.")
        return TikTokError(401, "access_token_invalid", "Access token is invalid, please refresh token and retry")

    # --- the research calls ---------------------------------------------------------------------
    def _research(self, kind: str, serve: Serve) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            self.counters["received:tiktok"] += 1  # every research call counts against the day's requests
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            refusal = self._refusal(request)
            if refusal is not None:
                return refusal.response()
            if self.data.epoch != self._day:
                self.reset_day()
            if self.requests_used >= self.requests_per_day or self.records_used >= self.records_per_day:
                self.counters["tiktok:quota_refused"] += 1
                return TikTokError(429, "daily_quota_limit_exceeded", "The daily quota limit was exceeded. "
                                   "Please try again after 00:00 UTC.").response()
            raw = await request.body()
            fault = self.faults.draw(f"tiktok/{kind}?{request.url.query}|{raw.decode(errors='replace')}")
            if fault:
                self.counters[f"tiktok:fault:{fault}"] += 1
                early = await self._fail(fault)
                if early is not None:
                    return early
            self.counters[f"tiktok:{kind}"] += 1
            self.counters["tiktok:requests"] += 1
            self.requests_used += 1
            try:
                body = json.loads(raw or b"{}")
                if not isinstance(body, dict):
                    raise _invalid("The request body must be a JSON object")
                data, records = serve(request, body, fault == "repeat")
            except json.JSONDecodeError:
                return self._invalid_answer(_invalid("The request body is not valid JSON"))
            except TikTokError as exc:
                return self._invalid_answer(exc)
            self.records_used += records
            self.counters["tiktok:records"] += records
            error = {"code": "ok", "message": "", "log_id": log_id()}
            response = JSONResponse({"data": data, "error": error})
            if fault in ("truncated", "reset"):  # charged, never read whole: the client cannot count them
                self.counters["tiktok:records_cut"] += records
            if fault == "truncated":
                return Response(response.body[: len(response.body) * 2 // 3], media_type="application/json")
            if fault == "reset":
                return _CutShort(response.body)
            return response

        return handle

    def _invalid_answer(self, error: TikTokError) -> Response:
        self.counters[f"tiktok:{error.code}"] += 1
        return error.response()

    async def _fail(self, fault: str) -> Response | None:
        if fault in ("throttle_429", "throttle_graph"):
            return TikTokError(429, "rate_limit_exceeded", "The API rate limit was exceeded. Please try again "
                               "later.").response()
        if fault == "server_error":
            return TikTokError(500, "internal_error", "Something is wrong. Please try again later.").response()
        if fault == "timeout":
            await asyncio.sleep(self.faults.timeout_s)
        return None

    @staticmethod
    def _fields(request: Request, allowed: tuple[str, ...]) -> list[str]:
        fields = [f.strip() for f in request.query_params.get("fields", "").split(",") if f.strip()]
        if not fields:
            raise _invalid("The fields parameter is required")
        unknown = [f for f in fields if f not in allowed]
        if unknown:
            raise _invalid(f"Invalid fields: {', '.join(unknown)}")
        return list(dict.fromkeys(fields))

    def _user_info(self, request: Request, body: dict[str, Any], repeat: bool) -> tuple[dict[str, Any], int]:
        fields = self._fields(request, USER_FIELDS)
        truth = self.data.user(self._account(body))
        return {field: getattr(truth, field) for field in fields}, 0

    def _account(self, body: dict[str, Any]) -> int:
        username = body.get("username")
        if not isinstance(username, str) or not username:
            raise _invalid("The username parameter is required")
        p = self.data.parse_username(username)
        if p is None:
            raise _invalid(f"The username {username} is invalid: cannot find the user")
        return p

    # --- video query ----------------------------------------------------------------------------
    def search_id(self, usernames: list[str], start: date, end: date) -> str:
        """Stable for a query on one day of the dataset: a 19-digit number, as TikTok's are."""
        key = f"{self.data.seed}/{self.data.epoch}/{sorted(set(usernames))}/{start}/{end}"
        return str(7 * 10**18 + int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") % 10**18)

    @staticmethod
    def _usernames(body: dict[str, Any]) -> list[str]:
        query = body.get("query")
        conditions = query.get("and") if isinstance(query, dict) else None
        if not isinstance(query, dict) or set(query) != {"and"} or not isinstance(conditions, list) \
                or len(conditions) != 1 or not isinstance(conditions[0], dict):
            raise _invalid("The sandbox serves one query shape: {\"and\": [one username condition]}")
        condition = conditions[0]
        values = condition.get("field_values")
        if condition.get("field_name") != "username" or condition.get("operation") not in ("IN", "EQ"):
            raise _invalid("The sandbox serves username IN (or EQ) conditions only")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise _invalid("field_values must be a non-empty list of usernames")
        if len(values) > USERNAMES_MAX:
            raise _invalid(f"field_values may hold at most {USERNAMES_MAX} values, got {len(values)}")
        return [v.lower() for v in values]

    def _video_query(self, request: Request, body: dict[str, Any], repeat: bool) -> tuple[dict[str, Any], int]:
        fields = self._fields(request, VIDEO_FIELDS)
        usernames = self._usernames(body)
        start, end = _day(body, "start_date"), _day(body, "end_date")
        if end < start:
            raise _invalid("end_date must not be earlier than start_date")
        if (end - start).days > WINDOW_DAYS:
            raise _invalid(f"end_date must be no more than {WINDOW_DAYS} days after start_date")
        max_count = _count(body, "max_count", QUERY_DEFAULT, 1, PAGE_MAX)
        cursor = _count(body, "cursor", 0, 0, 2**63 - 1)
        search_id = self.search_id(usernames, start, end)
        given = body.get("search_id")
        if given not in (None, "") and str(given) != search_id:
            raise _invalid(f"Search Id {given} is invalid or expired")
        accounts = [p for p in map(self.data.parse_username, usernames) if p is not None]
        slots = self.data.search_slots(accounts, start, end)
        if cursor > len(slots):
            raise _invalid(_BAD_CURSOR)
        shown, following, more = self.data.query_page(slots, cursor, max_count)
        if repeat:
            earlier = next((key for key in reversed(slots[:cursor]) if key and self.data.video_visible(*key)), None)
            shown = [earlier, *shown] if earlier else shown
        if more and len(shown) < max_count:
            self.counters["tiktok:short_pages"] += 1
        videos = [self.video_item(p, j, fields) for p, j in shown]
        return {"videos": videos, "cursor": following, "has_more": more, "search_id": search_id}, len(videos)

    def video_item(self, p: int, j: int, fields: list[str]) -> dict[str, Any]:
        video = self.data.video(p, j)
        full: dict[str, Any] = {
            "id": int(video.id), "video_description": video.video_description, "create_time": video.create_time,
            "username": video.username, "region_code": video.region_code, "view_count": video.view_count,
            "like_count": video.like_count, "comment_count": video.comment_count, "share_count": video.share_count,
            "hashtag_names": list(video.hashtag_names), "music_id": int(video.music_id)}
        return {field: full[field] for field in fields}

    # --- comment list ---------------------------------------------------------------------------
    def _comment_list(self, request: Request, body: dict[str, Any], repeat: bool) -> tuple[dict[str, Any], int]:
        fields = self._fields(request, COMMENT_FIELDS)
        raw_id = body.get("video_id")
        if isinstance(raw_id, bool) or not isinstance(raw_id, int | str) or not str(raw_id).isdigit():
            raise _invalid("The video_id parameter must be a video's id")
        max_count = _count(body, "max_count", COMMENTS_DEFAULT, 1, PAGE_MAX)
        cursor = _count(body, "cursor", 0, 0, COMMENT_CAP)
        if cursor + max_count > COMMENT_CAP:
            raise _invalid(_BAD_CURSOR)
        video = self.data.parse_video_id(raw_id)
        if video is None:
            raise _invalid(f"The video_id {raw_id} is invalid: the video does not exist or was deleted")
        p, j = video
        shown, following, more = self.data.comment_page(p, j, cursor, max_count)
        if repeat:
            visible = (key for key in reversed(self.data.comment_slots(p, j)[:cursor])
                       if self.data.comment_visible(p, j, key[0]))
            earlier = next(visible, None)
            shown = [earlier, *shown] if earlier else shown
        if more and len(shown) < max_count:
            self.counters["tiktok:short_pages"] += 1
        comments = [self.comment_item(p, j, k, r, fields) for k, r in shown]
        return {"comments": comments, "cursor": following, "has_more": more}, len(comments)

    def comment_item(self, p: int, j: int, k: int, r: int | None, fields: list[str]) -> dict[str, Any]:
        comment = self.data.comment(p, j, k, r)
        full: dict[str, Any] = {
            "id": int(comment.id), "video_id": int(comment.video_id), "text": comment.text,
            "like_count": comment.like_count, "reply_count": comment.reply_count,
            "parent_comment_id": int(comment.parent_comment_id), "create_time": comment.create_time}
        return {field: full[field] for field in fields}

    # --- user lists -----------------------------------------------------------------------------
    def _list_owner(self, body: dict[str, Any], kind: str) -> int:
        p = self._account(body)
        if self.data.list_private(p, kind):
            raise _invalid(f"The user has made their {_LIST_NAMES[kind]} list private")
        return p

    @staticmethod
    def _list_cursor(body: dict[str, Any]) -> tuple[int, int | None]:
        """``max_count`` and the cursor (None: from the top, for a missing or 0 cursor)."""
        return _count(body, "max_count", LISTS_DEFAULT, 1, PAGE_MAX), _count(body, "cursor", 0, 0, 2**63 - 1) or None

    def _short_page(self, shown: int, max_count: int, more: bool) -> None:
        if more and shown < max_count:
            self.counters["tiktok:short_pages"] += 1

    def _follow_list(self, kind: str) -> Serve:
        def serve(request: Request, body: dict[str, Any], repeat: bool) -> tuple[dict[str, Any], int]:
            max_count, cursor = self._list_cursor(body)
            p = self._list_owner(body, kind)
            shown, following, more = self.data.lists.follow_page(p, kind, cursor, max_count, repeat)
            self._short_page(len(shown), max_count, more)
            users = [self.follow_item(user) for user in shown]
            return {f"user_{kind}": users, "cursor": following, "has_more": more}, len(users)

        return serve

    @staticmethod
    def follow_item(user: FollowTruth) -> dict[str, Any]:
        return {"username": user.username, "display_name": user.display_name}

    def _liked_videos(self, request: Request, body: dict[str, Any], repeat: bool) -> tuple[dict[str, Any], int]:
        fields = self._fields(request, VIDEO_FIELDS)
        max_count, cursor = self._list_cursor(body)
        p = self._list_owner(body, "liked_videos")
        shown, following, more = self.data.lists.liked_page(p, cursor, max_count, repeat)
        self._short_page(len(shown), max_count, more)
        videos = [self.video_item(q, j, fields) for q, j, _ in shown]
        return {"user_liked_videos": videos, "cursor": following, "has_more": more}, len(videos)

    def _pinned_videos(self, request: Request, body: dict[str, Any], repeat: bool) -> tuple[dict[str, Any], int]:
        fields = self._fields(request, VIDEO_FIELDS)
        p = self._list_owner(body, "pinned_videos")
        videos = [self.video_item(p, j, fields) for j in self.data.pinned_videos(p)]
        return {"pinned_videos_list": videos}, len(videos)
