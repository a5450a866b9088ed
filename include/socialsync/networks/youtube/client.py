"""The YouTube Data API v3 client (httpx): channels 50 to a call, uploads, videos, comment threads
and their replies.

Every call is a list call costing one unit of the project's daily quota. The API key travels in
the ``X-Goog-Api-Key`` header, never in a URL. An uploads page is the ``playlistItems`` answer plus
the ``videos`` answer for its ids; a comments page is a ``commentThreads`` answer plus the
``comments`` answers of the threads whose replies are not all inline. Each is stored as one raw
page holding every answer verbatim, so the page and the cursor after it still land together.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from socialsync.extract.calls import JsonApi, JsonApiClient
from socialsync.extract.paging import PageTokenPaginator
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

MAX_IDS = 50  # channels.list and videos.list take at most 50 ids a call
MAX_UPLOADS_PAGE = 50
MAX_COMMENTS_PAGE = 100
MAX_SUBSCRIPTIONS_PAGE = 50
INLINE_REPLIES = 5  # commentThreads carries at most this many replies of a thread
DEFAULT_IN_FLIGHT = 16
QUOTA_DAY = ZoneInfo("America/Los_Angeles")  # the daily quota resets at midnight Pacific time

CHANNEL_PARTS = "snippet,statistics,contentDetails"
VIDEO_PARTS = "snippet,statistics,contentDetails"
THROTTLE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
AUTH_REASONS = frozenset({"keyInvalid", "keyExpired", "forbidden", "accessNotConfigured", "ipRefererBlocked",
                          "authError", "unauthorized"})
NOT_FOUND_REASONS = frozenset({"videoNotFound", "channelNotFound", "playlistNotFound", "commentThreadNotFound",
                               "commentNotFound", "notFound"})


class YouTubeClient(JsonApiClient):
    """Talks the real YouTube Data API v3 protocol; only the connection's host and key say where to.

    Every call is a list call: one unit each, sent calls and refused ones alike.
    """

    def __init__(self, credentials: ApiCredentials, transport: httpx.BaseTransport | None = None) -> None:
        options = credentials.options
        self.page_size = max(1, min(MAX_UPLOADS_PAGE, int(options.get("page_size", MAX_UPLOADS_PAGE))))
        self.comments_page_size = max(1, min(MAX_COMMENTS_PAGE,
                                             int(options.get("comments_page_size", MAX_COMMENTS_PAGE))))
        # Google may echo the key in an error's message: it is scrubbed before any page, error or log.
        self._api = JsonApi.for_connection(
            credentials, {"X-Goog-Api-Key": credentials.token},
            error_of=lambda response, body, path: google_error(response.status_code, body, path,
                                                               self._api.backoff_s),
            default_in_flight=DEFAULT_IN_FLIGHT, transport=transport)
        self.budget = self._api.budget


    # --- profiles -------------------------------------------------------------------------------
    def fetch_profiles(self, entity_ids: Sequence[str]) -> list[FetchedPage]:
        """One ``channels.list`` call for up to 50 channels; each known channel's item becomes its own
        raw page (the answer's envelope with that item), a channel the API does not know is absent."""
        ids = list(dict.fromkeys(entity_ids))
        if not ids:
            return []
        if len(ids) > MAX_IDS:
            raise ValueError(f"channels.list takes at most {MAX_IDS} ids, not {len(ids)}")
        params = {"part": CHANNEL_PARTS, "id": ",".join(ids), "maxResults": MAX_IDS}
        status, body = self._get("channels", params)
        items = body.get("items", [])
        if not isinstance(items, list):
            raise PageAnomaly(f"GET channels: `items` is a {type(items).__name__}, not a list")
        wanted = set(ids)
        found = []
        for item in items:
            channel_id = item.get("id") if isinstance(item, dict) else None
            if channel_id in wanted:  # an item for an id not asked for proves nothing about the ones asked for
                wanted.discard(channel_id)
                found.append((channel_id, item))
        envelope = {k: v for k, v in body.items() if k != "items"}
        # Each found channel carries its share of the call's one unit.
        return [FetchedPage("profile", channel_id, _request("channels", params), status,
                            {**envelope, "items": [item]}, None, None, 1, units=1 / len(found))
                for channel_id, item in found]

    # --- uploads --------------------------------------------------------------------------------
    def post_pages(self, entity_id: str, cursor: str | None) -> Iterator[FetchedPage]:
        """The channel's uploads, newest first: each ``playlistItems`` page with the ``videos`` of its ids."""
        playlist = uploads_playlist(entity_id)
        paginator = PageTokenPaginator(cursor)
        while True:
            params: dict[str, Any] = {"part": "contentDetails", "playlistId": playlist, "maxResults": self.page_size}
            asked_with = paginator.cursor
            status, listing = self._page("playlistItems", params, paginator, entity_id)
            ids = list(dict.fromkeys(_video_ids(listing["items"])))
            calls = [_request("playlistItems", params)]
            videos: dict[str, Any] = {"items": []}
            if ids:
                video_params = {"part": VIDEO_PARTS, "id": ",".join(ids), "maxResults": MAX_IDS}
                _, videos = self._get("videos", video_params)
                if not isinstance(videos.get("items"), list):
                    raise PageAnomaly(f"GET videos of {entity_id}: `items` is not a list")
                calls.append(_request("videos", video_params))
            payload = {"kind": "socialsync#uploadsPage", "playlistItems": listing, "videos": videos}
            yield FetchedPage("posts", entity_id, {"calls": calls}, status, payload, asked_with, paginator.cursor,
                              len(listing["items"]), units=len(calls))
            if not paginator.has_next_page:
                return

    # --- subscriptions --------------------------------------------------------------------------
    def list_pages(self, kind: str, entity_id: str, cursor: str | None) -> Iterator[FetchedPage]:
        """The channels a channel subscribes to (``subscriptions.list``; public ones only, in no time
        order: every walk goes to the end). A private list answers ``subscriptionForbidden``."""
        if kind != "subscriptions":
            raise ValueError(f"youtube lists no {kind!r} under a channel")
        paginator = PageTokenPaginator(cursor)
        while True:
            params: dict[str, Any] = {"part": "snippet", "channelId": entity_id, "maxResults": MAX_SUBSCRIPTIONS_PAGE}
            asked_with = paginator.cursor
            status, answer = self._page("subscriptions", params, paginator, entity_id)
            yield FetchedPage("subscriptions", entity_id, _request("subscriptions", params), status, answer, asked_with,
                              paginator.cursor, len(answer["items"]))
            if not paginator.has_next_page:
                return

    # --- comments -------------------------------------------------------------------------------
    def comment_pages(self, post_id: str, cursor: str | None,
                      history: CommentHistory | None = None) -> Iterator[FetchedPage]:
        """A video's comment threads, newest first, each page with the replies its threads need.

        Without ``history`` every page, and every reply of a thread whose replies are not all inline.
        With it (an incremental day: there is no time filter), replies only of threads that are new
        or whose ``totalReplyCount`` moved, and no page after one that holds a known thread once the
        new threads and replies found account for what the video gained (``history.grown``); a
        video that gained replies on older threads is walked on until they are found.
        """
        paginator = PageTokenPaginator(cursor)
        found = 0  # new comments and replies found so far on this walk
        while True:
            params: dict[str, Any] = {"part": "snippet,replies", "videoId": post_id, "order": "time",
                                      "textFormat": "plainText", "maxResults": self.comments_page_size}
            asked_with = paginator.cursor
            status, threads = self._page("commentThreads", params, paginator, post_id)
            calls = [_request("commentThreads", params)]
            counts = [_thread_counts(thread) for thread in threads["items"]]
            known = history.known([t for t, _, _ in counts if t is not None]) if history is not None else {}
            replies: dict[str, list[dict[str, Any]]] = {}
            comments = 0
            for thread_id, total, inline in counts:
                comments += 1 + inline
                if thread_id is None:
                    continue
                held = thread_id in known
                stored = known.get(thread_id)
                found += (total - stored if stored is not None and total > stored else 0) if held else 1 + total
                if total > inline and (not held or stored != total):
                    answers, thread_calls = self._replies(thread_id)
                    replies[thread_id] = answers
                    calls += thread_calls
                    comments += sum(len(answer["items"]) for answer in answers)
            payload = {"kind": "socialsync#commentsPage", "commentThreads": threads, "replies": replies}
            done = history is not None and bool(known) and found >= history.grown
            yield FetchedPage("comments", post_id, {"calls": calls}, status, payload, asked_with,
                              None if done else paginator.cursor, comments, units=len(calls))
            if done or not paginator.has_next_page:
                return

    def _replies(self, thread_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every reply of a thread, through ``comments.list`` pages (each answer kept as received)."""
        paginator = PageTokenPaginator()
        answers, calls = [], []
        while True:
            params: dict[str, Any] = {"part": "snippet", "parentId": thread_id, "textFormat": "plainText",
                                      "maxResults": MAX_COMMENTS_PAGE}
            _, answer = self._page("comments", params, paginator, f"thread {thread_id}")
            answers.append(answer)
            calls.append(_request("comments", params))
            if not paginator.has_next_page:
                return answers, calls

    def _page(self, path: str, params: dict[str, Any], paginator: PageTokenPaginator,
              what: str) -> tuple[int, dict[str, Any]]:
        """One page of a list: asked for where the paginator stands, then proven to be a page."""
        asked_with = paginator.cursor
        paginator.update_request(params)
        status, body = self._get(path, params)
        try:
            paginator.update_state(body)
        except PageAnomaly as exc:
            raise PageAnomaly(f"GET {path} of {what} pageToken={asked_with or '-'}: {exc}") from None
        return status, body

    def _get(self, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self._api.get(path, params, f"GET {path} pageToken={params.get('pageToken', '-')}")


def uploads_playlist(channel_id: str) -> str:
    """A channel's uploads playlist: ``UC…`` becomes ``UU…`` (what ``relatedPlaylists.uploads`` says)."""
    return "UU" + channel_id[2:] if channel_id.startswith("UC") else channel_id


def seconds_to_quota_reset(now: datetime | None = None) -> float:
    """Seconds until the next midnight Pacific time, when the daily quota resets."""
    local = (now or datetime.now(UTC)).astimezone(QUOTA_DAY)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - local).total_seconds()


def google_error(status: int, body: Any, path: str, backoff_s: float) -> ApiError:
    """An error answer in Google's shape (``{"error": {"code", "message", "errors": [{"reason"}]}}``)."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    details = error.get("errors")
    reasons = {d.get("reason") for d in details if isinstance(d, dict)} if isinstance(details, list) else set()
    reason = next(iter(sorted(r for r in reasons if isinstance(r, str))), None)
    message = f"GET {path}: HTTP {status} {reason or ''} {error.get('message') or ''}".rstrip()
    if reasons & QUOTA_REASONS:
        wait = seconds_to_quota_reset()
        return QuotaExhaustedError(f"{message}; the quota resets in {wait:.0f}s", status, reason, retry_after=wait)
    if reasons & THROTTLE_REASONS or status == 429:
        return ThrottledError(message, status, reason, retryable=True, retry_after=backoff_s * 4)
    if "commentsDisabled" in reasons:
        return Unavailable(f"comments are disabled ({message})", status, reason)
    if "subscriptionForbidden" in reasons:
        return Unavailable(f"the channel keeps its subscriptions private ({message})", status, reason)
    if "invalidPageToken" in reasons:
        return CursorExpiredError(message, status, reason)
    if reasons & AUTH_REASONS or status == 401 or (status == 400 and "API key" in str(error.get("message"))):
        return AuthError(message, status, reason)
    if reasons & NOT_FOUND_REASONS or status == 404:
        return NotFoundError(message, status, reason)
    if status >= 500 or "backendError" in reasons:
        return TransientError(message, status, reason, retryable=True)
    return ApiError(message, status, reason)


def _request(path: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"method": "GET", "path": path, "params": dict(params)}


def _video_ids(items: list[Any]) -> list[str]:
    out = []
    for item in items:
        details = item.get("contentDetails") if isinstance(item, dict) else None
        video_id = details.get("videoId") if isinstance(details, dict) else None
        if isinstance(video_id, str) and video_id:
            out.append(video_id)
    return out


def _thread_counts(thread: Any) -> tuple[str | None, int, int]:
    """A thread's id, its ``totalReplyCount`` and how many of its replies came inline."""
    if not isinstance(thread, dict):
        return None, 0, 0
    snippet = thread.get("snippet") if isinstance(thread.get("snippet"), dict) else {}
    total = snippet.get("totalReplyCount") if isinstance(snippet, dict) else None
    replies = thread.get("replies")
    inline = replies.get("comments") if isinstance(replies, dict) else None
    thread_id = thread.get("id")
    return (thread_id if isinstance(thread_id, str) else None, total if isinstance(total, int) else 0,
            len(inline) if isinstance(inline, list) else 0)
