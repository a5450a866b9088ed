"""The TikTok Research API client (httpx): user info, video queries over many users, comment lists.

The connection holds the client key (login) and secret (password); the client trades them for a
client token (``POST /v2/oauth/token/``), renews it before it expires and when the API calls it
invalid, and never lets either reach a page, an error or a log. Video queries list up to 100 users
at once over windows of at most 30 days: a walk goes newest window first, and each user leaves it at
its floor (yesterday's sync minus the lookback) or, on a first sync, once all its videos were seen.
A video's comments (replies in the same list) are reachable only to the 1,000th.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from socialsync.extract.calls import JsonApi, JsonApiClient, http_clients
from socialsync.networks.base import (
    ApiCredentials,
    ApiError,
    AuthError,
    CommentHistory,
    CursorExpiredError,
    FetchedPage,
    NotFoundError,
    PageAnomaly,
    PostsWalk,
    QuotaExhaustedError,
    ThrottledError,
    TransientError,
    Unavailable,
    WalkStep,
)

USER_FIELDS = ("display_name,bio_description,avatar_url,is_verified,follower_count,following_count,likes_count,"
               "video_count,bio_url")
VIDEO_FIELDS = ("id,video_description,create_time,username,region_code,view_count,like_count,comment_count,"
                "share_count,hashtag_names,music_id")
COMMENT_FIELDS = "id,video_id,text,like_count,reply_count,parent_comment_id,create_time"
USERS_PER_QUERY = 100
MAX_PAGE = 100
WINDOW_DAYS = 30  # a video query's end_date is at most 30 days after its start_date
COMMENT_CAP = 1_000  # only the first 1,000 comments of a video are reachable
# A user's lists: where each is asked for, the field of ``data`` that holds it, and the query it takes.
LIST_PATHS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "followers": ("research/user/followers/", "user_followers", {}),
    "following": ("research/user/following/", "user_following", {}),
    "liked_videos": ("research/user/liked_videos/", "user_liked_videos", {"fields": VIDEO_FIELDS}),
    "pinned_videos": ("research/user/pinned_videos/", "pinned_videos_list", {"fields": VIDEO_FIELDS}),
}
UNPAGED_LISTS = frozenset({"pinned_videos"})  # answered whole: no max_count, cursor or has_more
DEFAULT_HORIZON_DAYS = 730
DEFAULT_IN_FLIGHT = 8
RENEW_BEFORE_S = 300  # a token is renewed this long before it expires


class ClientToken:
    """A client-credentials token, shared by a task's workers, renewed when due or refused."""

    def __init__(self, base_url: str, key: str, secret: str, timeout: float,
                 transport: httpx.BaseTransport | None, on_new: Any) -> None:
        self._http = http_clients(base_url, {}, timeout, transport)()
        self._key, self._secret = key, secret
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self._on_new = on_new
        self.issued = 0

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.current()}"}

    def current(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                self._renew()
            assert self._token is not None
            return self._token

    def refused(self, token_seen: str | None = None) -> None:
        """The API called the token invalid: the next request gets a new one."""
        with self._lock:
            if token_seen is None or token_seen == self._token:
                self._token = None

    def _renew(self) -> None:
        try:
            response = self._http.post("oauth/token/", data={
                "client_key": self._key, "client_secret": self._secret, "grant_type": "client_credentials"})
        except httpx.HTTPError as exc:
            raise TransientError(f"POST oauth/token/: {type(exc).__name__}", retryable=True) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code in (400, 401, 403):
            raise AuthError(f"POST oauth/token/: HTTP {response.status_code}: the client key or secret was refused",
                            response.status_code, "invalid_client")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not response.is_success or not isinstance(token, str) or not token:
            raise TransientError(f"POST oauth/token/: HTTP {response.status_code} without a token", retryable=True)
        expires_in = body.get("expires_in")
        self._token = token
        lifetime = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else 7200.0
        self._expires = time.monotonic() + lifetime - min(RENEW_BEFORE_S, lifetime / 10)  # renewed before it ends
        self.issued += 1
        self._on_new(token)

    def close(self) -> None:
        self._http.close()


class TikTokClient(JsonApiClient):
    """Talks the TikTok Research API protocol; only the connection's host, key and secret say where to.

    Its units are Research calls, sent and refused alike (token calls are free: another client makes
    them); the day's records allowance counts the videos and comments the answers held.
    """

    def __init__(self, credentials: ApiCredentials, transport: httpx.BaseTransport | None = None) -> None:
        options = credentials.options
        self.page_size = max(1, min(MAX_PAGE, int(options.get("page_size", MAX_PAGE))))
        self.comments_page_size = max(1, min(MAX_PAGE, int(options.get("comments_page_size", MAX_PAGE))))
        self.horizon_days = int(options.get("horizon_days", DEFAULT_HORIZON_DAYS))
        key = str(options.get("client_key") or options.get("login") or "")
        self._tokens = ClientToken(credentials.base_url.rstrip("/") + "/", key, credentials.token,
                                   float(options.get("timeout", 30.0)), transport, self._scrub_also)
        self._api = JsonApi.for_connection(
            credentials, {}, error_of=lambda response, body, path: self._error(response.status_code, body, path),
            default_in_flight=DEFAULT_IN_FLIGHT, transport=transport, failed=_failed, auth=self._tokens.headers)
        self.budget = self._api.budget
        self._records_lock = threading.Lock()
        self._records = 0

    def _scrub_also(self, token: str) -> None:
        self._api.scrubber = self._api.scrubber.with_secrets(token)

    @property
    def records(self) -> float:
        """Videos and comments the answers held: the day's records allowance counts them."""
        return float(self._records)

    def _count_records(self, n: int) -> None:
        with self._records_lock:
            self._records += n

    @property
    def tokens_issued(self) -> int:
        return self._tokens.issued

    def close(self) -> None:
        super().close()
        self._tokens.close()

    # --- profiles -------------------------------------------------------------------------------
    def fetch_profiles(self, entity_ids: Sequence[str]) -> list[FetchedPage]:
        """One ``user/info`` call a user (the API has no batch look-up); an unknown user is absent."""
        pages = []
        for username in dict.fromkeys(entity_ids):
            params = {"fields": USER_FIELDS}
            try:
                status, body = self._post("research/user/info/", params, {"username": username})
            except NotFoundError:
                continue
            if not isinstance(body.get("data"), dict):
                raise PageAnomaly(f"POST research/user/info/ of {username}: no `data` object")
            pages.append(FetchedPage("profile", username, _request("research/user/info/", params,
                                                                    {"username": username}),
                                     status, {**body, "username": username}, None, None, 1))
        return pages

    # --- videos ---------------------------------------------------------------------------------
    def post_pages(self, entity_id: str, cursor: str | None) -> Iterator[FetchedPage]:
        raise NotImplementedError("TikTok videos are walked for many users at once: walk_posts")

    def walk_posts(self, walks: Sequence[PostsWalk], state: dict[str, Any] | None,
                   as_of: datetime) -> Iterator[WalkStep]:
        """Newest 30-day window first, for every user still walking; a window is paged with its
        ``cursor`` and ``search_id`` (a page may be short, even empty, while ``has_more``)."""
        wanted = {w.entity_id: w for w in walks}
        today = as_of.astimezone(UTC).date()
        if state is None:
            state = {"walk": uuid.uuid4().hex, "end": _day(today), "cursor": 0, "search_id": None,
                     "active": sorted(wanted), "seen": dict.fromkeys(wanted, 0), "window_ids": []}
        state = json.loads(json.dumps(state))  # a copy: every step hands out its own
        state["active"] = [u for u in state["active"] if u in wanted]
        horizon = today - timedelta(days=self.horizon_days)
        while state["active"]:
            end = _parse_day(state["end"])
            start = end - timedelta(days=WINDOW_DAYS)  # end_date may be 30 days after start_date
            body: dict[str, Any] = {
                "query": {"and": [{"operation": "IN", "field_name": "username", "field_values": state["active"]}]},
                "start_date": _day(start), "end_date": _day(end), "max_count": self.page_size}
            if state["search_id"] is not None:
                body.update(cursor=state["cursor"], search_id=state["search_id"])
            asked_with = json.dumps({k: body.get(k) for k in ("start_date", "end_date", "cursor", "search_id")})
            params = {"fields": VIDEO_FIELDS}
            try:
                status, answer = self._post("research/video/query/", params, body)
            except CursorExpiredError:
                if state["search_id"] is None:
                    raise
                # The search expired (a walk resumed the next day): the window is asked again from its
                # start; the videos already counted in it are remembered, so none is counted twice.
                state.update(cursor=0, search_id=None)
                continue
            videos, has_more, cursor, search_id = _query_page(answer, state)
            self._count_records(len(videos))
            window_ids = set(state["window_ids"])
            by_user: dict[str, list[dict[str, Any]]] = {}
            for video in videos:
                username, video_id = video.get("username"), str(video.get("id"))
                if username in wanted:
                    by_user.setdefault(username, []).append(video)
                    if video_id not in window_ids:  # a video listed again on the next page is counted once
                        window_ids.add(video_id)
                        state["seen"][username] = state["seen"].get(username, 0) + 1
            ended: dict[str, bool] = {}
            if has_more:
                state.update(cursor=cursor, search_id=search_id, window_ids=sorted(window_ids))
            else:
                for username in state["active"]:
                    walk = wanted[username]
                    if walk.floor is not None and start <= walk.floor.date():
                        ended[username] = False
                    elif walk.floor is None and walk.expected is not None and state["seen"][username] >= walk.expected:
                        ended[username] = True  # every video the user has was seen: the others are gone
                    elif start <= horizon:
                        ended[username] = False
                state.update(end=_day(start - timedelta(days=1)), cursor=0, search_id=None, window_ids=[],
                             active=[u for u in state["active"] if u not in ended])
            request = _request("research/video/query/", params, body)
            share = 1 / max(1, len(by_user))
            pages = [FetchedPage("posts", username, request, status,
                                 {**answer, "data": {**answer["data"], "videos": items}, "username": username},
                                 asked_with, json.dumps({"end": state["end"], "cursor": state["cursor"]}),
                                 len(items), units=share) for username, items in by_user.items()]
            yield WalkStep(pages, json.loads(json.dumps(state)), ended)

    # --- comments -------------------------------------------------------------------------------
    def comment_pages(self, post_id: str, cursor: str | None,
                      history: CommentHistory | None = None) -> Iterator[FetchedPage]:
        """A video's comments and replies in one list, to its end or to the 1,000 cap (the last page
        then says so in ``capped``: the rest cannot be fetched, today or later)."""
        offset = int(cursor) if cursor else 0
        while True:
            count = min(self.comments_page_size, COMMENT_CAP - offset)
            body = {"video_id": int(post_id) if post_id.isdigit() else post_id, "max_count": count, "cursor": offset}
            params = {"fields": COMMENT_FIELDS}
            status, answer = self._post("research/video/comment/list/", params, body)
            data = answer.get("data")
            if not isinstance(data, dict) or not isinstance(data.get("comments"), list):
                raise PageAnomaly(f"POST research/video/comment/list/ of {post_id} cursor={offset}: no `comments` list")
            self._count_records(len(data["comments"]))
            has_more, moved = data.get("has_more"), data.get("cursor")
            after = moved if isinstance(moved, int) and not isinstance(moved, bool) else -1
            if not isinstance(has_more, bool) or (has_more and after <= offset):
                raise PageAnomaly(f"POST research/video/comment/list/ of {post_id} cursor={offset}: "
                                  f"the cursor did not move ({moved!r}, has_more={has_more!r})")
            capped = None
            if after >= COMMENT_CAP:  # the cap: whatever has_more says, nothing past it can be asked for
                has_more, capped = False, f"only the first {COMMENT_CAP} comments of a video are reachable"
            yield FetchedPage("comments", post_id, _request("research/video/comment/list/", params, body), status,
                              answer, str(offset) if offset else None, str(after) if has_more else None,
                              len(data["comments"]), capped=capped)
            if not has_more:
                return
            offset = after

    # --- lists under a user ---------------------------------------------------------------------
    def list_pages(self, kind: str, entity_id: str, cursor: str | None) -> Iterator[FetchedPage]:
        """A user's followers, the accounts it follows or the videos it liked, newest first; the cursor is a
        Unix time (the next page holds older ones). Its pinned videos come whole, in one answer. A list
        the user hides answers ``invalid_params``."""
        if kind not in LIST_PATHS:
            raise ValueError(f"tiktok lists no {kind!r} under a user")
        path, field, params = LIST_PATHS[kind]
        if kind in UNPAGED_LISTS:
            whole = {"username": entity_id}
            status, answer = self._post(path, params, whole)
            items = self._listed(answer, field, f"POST {path} of {entity_id}")[1]
            yield FetchedPage(kind, entity_id, _request(path, params, whole), status, answer, None, None, len(items))
            return
        before: int | None = int(cursor) if cursor else None
        while True:
            body: dict[str, Any] = {"username": entity_id, "max_count": MAX_PAGE}
            if before is not None:
                body["cursor"] = before
            status, answer = self._post(path, params, body)
            data, items = self._listed(answer, field, f"POST {path} of {entity_id} cursor={before or '-'}")
            has_more, moved = data.get("has_more"), data.get("cursor")
            after = moved if isinstance(moved, int) and not isinstance(moved, bool) else None
            # Newest first: the next page starts at an older time than this one did.
            stuck = after is None or (before is not None and after >= before)
            if not isinstance(has_more, bool) or (has_more and stuck):
                raise PageAnomaly(f"POST {path} of {entity_id} cursor={before or '-'}: the cursor did not move "
                                  f"({moved!r}, has_more={has_more!r})")
            if has_more and not items:
                raise PageAnomaly(f"POST {path} of {entity_id} cursor={before or '-'}: an empty page with more to come")
            yield FetchedPage(kind, entity_id, _request(path, params, body), status, answer,
                              str(before) if before is not None else None, str(after) if has_more else None, len(items))
            if not has_more:
                return
            before = after

    def _listed(self, answer: dict[str, Any], field: str, what: str) -> tuple[dict[str, Any], list[Any]]:
        """A list answer's ``data`` and its ``field`` list (counted against the day's records), or an anomaly."""
        data = answer.get("data")
        if not isinstance(data, dict) or not isinstance(data.get(field), list):
            raise PageAnomaly(f"{what}: no `{field}` list")
        self._count_records(len(data[field]))
        return data, data[field]

    # --- calls ----------------------------------------------------------------------------------
    def _post(self, path: str, params: dict[str, Any], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self._api.post(path, params, body, f"POST {path}")

    def _error(self, status: int, body: Any, path: str) -> ApiError:
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        code, message = error.get("code"), str(error.get("message") or "")
        text = f"POST {path}: HTTP {status} {code or ''} {message}".rstrip()
        if code == "daily_quota_limit_exceeded":
            wait = seconds_to_utc_midnight()
            return QuotaExhaustedError(f"{text}; the quota resets in {wait:.0f}s", status, code, retry_after=wait)
        if code == "rate_limit_exceeded" or status == 429:
            return ThrottledError(text, status, code, retryable=True, retry_after=self._api.backoff_s * 4)
        if code == "access_token_invalid":
            self._tokens.refused()  # renewed at the next attempt
            return TransientError(text, status, code, retryable=True, retry_after=0.0)
        if code == "scope_not_authorized" or status in (401, 403):
            return AuthError(text, status, code)
        if code == "invalid_params" and "private" in message.lower():
            return Unavailable(f"the user keeps this list private ({text})", status, code)
        if code == "invalid_params" and "search id" in message.lower():
            return CursorExpiredError(text, status, code)  # the window's query is asked again from its start
        if code == "invalid_params" and "cannot find the user" in message:
            return NotFoundError(text, status, code)
        if code == "invalid_params" and "does not exist" in message:
            return NotFoundError(text, status, code)
        if status >= 500 or code == "internal_error":
            return TransientError(text, status, code, retryable=True)
        return ApiError(text, status, code)


def seconds_to_utc_midnight(now: datetime | None = None) -> float:
    moment = now or datetime.now(UTC)
    midnight = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - moment).total_seconds()


def _failed(response: httpx.Response, body: Any) -> bool:
    """TikTok's answers all carry ``error``; only a code other than ``ok`` (or a non-2xx) is one."""
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return not response.is_success or (code is not None and code != "ok")


def _query_page(answer: dict[str, Any], state: dict[str, Any]) -> tuple[list[dict[str, Any]], bool, int, str | None]:
    data = answer.get("data")
    what = f"POST research/video/query/ window ending {state['end']} cursor={state['cursor']}"
    if not isinstance(data, dict) or not isinstance(data.get("videos"), list):
        raise PageAnomaly(f"{what}: no `videos` list")
    has_more, cursor, search_id = data.get("has_more"), data.get("cursor"), data.get("search_id")
    if not isinstance(has_more, bool):
        raise PageAnomaly(f"{what}: `has_more` is {has_more!r}")
    if has_more and (not isinstance(cursor, int) or cursor <= int(state["cursor"] or 0)
                     or not isinstance(search_id, str | int)):
        raise PageAnomaly(f"{what}: the cursor did not move ({cursor!r}) or no search_id")
    videos = [v for v in data["videos"] if isinstance(v, dict)]
    return videos, has_more, int(cursor) if isinstance(cursor, int) else 0, str(search_id) if has_more else None


def _request(path: str, params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    return {"method": "POST", "path": path, "params": dict(params), "json": body}


def _day(value: date) -> str:
    return value.strftime("%Y%m%d")


def _parse_day(value: str) -> date:
    return datetime.strptime(value, "%Y%m%d").replace(tzinfo=UTC).date()
