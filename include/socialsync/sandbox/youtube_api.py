"""The YouTube Data API v3 protocol over the generated dataset: list calls, page tokens, quota, errors.

Served as Google serves it, with these rules (checked by tests/integration/test_youtube_sandbox.py):

- The key comes in the ``X-Goog-Api-Key`` header; ``key=`` in the URL is accepted too, as Google does, and
  counted in ``youtube:key_in_url``. A missing or wrong key is a 400 ``badRequest`` and costs nothing
  (there is no project to charge).
- Quota: each of the six list calls costs 1 unit, invalid requests included (Google: "all API requests,
  including invalid requests, incur a quota cost of at least one point"), so 400/403/404 answers of a
  resource are charged. Not charged: a refusal because the day's units are spent (403 ``quotaExceeded``),
  an injected throttle or server error (the call never reached the API), and paths that are no API
  method. A timeout, truncated or reset fault is charged: the answer was computed, the client lost it.
  The day's spend resets when the dataset's epoch (its day) changes.
- ``maxResults`` above a method's cap is clamped to it (the real API refuses with 400 instead; clients
  here never send more than the cap, and clamping keeps a careless one working). Below 1 or not a
  number is a 400 ``invalidParameter``.
- Page tokens are opaque and die with the epoch they were issued in (400 ``invalidPageToken``).
- ``comments?parentId`` returns a thread's replies OLDEST first (what YouTube does, as far as is known:
  the ``comments.list`` reference does not document the order); the replies inline in a
  ``commentThreads`` item are the NEWEST ``INLINE_REPLIES`` of the thread, newest first.
- ``pageInfo.totalResults`` is the whole list's size for ``playlistItems`` and the items of this page for
  ``commentThreads`` and ``comments`` (as YouTube reports them); ``channels`` with nothing found has no
  ``items`` key at all, as YouTube answers it; ``order=relevance`` is served like ``order=time``.
- ``subscriptions?channelId`` lists a channel's public subscriptions in no time order (``order`` relevance,
  the default, and unread are fixed hashes, alphabetical is by title), so a new subscription may land on any
  page; ``totalResults`` is the list's size. A channel keeping them private is a 403 ``subscriptionForbidden``,
  an unknown one a 404 ``subscriberNotFound``; both are charged, as every answer of a resource is (checked by
  tests/integration/test_youtube_subscriptions_sandbox.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import html
import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from socialsync.sandbox.faults import FaultPlan
from socialsync.sandbox.graph_api import _CutShort, page_indexes
from socialsync.sandbox.youtube_dataset import (
    INLINE_REPLIES,
    CommentAuthor,
    ReplyTruth,
    ThreadTruth,
    Thumbnail,
    YouTubeDataset,
    youtube_time,
)
from socialsync.sandbox.youtube_subscriptions import SUBSCRIPTION_ORDERS, SUBSCRIPTIONS_DEFAULT, SUBSCRIPTIONS_MAX

IDS_MAX = 50
PLAYLIST_ITEMS_DEFAULT, PLAYLIST_ITEMS_MAX = 5, 50
THREADS_DEFAULT, THREADS_MAX = 20, 100
REPLIES_DEFAULT, REPLIES_MAX = 20, 100
RESOURCES = ("channels", "playlistItems", "videos", "commentThreads", "comments", "subscriptions")
_PARTS = {
    "channels": {"id", "snippet", "statistics", "contentDetails", "status", "brandingSettings", "topicDetails",
                 "localizations"},
    "playlistItems": {"id", "snippet", "contentDetails", "status"},
    "videos": {"id", "snippet", "statistics", "contentDetails", "status", "player", "topicDetails",
               "recordingDetails", "liveStreamingDetails", "localizations"},
    "commentThreads": {"id", "snippet", "replies"},
    "comments": {"id", "snippet"},
    "subscriptions": {"id", "snippet", "contentDetails", "subscriberSnippet"},
}
_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 500: "INTERNAL",
           503: "UNAVAILABLE"}
_BAD_KEY = "API key not valid. Please pass a valid API key."


class YouTubeError(Exception):
    """An answer in Google's error shape: ``{"error": {"code", "message", "errors": [...], "status"}}``."""

    def __init__(self, code: int, reason: str, message: str, domain: str = "youtube.parameter") -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.domain = code, reason, message, domain

    def response(self) -> JSONResponse:
        error = {"code": self.code, "message": self.message,
                 "errors": [{"message": self.message, "domain": self.domain, "reason": self.reason}],
                 "status": _STATUS[self.code]}
        return JSONResponse({"error": error}, status_code=self.code)


