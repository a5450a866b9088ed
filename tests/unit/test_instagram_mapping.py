from __future__ import annotations

from datetime import UTC, datetime

import pytest

from socialsync.networks.base import RawPage
from socialsync.networks.instagram.mapping import normalize, post_stubs
from socialsync.networks.instagram.models import parse_graph_time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00+0000", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T14:30:05+0200", datetime(2024, 5, 1, 12, 30, 5, tzinfo=UTC)),
        ("2024-05-01T12:00:00.250+0000", datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_graph_timestamps(text: str, expected: datetime) -> None:
    assert parse_graph_time(text) == expected


def test_unparseable_timestamp_is_left_for_validation_to_reject() -> None:
    assert parse_graph_time("yesterday") == "yesterday"


IMAGE = {"id": "11", "caption": "hello @bob #sun", "media_type": "IMAGE", "media_product_type": "FEED",
         "media_url": "https://cdn/i/11.jpg", "permalink": "https://ig/p/x/", "timestamp": "2024-05-01T12:00:00+0000",
         "like_count": 3, "comments_count": 2}
REEL = {"id": "12", "media_type": "VIDEO", "media_product_type": "REELS", "media_url": "https://cdn/v/12.mp4",
        "thumbnail_url": "https://cdn/t/12.jpg", "timestamp": "2024-05-02T12:00:00+0000", "comments_count": 0}
CAROUSEL = {"id": "13", "caption": "three", "media_type": "CAROUSEL_ALBUM", "timestamp": "2024-05-03T12:00:00+0000",
            "media_url": "https://cdn/i/c0.jpg",
            "children": {"data": [
                {"id": "c0", "media_type": "IMAGE", "media_url": "https://cdn/i/c0.jpg"},
                {"id": "c1", "media_type": "VIDEO", "media_url": "https://cdn/v/c1.mp4",
                 "thumbnail_url": "https://cdn/t/c1.jpg"},
                {"id": "c2", "media_type": "IMAGE", "media_url": "https://cdn/i/c2.jpg"}]}}


def _posts(*items: dict) -> RawPage:
    return RawPage(id=7, kind="posts", parent_id="99", payload={"data": list(items)})


def test_single_photo_and_reel_are_their_own_media() -> None:
    out = normalize(_posts(IMAGE, REEL))
    assert [(p.post_id, p.kind, p.product_type) for p in out.posts] == [("11", "image", "feed"),
                                                                       ("12", "video", "reels")]
    assert out.posts[0].profile_id == "99"
    assert out.posts[0].created_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert out.posts[1].caption is None  # Graph omits an empty caption
    assert [(m.media_id, m.post_id, m.position, m.media_type, m.thumbnail_url) for m in out.media] == [
        ("11", "11", 0, "image", None), ("12", "12", 0, "video", "https://cdn/t/12.jpg")]


def test_carousel_children_become_ordered_media() -> None:
    out = normalize(_posts(CAROUSEL))
    assert out.posts[0].kind == "carousel"
    assert [(m.media_id, m.position, m.media_type) for m in out.media] == [
        ("c0", 0, "image"), ("c1", 1, "video"), ("c2", 2, "image")]
    assert all(m.post_id == "13" for m in out.media)


def test_post_metrics_are_snapshotted() -> None:
    out = normalize(_posts(IMAGE))
    assert {(m.entity_id, m.metric, m.value) for m in out.metrics} == {("11", "like_count", 3.0),
                                                                     ("11", "comments_count", 2.0)}


def test_a_bad_record_is_quarantined_and_the_rest_of_the_page_proceeds() -> None:
    broken = {"id": "14", "media_type": "HOLOGRAM", "timestamp": "not a time"}
    out = normalize(_posts(IMAGE, broken, "garbage", CAROUSEL))
    assert [p.post_id for p in out.posts] == ["11", "13"]
    assert [(r.record_kind, r.record_id) for r in out.rejects] == [("post", "14"), ("post", None)]
    assert "media_type" in out.rejects[0].reason and "timestamp" in out.rejects[0].reason
    assert out.rejects[1].record == {"value": "garbage"}


def test_unknown_fields_never_fail_a_record() -> None:
    out = normalize(_posts({**IMAGE, "brand_new_graph_field": {"x": 1}}))
    assert [p.post_id for p in out.posts] == ["11"] and not out.rejects


def test_profile_and_its_metrics() -> None:
    page = RawPage(1, "profile", "99", {"id": "99", "username": "ann", "name": "Ann", "biography": "hi",
                                       "followers_count": 10, "follows_count": 2, "media_count": 3})
    out = normalize(page)
    assert out.profiles[0].model_dump() == {
        "profile_id": "99", "username": "ann", "display_name": "Ann", "bio": "hi", "followers_count": 10,
        "following_count": 2, "posts_count": 3, "avatar_url": None, "website": None}
    assert {m.metric for m in out.metrics} == {"followers_count", "following_count", "posts_count"}


def test_comments_keep_their_author() -> None:
    page = RawPage(2, "comments", "11", {"data": [
        {"id": "c9", "text": "nice", "timestamp": "2024-05-01T13:00:00+0000", "username": "bob",
         "like_count": 1, "from": {"id": "55", "username": "bob"}},
        {"id": "c8", "text": "no time"}]})
    out = normalize(page)
    assert [(c.comment_id, c.post_id, c.author_id, c.author_username, c.content) for c in out.comments] == [
        ("c9", "11", "55", "bob", "nice")]
    assert [r.record_id for r in out.rejects] == ["c8"]


def test_post_stubs_are_lenient() -> None:
    stubs = post_stubs({"data": [IMAGE, {"id": "x"}, {"no": "id"}]})
    assert [(s.post_id, s.comments_count) for s in stubs] == [("11", 2), ("x", None)]
    assert stubs[0].created_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
