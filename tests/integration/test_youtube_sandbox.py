"""The sandbox speaks the YouTube Data API v3 protocol over the same dataset as Instagram's."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import pytest

from socialsync.sandbox.dataset import Dataset
from socialsync.sandbox.faults import FAULT_KINDS, FaultPlan
from socialsync.sandbox.graph_api import walk_pages
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.sandbox.youtube_dataset import BOUNDARY_REPLIES, INLINE_REPLIES, YouTubeDataset, youtube_time
from tests.integration.conftest import SMALL

KEY = {"X-Goog-Api-Key": "sandbox-key"}
_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$")


def _yt(sandbox: SandboxServer) -> YouTubeDataset:
    data: YouTubeDataset = sandbox.app.state.youtube.data
    return data


def _get(sandbox: SandboxServer, resource: str, headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
    return httpx.get(f"{sandbox.url}/youtube/v3/{resource}", params=params,
                     headers=KEY if headers is None else headers, timeout=5)


def _walk(sandbox: SandboxServer, resource: str, **params: Any) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    token = None
    while not pages or token:
        answer = _get(sandbox, resource, **params, **({"pageToken": token} if token else {}))
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        token = pages[-1].get("nextPageToken")
    return pages


def _reason(answer: httpx.Response) -> tuple[int, str]:
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "errors", "status"} and error["code"] == answer.status_code
    return answer.status_code, error["errors"][0]["reason"]


def _biggest_channel(data: YouTubeDataset) -> int:
    return max(range(data.dataset.spec.profiles), key=data.video_count)


def _seconds(duration: str) -> int:
    match = _DURATION.match(duration)
    assert match, duration
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def test_ids_decode_back_to_their_indexes_and_look_like_youtube_ids() -> None:
    data = YouTubeDataset(Dataset(SMALL))
    p, j = data.busiest_video() or (0, 0)
    channel, video, thread, reply = (data.channel_id(p), data.video_id(p, j), data.thread_id(p, j, 1),
                                     data.reply_id(p, j, 1, 3))
    assert channel.startswith("UC") and len(channel) == 24 and data.uploads_playlist_id(p) == "UU" + channel[2:]
    assert len(video) == 11 and thread.startswith("Ug") and 20 <= len(thread) <= 26
    assert reply.startswith(thread + ".") and all(_ID.match(i) for i in (channel, video, thread, *reply.split(".")))
    assert data.parse_channel_id(channel) == p and data.parse_uploads_playlist_id(data.uploads_playlist_id(p)) == p
    assert data.parse_video_id(video) == (p, j) and data.parse_thread_id(thread) == (p, j, 1)
    assert data.parse_reply_id(reply) == (p, j, 1, 3)
    assert data.parse_handle(data.channel(p).handle) == p and data.parse_handle("@nobody_here_1") is None
    tampered = video[:-1] + ("A" if video[-1] != "A" else "B")
    assert data.parse_video_id(tampered) is None and data.parse_channel_id("UC" + "A" * 22) is None
    assert data.parse_channel_id(data.fan_channel_id(7)) is None  # a commenter's channel is no channel here


def test_the_key_travels_in_a_header_and_a_missing_or_wrong_key_is_refused(sandbox: SandboxServer) -> None:
    data = _yt(sandbox)
    params: dict[str, Any] = {"part": "id", "id": data.channel_id(0)}
    assert _get(sandbox, "channels", **params).json()["items"][0]["id"] == data.channel_id(0)
    for headers in ({}, {"X-Goog-Api-Key": "wrong"}):
        refused = _get(sandbox, "channels", headers=headers, **params)
        assert _reason(refused) == (400, "badRequest")
        assert refused.json()["error"]["message"] == "API key not valid. Please pass a valid API key."
        assert refused.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert _get(sandbox, "channels", headers={}, key="sandbox-key", **params).status_code == 200
    assert sandbox.counters["youtube:key_in_url"] == 1  # what tests assert our client never does
    assert sandbox.counters["youtube:unauthorized"] == 2
    assert sandbox.counters["youtube:units"] == 2 == sandbox.counters["youtube:channels"]  # refusals are free


def test_channels_fifty_ids_in_one_call_unknown_ones_absent_hidden_subscribers(sandbox: SandboxServer) -> None:
    data = _yt(sandbox)
    real = [data.channel_id(p) for p in range(SMALL.profiles)]
    unknown = [data.fan_channel_id(n) for n in range(40)] + ["UCnope", "", "x" * 24, data.uploads_playlist_id(0)]
    ids = real[:3] + unknown + real[3:]
    assert len(ids) == 50
    body = _get(sandbox, "channels", part="snippet,statistics,contentDetails", id=",".join(ids)).json()
    assert [item["id"] for item in body["items"]] == real and body["pageInfo"]["totalResults"] == SMALL.profiles
    for p, item in enumerate(body["items"]):
        truth = data.channel(p)
        assert item["kind"] == "youtube#channel" and item["etag"]
        assert item["snippet"]["customUrl"] == truth.handle and item["snippet"]["title"] == truth.title
        assert item["snippet"]["publishedAt"] == youtube_time(truth.published_at)
        assert set(item["snippet"]["thumbnails"]) == {"default", "medium", "high"}
        assert item["contentDetails"]["relatedPlaylists"]["uploads"] == truth.uploads_playlist_id
        stats = item["statistics"]
        assert stats["videoCount"] == str(truth.video_count) and stats["viewCount"] == str(truth.view_count)
        assert stats["hiddenSubscriberCount"] is (truth.subscriber_count is None)
        assert stats.get("subscriberCount") == (None if truth.subscriber_count is None else str(truth.subscriber_count))
    assert "subscriberCount" not in body["items"][2]["statistics"]  # p % 10 == 2 hides it
    assert _reason(_get(sandbox, "channels", part="id", id=",".join([*ids, real[0]]))) == (400, "invalidFilters")
    by_handle = _get(sandbox, "channels", part="id", forHandle=data.channel(4).handle).json()
    assert [item["id"] for item in by_handle["items"]] == [real[4]]
    nothing = _get(sandbox, "channels", part="id", id="UCnope").json()
    assert "items" not in nothing and nothing["pageInfo"]["totalResults"] == 0


def test_uploads_page_to_the_end_newest_first(sandbox: SandboxServer) -> None:
    data = _yt(sandbox)
    p = _biggest_channel(data)
    playlist = data.uploads_playlist_id(p)
    pages = _walk(sandbox, "playlistItems", part="contentDetails,snippet", playlistId=playlist, maxResults=7)
    items = [item for page in pages for item in page["items"]]
    truth = list(data.videos_newest_first(p))
    assert [i["contentDetails"]["videoId"] for i in items] == [data.video_id(p, j) for j in truth]
    assert [i["contentDetails"]["videoPublishedAt"] for i in items] == [
        youtube_time(data.dataset.post_time(p, j)) for j in truth]
    assert [i["snippet"]["position"] for i in items] == list(range(len(truth)))
    assert all(page["pageInfo"] == {"totalResults": len(truth), "resultsPerPage": 7} for page in pages)
    assert all(len(page["items"]) <= 7 for page in pages) and "nextPageToken" not in pages[-1]
    assert all(page["nextPageToken"] for page in pages[:-1])
    expected = walk_pages(lambda before: data.videos_newest_first(p, before), playlist, 7)
    assert len(pages) == len(expected) == sandbox.counters["youtube:playlistItems"] == sandbox.counters["youtube:units"]
    clamped = _get(sandbox, "playlistItems", part="id", playlistId=playlist, maxResults=500).json()
    assert clamped["pageInfo"]["resultsPerPage"] == 50 and len(clamped["items"]) <= 50
    assert len(_get(sandbox, "playlistItems", part="id", playlistId=playlist).json()["items"]) <= 5
    assert _reason(_get(sandbox, "playlistItems", part="id", playlistId="UU" + "A" * 22)) == (404, "playlistNotFound")


def test_a_page_token_from_an_earlier_epoch_or_garbage_is_invalid(sandbox: SandboxServer) -> None:
    data = _yt(sandbox)
    playlist = data.uploads_playlist_id(_biggest_channel(data))
    token = _get(sandbox, "playlistItems", part="id", playlistId=playlist, maxResults=5).json()["nextPageToken"]
    assert _get(sandbox, "playlistItems", part="id", playlistId=playlist, pageToken=token).status_code == 200
    other = data.uploads_playlist_id(0 if playlist != data.uploads_playlist_id(0) else 1)
    for bad_token, bad_playlist in (("garbage", playlist), (token[:-2], playlist), (token, other)):
        answer = _get(sandbox, "playlistItems", part="id", playlistId=bad_playlist, pageToken=bad_token)
        assert _reason(answer) == (400, "invalidPageToken")
    assert httpx.post(f"{sandbox.url}/_sandbox/control", json={"epoch": 1}).status_code == 200
    answer = _get(sandbox, "playlistItems", part="id", playlistId=playlist, pageToken=token)
    assert _reason(answer) == (400, "invalidPageToken")


def test_videos_fields_shorts_and_hidden_counts(sandbox: SandboxServer) -> None:
    data = _yt(sandbox)
    keys = [(p, j) for p in range(SMALL.profiles) for j in data.videos_newest_first(p)]
    items: list[dict[str, Any]] = []
    for start in range(0, len(keys), 48):  # 48 known and 2 unknown ids: 50, the most one call takes
        batch = [data.video_id(*k) for k in keys[start : start + 48]] + ["deadbeef000", data.video_id(0, 9999)]
        items += _get(sandbox, "videos", part="snippet,statistics,contentDetails", id=",".join(batch)).json()["items"]
    assert [item["id"] for item in items] == [data.video_id(*k) for k in keys]  # unknown ids simply absent
    shorts = hidden_likes = disabled = untagged = 0
    for (p, j), item in zip(keys, items, strict=True):
        truth = data.video(p, j)
        snippet, stats = item["snippet"], item["statistics"]
        assert snippet["publishedAt"] == youtube_time(truth.published_at) and snippet["publishedAt"].endswith("Z")
        assert snippet["channelId"] == data.channel_id(p) and snippet["title"] == truth.title
        assert snippet.get("tags") == (None if truth.tags is None else list(truth.tags))
        seconds = _seconds(item["contentDetails"]["duration"])
        assert seconds == truth.duration_s and (seconds <= 60) is truth.is_short
        assert stats["viewCount"] == str(truth.view_count)
        assert stats.get("likeCount") == (None if truth.like_count is None else str(truth.like_count))
        assert stats.get("commentCount") == (None if truth.comment_count is None else str(truth.comment_count))
        shorts += truth.is_short
        hidden_likes += "likeCount" not in stats
        disabled += "commentCount" not in stats
        untagged += "tags" not in snippet
    assert shorts == data.totals()["shorts"] and 0 < shorts < len(keys)
    assert hidden_likes and disabled and untagged
    assert _reason(_get(sandbox, "videos", part="snippet,bogus", id=data.video_id(*keys[0]))) == (400, "unknownPart")


def test_comment_threads_newest_first_with_the_newest_replies_inline(sandbox: SandboxServer) -> None:
    data = _yt(sandbox)
    p, j = data.busiest_video() or (0, 0)
    pages = _walk(sandbox, "commentThreads", part="snippet,replies", videoId=data.video_id(p, j), order="time",
                  textFormat="plainText", maxResults=500)
    assert all(page["pageInfo"]["resultsPerPage"] == 100 for page in pages)
    threads = [item for page in pages for item in page["items"]]
    truth = list(data.threads_newest_first(p, j))
    assert [t["id"] for t in threads] == [data.thread_id(p, j, k) for k in truth]
    for k, item in zip(truth, threads, strict=True):
        top, count = item["snippet"]["topLevelComment"], data.reply_count(p, j, k)
        assert item["snippet"]["totalReplyCount"] == count and top["id"] == item["id"]
        assert top["snippet"]["textOriginal"] == data.thread(p, j, k).text == top["snippet"]["textDisplay"]
        assert top["snippet"]["publishedAt"] == youtube_time(data.thread(p, j, k).published_at)
        inline = [reply["id"] for reply in item.get("replies", {}).get("comments", [])]
        assert inline == [reply.id for reply in data.replies_of(p, j, k)[:INLINE_REPLIES]]  # newest first
        assert ("replies" in item) is (count > 0)
    counts = {k: data.reply_count(p, j, k) for k in truth}
    assert {counts[k] for k in BOUNDARY_REPLIES} >= {5, 6} and counts[0] > 100
    reply = threads[truth.index(1)]["replies"]["comments"][0]
    parent = reply["snippet"]["parentId"]
    assert parent == data.thread_id(p, j, 1) and reply["id"].startswith(parent + ".")


def test_comments_by_parent_page_through_every_reply_oldest_first(sandbox: SandboxServer) -> None:
    data = _yt(sandbox)
    p, j = data.busiest_video() or (0, 0)
    for k in BOUNDARY_REPLIES:
        pages = _walk(sandbox, "comments", part="snippet", parentId=data.thread_id(p, j, k), maxResults=100,
                      textFormat="plainText")
        replies = [item for page in pages for item in page["items"]]
        truth = list(reversed(data.replies_of(p, j, k)))
        assert [r["id"] for r in replies] == [r.id for r in truth]
        assert [r["snippet"]["publishedAt"] for r in replies] == sorted(r["snippet"]["publishedAt"] for r in replies)
        assert {r["snippet"]["parentId"] for r in replies} == {data.thread_id(p, j, k)}
        assert all(len(page["items"]) <= 100 for page in pages) and "nextPageToken" not in pages[-1]
        if k == 0:
            assert len(replies) > 100 and len(pages) >= 3
    missing = _get(sandbox, "comments", part="snippet", parentId=data.thread_id(p, j, 99_999))
    assert _reason(missing) == (404, "commentNotFound")


def test_disabled_comments_and_unknown_videos(sandbox: SandboxServer) -> None:
    data = _yt(sandbox)
    p, j = next((p, j) for p in range(SMALL.profiles) for j in data.videos_newest_first(p)
                if data.comments_disabled(p, j))
    disabled = _get(sandbox, "commentThreads", part="snippet", videoId=data.video_id(p, j))
    assert _reason(disabled) == (403, "commentsDisabled")
    assert disabled.json()["error"]["errors"][0]["domain"] == "youtube.commentThread"
    assert _reason(_get(sandbox, "commentThreads", part="snippet", videoId="deadbeef000")) == (404, "videoNotFound")


def test_quota_is_units_per_day_then_quota_exceeded_until_the_next_day() -> None:
    with SandboxServer(SandboxConfig(spec=SMALL, youtube_units_per_day=3)) as sandbox:
        data = _yt(sandbox)
        assert _get(sandbox, "channels", part="id", id=data.channel_id(0)).status_code == 200
        assert _get(sandbox, "videos", part="id", id=data.video_id(0, 0)).status_code == 200
        assert _get(sandbox, "playlistItems", part="id", playlistId="UUnope").status_code == 404  # charged too
        refused = _get(sandbox, "channels", part="id", id=data.channel_id(0))
        assert _reason(refused) == (403, "quotaExceeded")
        assert refused.json()["error"]["errors"][0]["domain"] == "youtube.quota"
        assert sandbox.counters["youtube:units"] == 3 and sandbox.counters["youtube:quota_refused"] == 1
        httpx.post(f"{sandbox.url}/_sandbox/control", json={"epoch": 1})  # a new day
        assert _get(sandbox, "channels", part="id", id=data.channel_id(0)).status_code == 200
        httpx.post(f"{sandbox.url}/_sandbox/control", json={"youtube_units_per_day": 1})
        assert _get(sandbox, "channels", part="id", id=data.channel_id(0)).status_code == 200
        assert _reason(_get(sandbox, "channels", part="id", id=data.channel_id(0))) == (403, "quotaExceeded")
        assert sandbox.counters["youtube:units"] == 5 and sandbox.counters["youtube:quota_refused"] == 2
        assert sandbox.counters["youtube:channels"] + sandbox.counters["youtube:videos"] + sandbox.counters[
            "youtube:playlistItems"] == 5


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_kind_answers_the_youtube_way(kind: str) -> None:
    faults = FaultPlan(rate=1.0, kinds=(kind,), seed=5, timeout_s=0.3)
    with SandboxServer(SandboxConfig(spec=SMALL, faults=faults)) as sandbox:
        data = _yt(sandbox)
        playlist = data.uploads_playlist_id(_biggest_channel(data))
        params: dict[str, Any] = {"part": "contentDetails", "playlistId": playlist, "maxResults": 5}
        if kind in ("throttle_429", "throttle_graph"):
            answers = [_get(sandbox, "playlistItems", **params) for _ in range(2)]
            assert {_reason(a) for a in answers} == {(403, "rateLimitExceeded")}  # never a 429
            assert sandbox.counters["youtube:units"] == 0
        elif kind == "server_error":
            answers = [_get(sandbox, "playlistItems", **params) for _ in range(2)]
            assert {_reason(a) for a in answers} == {(500, "backendError"), (503, "backendError")}
            assert sandbox.counters["youtube:units"] == 0
        elif kind == "timeout":
            with pytest.raises(httpx.TimeoutException):
                httpx.get(f"{sandbox.url}/youtube/v3/playlistItems", params=params, headers=KEY, timeout=0.1)
            deadline = time.monotonic() + 2
            while not sandbox.counters["youtube:units"] and time.monotonic() < deadline:
                time.sleep(0.02)
            assert sandbox.counters["youtube:units"] == 1  # served late, and charged
        elif kind == "truncated":
            with pytest.raises(json.JSONDecodeError):
                json.loads(_get(sandbox, "playlistItems", **params).content)
        elif kind == "reset":
            with pytest.raises(httpx.TransportError):
                _get(sandbox, "playlistItems", **params)
        else:  # repeat: the last item of a page comes again at the top of the next one
            first = _get(sandbox, "playlistItems", **params).json()
            second = _get(sandbox, "playlistItems", **params, pageToken=first["nextPageToken"]).json()
            assert second["items"][0]["id"] == first["items"][-1]["id"]
        assert sandbox.counters[f"youtube:fault:{kind}"] >= 1 and faults.injected[kind] >= 1


def test_a_new_epoch_adds_and_deletes_videos_comments_and_replies(sandbox: SandboxServer) -> None:
    before, after = YouTubeDataset(Dataset(SMALL, epoch=0)), YouTubeDataset(Dataset(SMALL, epoch=3))
    p = next(p for p in range(SMALL.profiles) if after.dataset.deleted_posts(p))
    gone = min(after.dataset.deleted_posts(p))
    video = next((q, j) for q in range(SMALL.profiles) for j in before.videos_newest_first(q)
                 if after.dataset.deleted_comments(q, j) and not after.comments_disabled(q, j)
                 and after.dataset.comment_total(q, j) > before.dataset.comment_total(q, j))
    grown = next((q, j, k) for q in range(SMALL.profiles) for j in before.videos_newest_first(q)
                 for k in before.threads_newest_first(q, j)
                 if after.thread_visible(q, j, k) and after.reply_count(q, j, k) > before.reply_count(q, j, k) > 0)

    def state() -> tuple[list[str], list[str], list[str]]:
        uploads = _walk(sandbox, "playlistItems", part="contentDetails", playlistId=before.uploads_playlist_id(p),
                        maxResults=50)
        threads = _walk(sandbox, "commentThreads", part="id", videoId=before.video_id(*video), maxResults=100)
        replies = _walk(sandbox, "comments", part="id", parentId=before.thread_id(*grown), maxResults=100)
        return ([i["contentDetails"]["videoId"] for page in uploads for i in page["items"]],
                [i["id"] for page in threads for i in page["items"]],
                [i["id"] for page in replies for i in page["items"]])

    videos0, threads0, replies0 = state()
    assert httpx.post(f"{sandbox.url}/_sandbox/control", json={"epoch": 3}).json()["epoch"] == 3
    videos3, threads3, replies3 = state()
    assert videos3 == [after.video_id(p, j) for j in after.videos_newest_first(p)]
    assert before.video_id(p, gone) in videos0 and before.video_id(p, gone) not in videos3
    assert _get(sandbox, "videos", part="id", id=before.video_id(p, gone)).json()["items"] == []
    assert threads3 == [after.thread_id(*video, k) for k in after.threads_newest_first(*video)]
    assert set(threads0) - set(threads3) and set(threads3) - set(threads0)  # deleted ones and new ones
    assert replies3[: len(replies0)] == replies0 and len(replies3) == after.reply_count(*grown) > len(replies0)
    stats = httpx.get(f"{sandbox.url}/_sandbox/stats").json()
    assert stats["youtube_totals"] == after.totals() != before.totals() and "totals" in stats