def _etag(value: Any) -> str:
    digest = hashlib.sha1(json.dumps(value, sort_keys=True).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _token(kind: str, parent: str, index: int, offset: int, epoch: int) -> str:
    raw = f"{kind}|{parent}|{index}|{offset}|{epoch}".encode()
    return base64.urlsafe_b64encode(hashlib.sha1(raw).digest()[:3] + raw).decode().rstrip("=")


def _untoken(kind: str, parent: str, token: str, epoch: int) -> tuple[int, int]:
    """The (index, offset) a page token resumes from; garbage, a foreign or an old token is refused."""
    invalid = YouTubeError(400, "invalidPageToken", "The request specifies an invalid page token.")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        check, body = raw[:3], raw[3:]
        got_kind, got_parent, index, offset, issued = body.decode().split("|")
        if check != hashlib.sha1(body).digest()[:3] or (got_kind, got_parent) != (kind, parent):
            raise ValueError(token)
        if int(issued) != epoch:
            raise ValueError(token)  # YouTube's tokens do not outlive the data they page over
        return int(index), int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise invalid from exc


def _thumbs(thumbnails: tuple[Thumbnail, ...]) -> dict[str, Any]:
    return {t.name: {"url": t.url, "width": t.width, "height": t.height} for t in thumbnails}


class YouTubeApi:
    """An ASGI endpoint answering ``/youtube/v3/{resource}`` like www.googleapis.com/youtube/v3."""

    def __init__(self, data: YouTubeDataset, api_key: str, counters: Counter[str], units_per_day: int = 1_000_000,
                 latency_s: float = 0.0, faults: FaultPlan | None = None) -> None:
        self.data = data
        self.api_key = api_key
        self.counters = counters
        self.units_per_day = units_per_day
        self.latency_s = latency_s
        self.faults = faults or FaultPlan()
        self.units_spent = 0
        self._day = data.epoch

    def routes(self) -> list[Route]:
        return [Route("/{resource}", self.handle, methods=["GET"])]

    def reset_day(self, units_per_day: int | None = None) -> None:
        """A new quota day: nothing spent (and, when given, a new daily allowance)."""
        self.units_spent, self._day = 0, self.data.epoch
        if units_per_day is not None:
            self.units_per_day = units_per_day

    async def handle(self, request: Request) -> Response:
        self.counters["received:youtube"] += 1  # every call costs a unit, however it ends
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if "key" in request.query_params:
            self.counters["youtube:key_in_url"] += 1
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key", "")
        if key != self.api_key:
            self.counters["youtube:unauthorized"] += 1
            return YouTubeError(400, "badRequest", _BAD_KEY, domain="global").response()
        resource = request.path_params["resource"]
        if resource not in RESOURCES:
            self.counters["youtube:unknown"] += 1
            return YouTubeError(404, "notFound", "Method not found.", domain="global").response()
        if self.data.epoch != self._day:
            self.reset_day()
        if self.units_spent >= self.units_per_day:
            self.counters["youtube:quota_refused"] += 1
            return YouTubeError(403, "quotaExceeded", "The request cannot be completed because you have exceeded "
                                "your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.",
                                domain="youtube.quota").response()
        query = "&".join(f"{k}={v}" for k, v in sorted(request.query_params.multi_items()) if k != "key")
        fault = self.faults.draw(f"youtube/{resource}?{query}")
        if fault:
            self.counters[f"youtube:fault:{fault}"] += 1
            early = await self._fail(fault)
            if early is not None:
                return early
        self.counters[f"youtube:{resource}"] += 1
        self.units_spent += 1
        self.counters["youtube:units"] += 1
        try:
            body = self._route(resource, request.query_params, repeat=fault == "repeat")
        except YouTubeError as exc:
            return exc.response()
        response = JSONResponse(body)
        if fault == "truncated":
            cut = response.body[: len(response.body) * 2 // 3]
            return Response(cut, media_type="application/json")
        if fault == "reset":
            return _CutShort(response.body)
        return response

    async def _fail(self, fault: str) -> Response | None:
        if fault in ("throttle_429", "throttle_graph"):  # YouTube throttles with a 403, never a 429
            return YouTubeError(403, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits").response()
        if fault == "server_error":  # alternately the two answers YouTube's backend gives
            if self.counters["youtube:fault:server_error"] % 2:
                return YouTubeError(503, "backendError", "The service is currently unavailable.",
                                    domain="global").response()
            return YouTubeError(500, "backendError", "Backend Error", domain="global").response()
        if fault == "timeout":
            await asyncio.sleep(self.faults.timeout_s)
        return None

    def _route(self, resource: str, params: QueryParams, repeat: bool) -> dict[str, Any]:
        parts = self._parts(resource, params)
        if resource == "channels":
            return self._channels(params, parts)
        if resource == "playlistItems":
            return self._playlist_items(params, parts, repeat)
        if resource == "videos":
            return self._videos(params, parts)
        if resource == "commentThreads":
            return self._comment_threads(params, parts, repeat)
        if resource == "subscriptions":
            return self._subscriptions(params, parts, repeat)
        return self._comments(params, parts, repeat)

    # --- parameters -----------------------------------------------------------------------------
    @staticmethod
    def _parts(resource: str, params: QueryParams) -> set[str]:
        raw = params.get("part", "")
        if not raw:
            raise YouTubeError(400, "required", "Required parameter: part", domain="global")
        parts = {p.strip() for p in raw.split(",") if p.strip()}
        unknown = sorted(parts - _PARTS[resource])
        if unknown:
            raise YouTubeError(400, "unknownPart", f"'{unknown[0]}'", domain="youtube.part")
        return parts

    @staticmethod
    def _filter(params: QueryParams, allowed: tuple[str, ...]) -> str:
        given = [name for name in allowed if params.get(name)]
        if not given:
            raise YouTubeError(400, "missingRequiredParameter",
                               f"No filter selected. Expected one of: {', '.join(allowed)}")
        if len(given) > 1:
            raise YouTubeError(400, "incompatibleParameters",
                               f"Incompatible parameters specified in the request: {', '.join(given)}")
        return given[0]

    @staticmethod
    def _ids(params: QueryParams) -> list[str]:
        ids = params.get("id", "").split(",")
        if len(ids) > IDS_MAX:
            raise YouTubeError(400, "invalidFilters", "The request specifies an invalid filter parameter.")
        return list(dict.fromkeys(i.strip() for i in ids if i.strip()))

    @staticmethod
    def _max_results(params: QueryParams, default: int, cap: int) -> int:
        raw = params.get("maxResults")
        if raw is None:
            return default
        if not raw.isdigit() or int(raw) < 1:
            raise YouTubeError(400, "invalidParameter",
                               f"Invalid value '{raw}'. Values must be within the range: [1, {cap}]")
        return min(int(raw), cap)

    @staticmethod
    def _text_format(params: QueryParams) -> str:
        text_format = params.get("textFormat", "html")
        if text_format not in ("html", "plainText"):
            raise YouTubeError(400, "invalidParameter", f"Invalid value '{text_format}' for textFormat")
        return text_format

    def _envelope(self, kind: str, items: list[dict[str, Any]], total: int, per_page: int,
                  next_token: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": f"youtube#{kind}ListResponse",
                                "etag": _etag([self.data.epoch, *(i["etag"] for i in items)])}
        if next_token:
            body["nextPageToken"] = next_token
        body["pageInfo"] = {"totalResults": total, "resultsPerPage": per_page}
        body["items"] = items
        return body

    def _paged(self, kind: str, parent: str, params: QueryParams, limit: int,
               indexes: Callable[[int | None], Iterator[int]], repeat: bool) -> tuple[list[int], int, str | None]:
        """One page of indexes, the list position of its first one, and the next page's token.

        Under the ``repeat`` fault the last item of the previous page comes again at the top.
        """
        token = params.get("pageToken")
        start, offset = _untoken(kind, parent, token, self.data.epoch) if token else (None, 0)
        taken, more = page_indexes(indexes, parent, start, limit)
        following = _token(kind, parent, taken[-1], offset + len(taken), self.data.epoch) if more else None
        if repeat and start is not None:
            return [start, *taken], offset - 1, following
        return taken, offset, following

    # --- channels -------------------------------------------------------------------------------
    def _channels(self, params: QueryParams, parts: set[str]) -> dict[str, Any]:
        by = self._filter(params, ("id", "forHandle", "forUsername"))
        if by == "id":
            found = [self.data.parse_channel_id(i) for i in self._ids(params)]
        else:
            found = [self.data.parse_handle(params[by])] if by == "forHandle" else []
        items = [self.channel_resource(p, parts) for p in found if p is not None]
        body = self._envelope("channel", items, len(items), len(items), None)
        if not items:
            del body["items"]  # YouTube leaves the key out when no channel matched
        return body

    def channel_resource(self, p: int, parts: set[str]) -> dict[str, Any]:
        truth = self.data.channel(p)
        item: dict[str, Any] = {"kind": "youtube#channel", "etag": "", "id": truth.id}
        if "snippet" in parts:
            item["snippet"] = {
                "title": truth.title, "description": truth.description, "customUrl": truth.handle,
                "publishedAt": youtube_time(truth.published_at), "thumbnails": _thumbs(truth.thumbnails),
                "localized": {"title": truth.title, "description": truth.description},
            }
        if "contentDetails" in parts:
            item["contentDetails"] = {"relatedPlaylists": {"likes": "", "uploads": truth.uploads_playlist_id}}
        if "statistics" in parts:
            stats: dict[str, Any] = {"viewCount": str(truth.view_count)}
            if truth.subscriber_count is not None:
                stats["subscriberCount"] = str(truth.subscriber_count)
            stats |= {"hiddenSubscriberCount": truth.subscriber_count is None, "videoCount": str(truth.video_count)}
            item["statistics"] = stats
        if "status" in parts:
            item["status"] = {"privacyStatus": "public", "isLinked": True,
                              "longUploadsStatus": "longUploadsUnspecified"}
        item["etag"] = _etag(item)
        return item

    # --- uploads --------------------------------------------------------------------------------
    def _playlist_items(self, params: QueryParams, parts: set[str], repeat: bool) -> dict[str, Any]:
        if self._filter(params, ("playlistId", "id")) == "id":
            raise YouTubeError(400, "invalidFilters", "The sandbox serves playlist items by playlistId only.")
        playlist = params.get("playlistId", "")
        p = self.data.parse_uploads_playlist_id(playlist)
        if p is None:
            raise YouTubeError(404, "playlistNotFound", "The playlist identified with the request's "
                               "<code>playlistId</code> parameter cannot be found.", domain="youtube.playlistItem")
        limit = self._max_results(params, PLAYLIST_ITEMS_DEFAULT, PLAYLIST_ITEMS_MAX)
        shown, position, following = self._paged(
            "uploads", playlist, params, limit, lambda before: self.data.videos_newest_first(p, before), repeat)
        items = [self.playlist_item_resource(p, j, position + n, parts) for n, j in enumerate(shown)]
        return self._envelope("playlistItem", items, self.data.video_count(p), limit, following)

    def playlist_item_resource(self, p: int, j: int, position: int, parts: set[str]) -> dict[str, Any]:
        playlist, vid = self.data.uploads_playlist_id(p), self.data.video_id(p, j)
        item_id = base64.b64encode(f"{playlist}.{vid}".encode()).decode()  # YouTube's own form
        item: dict[str, Any] = {"kind": "youtube#playlistItem", "etag": "", "id": item_id}
        published = youtube_time(self.data.dataset.post_time(p, j))
        if "snippet" in parts:
            video = self.data.video(p, j)
            item["snippet"] = {
                "publishedAt": published, "channelId": video.channel_id, "title": video.title,
                "description": video.description, "thumbnails": _thumbs(video.thumbnails),
                "channelTitle": video.channel_title, "playlistId": playlist, "position": position,
                "resourceId": {"kind": "youtube#video", "videoId": vid},
                "videoOwnerChannelTitle": video.channel_title, "videoOwnerChannelId": video.channel_id,
            }
        if "contentDetails" in parts:
            item["contentDetails"] = {"videoId": vid, "videoPublishedAt": published}
        if "status" in parts:
            item["status"] = {"privacyStatus": "public"}
        item["etag"] = _etag(item)
        return item

    # --- videos ---------------------------------------------------------------------------------
    def _videos(self, params: QueryParams, parts: set[str]) -> dict[str, Any]:
        self._filter(params, ("id",))
        found = [self.data.parse_video_id(i) for i in self._ids(params)]
        items = [self.video_resource(*v, parts) for v in found if v is not None]
        return self._envelope("video", items, len(items), len(items), None)

    def video_resource(self, p: int, j: int, parts: set[str]) -> dict[str, Any]:
        video = self.data.video(p, j)
        item: dict[str, Any] = {"kind": "youtube#video", "etag": "", "id": video.id}
        if "snippet" in parts:
            snippet: dict[str, Any] = {
                "publishedAt": youtube_time(video.published_at), "channelId": video.channel_id,
                "title": video.title, "description": video.description, "thumbnails": _thumbs(video.thumbnails),
                "channelTitle": video.channel_title}
            if video.tags is not None:
                snippet["tags"] = list(video.tags)
            snippet |= {"categoryId": "22", "liveBroadcastContent": "none",
                        "localized": {"title": video.title, "description": video.description}}
            item["snippet"] = snippet
        if "contentDetails" in parts:
            item["contentDetails"] = {"duration": video.duration, "dimension": "2d", "definition": video.definition,
                                      "caption": "false", "licensedContent": False, "contentRating": {},
                                      "projection": "rectangular"}
        if "status" in parts:
            item["status"] = {"uploadStatus": "processed", "privacyStatus": "public", "license": "youtube",
                              "embeddable": True, "publicStatsViewable": True, "madeForKids": False}
        if "statistics" in parts:
            stats: dict[str, Any] = {"viewCount": str(video.view_count)}
            if video.like_count is not None:
                stats["likeCount"] = str(video.like_count)
            stats["favoriteCount"] = "0"
            if video.comment_count is not None:
                stats["commentCount"] = str(video.comment_count)
            item["statistics"] = stats
        item["etag"] = _etag(item)
        return item

    # --- comment threads ------------------------------------------------------------------------
    def _comment_threads(self, params: QueryParams, parts: set[str], repeat: bool) -> dict[str, Any]:
        by = self._filter(params, ("videoId", "id", "allThreadsRelatedToChannelId", "channelId"))
        text_format = self._text_format(params)
        if params.get("order", "time") not in ("time", "relevance"):
            raise YouTubeError(400, "invalidParameter", f"Invalid value '{params['order']}' for order")
        if by == "id":
            found = [self.data.parse_thread_id(i) for i in self._ids(params)]
            items = [self.thread_resource(*t, parts, text_format) for t in found if t is not None]
            return self._envelope("commentThread", items, len(items), len(items), None)
        if by != "videoId":
            raise YouTubeError(400, "invalidFilters", f"The sandbox serves comment threads by videoId or id, "
                               f"not by {by}.")
        video_id = params["videoId"]
        video = self.data.parse_video_id(video_id)
        if video is None:
            raise YouTubeError(404, "videoNotFound", "The video identified by the <code><a href=\"/youtube/v3/"
                               "docs/commentThreads/list#videoId\">videoId</a></code> parameter could not be found.",
                               domain="youtube.commentThread")
        p, j = video
        if self.data.comments_disabled(p, j):
            raise YouTubeError(403, "commentsDisabled", "The video identified by the <code><a href=\"/youtube/v3/"
                               "docs/commentThreads/list#videoId\">videoId</a></code> parameter has disabled "
                               "comments.", domain="youtube.commentThread")
        limit = self._max_results(params, THREADS_DEFAULT, THREADS_MAX)
        shown, _, following = self._paged("threads", video_id, params, limit,
                                          lambda before: self.data.threads_newest_first(p, j, before), repeat)
        items = [self.thread_resource(p, j, k, parts, text_format) for k in shown]
        return self._envelope("commentThread", items, len(items), limit, following)

    def thread_resource(self, p: int, j: int, k: int, parts: set[str], text_format: str) -> dict[str, Any]:
        thread = self.data.thread(p, j, k)
        item: dict[str, Any] = {"kind": "youtube#commentThread", "etag": "", "id": thread.id}
        if "snippet" in parts:
            item["snippet"] = {"channelId": thread.channel_id, "videoId": thread.video_id,
                               "topLevelComment": self.comment_resource(thread, text_format),
                               "canReply": True, "totalReplyCount": thread.total_reply_count, "isPublic": True}
        if "replies" in parts and thread.total_reply_count:
            newest = range(thread.total_reply_count - 1, max(-1, thread.total_reply_count - 1 - INLINE_REPLIES), -1)
            item["replies"] = {"comments": [self.comment_resource(self.data.reply(p, j, k, r), text_format)
                                            for r in newest]}
        item["etag"] = _etag(item)
        return item

    def comment_resource(self, comment: ThreadTruth | ReplyTruth, text_format: str) -> dict[str, Any]:
        author: CommentAuthor = comment.author
        snippet: dict[str, Any] = {
            "channelId": comment.channel_id, "videoId": comment.video_id,
            "textDisplay": html.escape(comment.text) if text_format == "html" else comment.text,
            "textOriginal": comment.text, "authorDisplayName": author.display_name,
            "authorProfileImageUrl": f"https://yt3.sandbox.invalid/{author.channel_id}/default.jpg",
            "authorChannelUrl": f"http://www.youtube.com/{author.display_name}",
            "authorChannelId": {"value": author.channel_id},
        }
        if isinstance(comment, ReplyTruth):
            snippet["parentId"] = comment.parent_id
        snippet |= {"canRate": True, "viewerRating": "none", "likeCount": comment.like_count,
                    "publishedAt": youtube_time(comment.published_at), "updatedAt": youtube_time(comment.updated_at)}
        item: dict[str, Any] = {"kind": "youtube#comment", "etag": "", "id": comment.id, "snippet": snippet}
        item["etag"] = _etag(item)
        return item

    # --- replies --------------------------------------------------------------------------------
    def _comments(self, params: QueryParams, parts: set[str], repeat: bool) -> dict[str, Any]:
        by = self._filter(params, ("parentId", "id"))
        text_format = self._text_format(params)
        if by == "id":
            items = []
            for comment_id in self._ids(params):
                reply = self.data.parse_reply_id(comment_id)
                thread = self.data.parse_thread_id(comment_id)
                if reply is not None:
                    items.append(self._part(self.comment_resource(self.data.reply(*reply), text_format), parts))
                elif thread is not None:
                    items.append(self._part(self.comment_resource(self.data.thread(*thread), text_format), parts))
            return self._envelope("comment", items, len(items), len(items), None)
        parent = params["parentId"]
        thread = self.data.parse_thread_id(parent)
        if thread is None:
            raise YouTubeError(404, "commentNotFound", "The comment identified by the <code>parentId</code> "
                               "parameter could not be found.", domain="youtube.comment")
        limit = self._max_results(params, REPLIES_DEFAULT, REPLIES_MAX)
        shown, _, following = self._paged("replies", parent, params, limit,
                                          lambda after: self.data.replies_oldest_first(*thread, after), repeat)
        items = [self._part(self.comment_resource(self.data.reply(*thread, r), text_format), parts) for r in shown]
        return self._envelope("comment", items, len(items), limit, following)

    @staticmethod
    def _part(item: dict[str, Any], parts: set[str]) -> dict[str, Any]:
        return item if "snippet" in parts else {k: v for k, v in item.items() if k != "snippet"}

    # --- subscriptions --------------------------------------------------------------------------
    def _subscriptions(self, params: QueryParams, parts: set[str], repeat: bool) -> dict[str, Any]:
        by = self._filter(params, ("channelId", "id", "mine", "myRecentSubscribers", "mySubscribers"))
        if by != "channelId":
            raise YouTubeError(400, "invalidFilters", "The sandbox serves subscriptions by channelId only.")
        order = params.get("order", SUBSCRIPTION_ORDERS[0])
        if order not in SUBSCRIPTION_ORDERS:
            raise YouTubeError(400, "invalidParameter", f"Invalid value '{order}' for order")
        limit = self._max_results(params, SUBSCRIPTIONS_DEFAULT, SUBSCRIPTIONS_MAX)
        channel = params["channelId"]
        p = self.data.parse_channel_id(channel)
        if p is None:
            raise YouTubeError(404, "subscriberNotFound", "The subscriber identified with the request cannot be "
                               "found.", domain="youtube.subscription")
        if self.data.subscriptions_private(p):
            raise YouTubeError(403, "subscriptionForbidden", "The requester is not allowed to access the requested "
                               "subscriptions.", domain="youtube.subscription")
        shown, _, following = self._paged(f"subs-{order}", channel, params, limit,
                                          lambda after: self.data.subscriptions_after(p, order, after), repeat)
        items = [self.subscription_resource(p, s, parts) for s in shown]
        return self._envelope("subscription", items, self.data.subscription_count(p), limit, following)

    def subscription_resource(self, p: int, s: int, parts: set[str]) -> dict[str, Any]:
        sub = self.data.subscription(p, s)
        item: dict[str, Any] = {"kind": "youtube#subscription", "etag": "", "id": sub.id}
        if "snippet" in parts:
            item["snippet"] = {
                "publishedAt": youtube_time(sub.published_at), "title": sub.title, "description": sub.description,
                "resourceId": {"kind": "youtube#channel", "channelId": sub.channel_id},
                "channelId": self.data.channel_id(p), "thumbnails": _thumbs(sub.thumbnails)}
        if "contentDetails" in parts:
            item["contentDetails"] = {"totalItemCount": sub.video_count, "newItemCount": 0, "activityType": "all"}
        if "subscriberSnippet" in parts:
            subscriber = self.data.channel(p)
            item["subscriberSnippet"] = {"title": subscriber.title, "description": subscriber.description,
                                         "channelId": subscriber.id, "thumbnails": _thumbs(subscriber.thumbnails)}
        item["etag"] = _etag(item)
        return item
