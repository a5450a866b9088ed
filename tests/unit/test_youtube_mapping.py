"""YouTube payloads -> unified records: durations, hidden counts, threads and replies, quarantine."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from socialsync.networks.base import (
    AuthError,
    CursorExpiredError,
    NotFoundError,
    QuotaExhaustedError,
    RawPage,
    ThrottledError,
    TransientError,
    Unavailable,
)
from socialsync.networks.youtube.client import google_error, seconds_to_quota_reset, uploads_playlist
from socialsync.networks.youtube.mapping import normalize, post_stubs
from socialsync.networks.youtube.models import duration_seconds, parse_rfc3339

CHANNEL = "UC" + "a" * 22


@pytest.mark.parametrize(("text", "seconds"), [("PT45S", 45), ("PT1M", 60), ("PT1M3S", 63), ("PT1H2M3S", 3723),
                                               ("P1DT1S", 86401), ("PT0S", 0), ("", None), ("P", None),
                                               ("1:03", None)])
def test_iso_8601_durations(text: str, seconds: int | None) -> None:
    assert duration_seconds(text) == seconds


def test_rfc3339_times() -> None:
    assert parse_rfc3339("2026-10-01T12:00:00Z") == datetime(2026, 10, 1, 12, tzinfo=UTC)
    assert parse_rfc3339("2026-10-01T14:00:00.5+02:00") == datetime(2026, 10, 1, 12, 0, 0, 500000, tzinfo=UTC)
    assert parse_rfc3339("yesterday") == "yesterday"  # left for validation to reject


def _video(video_id: str, duration: str, **statistics: str) -> dict[str, Any]:
    return {"kind": "youtube#video", "id": video_id,
            "snippet": {"publishedAt": "2026-10-01T12:00:00Z", "channelId": CHANNEL, "title": "A title",
                        "description": "", "thumbnails": {"default": {"url": "https://i/d.jpg"},
                                                          "high": {"url": "https://i/h.jpg"}}},
            "contentDetails": {"duration": duration}, "statistics": statistics}


def _uploads(*videos: dict[str, Any], listed: list[str] | None = None) -> dict[str, Any]:
    ids = listed if listed is not None else [v["id"] for v in videos]
    return {"kind": "socialsync#uploadsPage",
            "playlistItems": {"items": [{"contentDetails": {"videoId": i, "videoPublishedAt": "2026-10-01T12:00:00Z"}}
                                        for i in ids]},
            "videos": {"items": list(videos)}}


def test_a_short_and_a_video_with_hidden_counts() -> None:
    payload = _uploads(_video("short000001", "PT59S", viewCount="10", likeCount="2", commentCount="3"),
                       _video("long0000001", "PT12M", viewCount="99"))
    out = normalize(RawPage(1, "posts", CHANNEL, payload))
    short, long = out.posts
    assert (short.product_type, short.permalink, short.comments_count) == (
        "short", "https://www.youtube.com/shorts/short000001", 3)
    assert (long.product_type, long.like_count, long.comments_count, long.view_count) == ("video", None, None, 99)
    assert [m.thumbnail_url for m in out.media] == ["https://i/h.jpg"] * 2
    assert {(m.entity_id, m.metric) for m in out.metrics} == {
        ("short000001", "view_count"), ("short000001", "like_count"), ("short000001", "comments_count"),
        ("long0000001", "view_count")}
    # Comments turned off: no count, so nothing to walk.
    assert [(s.post_id, s.comments_count) for s in post_stubs(payload)] == [("short000001", 3), ("long0000001", None)]


def test_a_listed_video_missing_from_videos_is_not_a_post() -> None:
    payload = _uploads(_video("v0000000001", "PT1M"), listed=["v0000000001", "gone0000001"])
    assert [p.post_id for p in normalize(RawPage(1, "posts", CHANNEL, payload)).posts] == ["v0000000001"]
    assert [s.post_id for s in post_stubs(payload)] == ["v0000000001"]


def test_a_channel_with_a_hidden_subscriber_count() -> None:
    item = {"id": CHANNEL, "snippet": {"title": "Chan", "customUrl": "@chan", "description": "bio"},
            "statistics": {"viewCount": "5", "hiddenSubscriberCount": True, "videoCount": "2"}}
    out = normalize(RawPage(1, "profile", CHANNEL, {"items": [item]}))
    (profile,) = out.profiles
    assert (profile.username, profile.followers_count, profile.posts_count) == ("@chan", None, 2)
    assert {m.metric for m in out.metrics} == {"posts_count", "view_count"}


def _comment(comment_id: str, parent: str | None = None) -> dict[str, Any]:
    snippet = {"videoId": "v0000000001", "textOriginal": f"text {comment_id}", "authorDisplayName": "fan",
               "authorChannelId": {"value": "UCfan"}, "likeCount": 1, "publishedAt": "2026-10-02T00:00:00Z"}
    if parent:
        snippet["parentId"] = parent
    return {"kind": "youtube#comment", "id": comment_id, "snippet": snippet}


def test_threads_inline_replies_and_fetched_replies_become_comments_with_parents() -> None:
    thread = {"id": "Ugt1", "snippet": {"videoId": "v0000000001", "topLevelComment": _comment("Ugt1"),
                                        "totalReplyCount": 7},
              "replies": {"comments": [_comment("Ugt1.r7", "Ugt1"), _comment("Ugt1.r6", "Ugt1")]}}
    broken = {"id": "Ugt2", "snippet": {"topLevelComment": {"id": "Ugt2", "snippet": {"textOriginal": "no time"}}}}
    payload = {"commentThreads": {"items": [thread, broken]},
               "replies": {"Ugt1": [{"items": [_comment(f"Ugt1.r{n}", "Ugt1") for n in range(1, 8)]}]}}
    out = normalize(RawPage(1, "comments", "v0000000001", payload))
    assert {(c.comment_id, c.parent_comment_id) for c in out.comments} == {
        ("Ugt1", None), *((f"Ugt1.r{n}", "Ugt1") for n in range(1, 8))}
    assert [(r.record_kind, r.record_id) for r in out.rejects] == [("comment", "Ugt2")]


def _error(status: int, reason: str, message: str = "m") -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "errors": [{"reason": reason, "domain": "youtube"}]}}


@pytest.mark.parametrize(("status", "reason", "kind"), [
    (403, "quotaExceeded", QuotaExhaustedError), (403, "rateLimitExceeded", ThrottledError),
    (403, "userRateLimitExceeded", ThrottledError), (403, "commentsDisabled", Unavailable),
    (404, "videoNotFound", NotFoundError), (404, "channelNotFound", NotFoundError),
    (400, "invalidPageToken", CursorExpiredError), (400, "keyInvalid", AuthError),
    (503, "backendError", TransientError), (500, "backendError", TransientError),
])
def test_google_errors(status: int, reason: str, kind: type[Exception]) -> None:
    error = google_error(status, _error(status, reason), "videos", 0.5)
    assert type(error) is kind
    if kind is QuotaExhaustedError:
        assert error.retry_after is not None and 0 < error.retry_after <= 25 * 3600
    assert not isinstance(error, QuotaExhaustedError) or not error.retryable


def test_the_quota_resets_at_midnight_pacific() -> None:
    # 07:00 UTC on 2 November 2026 is 23:00 in Los Angeles (PST): an hour to go.
    assert seconds_to_quota_reset(datetime(2026, 11, 2, 7, tzinfo=UTC)) == 3600
    assert uploads_playlist(CHANNEL) == "UU" + "a" * 22
