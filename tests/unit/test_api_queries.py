"""The sync API's reads: keyset pages that neither skip nor repeat, and no read across networks."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from socialsync.api import queries
from socialsync.storage import schema
from socialsync.storage.engine import warehouse_engine

NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path) -> Engine:  # type: ignore[no-untyped-def]
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'w.db'}")
    post = {"profile_id": "7", "kind": "image", "caption": "c", "deleted": False, "synced_at": NOW}
    with engine.begin() as conn:
        # 25 posts, five of them at the very same second: the id breaks the tie.
        conn.execute(schema.posts.insert(), [
            {**post, "network": "instagram", "post_id": f"p{i:02d}", "created_at": NOW - timedelta(hours=min(i, 20))}
            for i in range(25)])
        conn.execute(schema.posts.insert(), [
            {**post, "network": "tiktok", "post_id": "t1", "created_at": NOW},
            {**post, "network": "instagram", "post_id": "gone", "created_at": NOW, "deleted": True}])
        conn.execute(schema.comments.insert(), [
            {"network": "instagram", "comment_id": f"c{i}", "post_id": "p00", "created_at": NOW - timedelta(minutes=i),
             "deleted": False, "synced_at": NOW} for i in range(5)])
        conn.execute(schema.comments.insert(), [
            {"network": "tiktok", "comment_id": "x", "post_id": "p00", "created_at": NOW, "deleted": False,
             "synced_at": NOW}])
        jobs = conn.execute(schema.sync_jobs.insert().returning(schema.sync_jobs.c.id), [
            {"network": "instagram", "entity_id": "7", "cursor": {}, "status": "succeeded", "run_id": "r1"},
            {"network": "instagram", "entity_id": "8", "cursor": {}, "status": "failed", "run_id": "r1",
             "error_type": "ApiError", "error_message": "gone"},
            {"network": "tiktok", "entity_id": "7", "cursor": {}, "status": "succeeded", "run_id": "r1"},
        ]).scalars().all()
        conn.execute(schema.sync_tasks.insert(), [
            {"job_id": jobs[0], "kind": "posts", "external_id": "7", "status": "succeeded"},
            {"job_id": jobs[0], "kind": "comments", "external_id": "p00", "status": "partial"}])
    yield engine
    engine.dispose()


def test_pages_of_posts_are_newest_first_and_neither_skip_nor_repeat(engine: Engine) -> None:
    seen, cursor = [], None
    with engine.connect() as conn:
        while True:
            page = queries.posts(conn, "instagram", "7", cursor, 4, include_deleted=False)
            assert len(page.items) <= 4
            seen += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
        everything = queries.posts(conn, "instagram", "7", None, 100, include_deleted=True).items
    assert "gone" in {p["post_id"] for p in everything} and "gone" not in {p["post_id"] for p in seen}
    ids = [p["post_id"] for p in seen]
    assert len(ids) == len(set(ids)) == 25
    keys = [(p["created_at"], p["post_id"]) for p in seen]
    assert keys == sorted(keys, reverse=True)


def test_reads_stay_in_their_network(engine: Engine) -> None:
    with engine.connect() as conn:
        assert [c["comment_id"] for c in queries.comments(conn, "instagram", "p00", None, 10, False).items] == [
            "c0", "c1", "c2", "c3", "c4"]
        assert [c["comment_id"] for c in queries.comments(conn, "tiktok", "p00", None, 10, False).items] == ["x"]
        assert not queries.post_exists(conn, "tiktok", "p00") and queries.post_exists(conn, "tiktok", "t1")
        tiktok_job = queries.recent_jobs(conn, "tiktok", 10)[0]["id"]
        assert queries.job(conn, "instagram", tiktok_job) is None
        assert queries.job(conn, "tiktok", tiktok_job) is not None
        assert queries.run_summary(conn, "instagram", "r1") == {"succeeded": 1, "failed": 1}
        assert queries.profile(conn, "youtube", "7", 30, NOW.date()) is None


def test_a_job_with_its_sub_syncs_and_counts(engine: Engine) -> None:
    with engine.connect() as conn:
        page = queries.run_jobs(conn, "instagram", "r1", None, 1)
        assert [j["entity_id"] for j in page.items] == ["7"] and page.next_cursor
        rest = queries.run_jobs(conn, "instagram", "r1", page.next_cursor, 1)
        assert [j["entity_id"] for j in rest.items] == ["8"] and rest.next_cursor is None
        job = queries.job(conn, "instagram", page.items[0]["id"])
    assert job is not None
    assert job["counts"] == {"pages": 0, "items": 0, "sub_syncs": {"succeeded": 1, "partial": 1}}
    assert [(t["kind"], t["status"]) for t in job["sync_tasks"]] == [("posts", "succeeded"), ("comments", "partial")]


def _forged(*values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(["posts", "7", *values]).encode()).decode()


@pytest.mark.parametrize("cursor", [
    "", "bm9wZQ", "!!!", queries.encode_cursor("comments", (NOW, "c1"), "p00"),
    queries.encode_cursor("posts", ("yesterday", "p1"), "7"),
    # the same list of another profile: its posts are not this profile's next page
    queries.encode_cursor("posts", (NOW, "p1"), "8"),
    queries.encode_cursor("posts", (NOW, "p1")),  # no parent at all
    # values no column holds: a time without its zone, an object, a number for a text id, a NUL, a huge text
    _forged("2026-11-01T00:00:00", "p1"), _forged(NOW.isoformat(), {"$ne": 1}), _forged(NOW.isoformat(), 5),
    _forged(NOW.isoformat(), "p\x001"), _forged(NOW.isoformat(), "p" * 5000), _forged(NOW.isoformat()),
    "A" * 100_000,
])
def test_a_cursor_this_list_did_not_hand_out_is_refused(engine: Engine, cursor: str) -> None:
    with engine.connect() as conn:
        if cursor == "":
            assert len(queries.posts(conn, "instagram", "7", cursor, 3, False).items) == 3  # no cursor: page one
            return
        with pytest.raises(queries.BadCursor):
            queries.posts(conn, "instagram", "7", cursor, 3, False)


def test_a_public_account_is_read_by_its_username_or_its_id(engine: Engine) -> None:
    """An account tracked as ``@username`` keys its rows by the IG user id the API named."""
    with engine.begin() as conn:
        conn.execute(schema.tracked_entities.insert(), [
            {"network": "instagram", "entity_id": "@brand.one", "active": True, "misses": 0, "added_at": NOW,
             "profile_id": "7", "username": "brand.one"}])
        conn.execute(schema.profiles.insert(), [
            {"network": "instagram", "profile_id": "7", "username": "brand.one", "synced_at": NOW}])
    with engine.connect() as conn:
        by_name = queries.profile(conn, "instagram", "@brand.one", 30, NOW.date())
        by_id = queries.profile(conn, "instagram", "7", 30, NOW.date())
        posts = queries.posts(conn, "instagram", "@brand.one", None, 100, False)
        assert queries.profile(conn, "tiktok", "@brand.one", 30, NOW.date()) is None
    assert by_name is not None and by_id is not None
    assert by_name["profile_id"] == "7" and by_name["profile"] == by_id["profile"]
    assert by_name["tracked"] is not None and by_name["counts"] == by_id["counts"] and by_name["counts"]["posts"] == 25
    assert len(posts.items) == 25


@pytest.mark.parametrize("value", [True, 2**63, -(2**63) - 1, "12", 1.5, None])
def test_a_run_jobs_cursor_holds_an_id_a_bigint_column_can(engine: Engine, value: object) -> None:
    forged = base64.urlsafe_b64encode(json.dumps(["run_jobs", "r1", value]).encode()).decode()
    with engine.connect() as conn:
        with pytest.raises(queries.BadCursor):
            queries.run_jobs(conn, "instagram", "r1", forged, 1)
        # and the cursor a page hands out goes on under its own run only
        page = queries.run_jobs(conn, "instagram", "r1", None, 1)
        assert page.next_cursor and queries.run_jobs(conn, "instagram", "r1", page.next_cursor, 1).items
        with pytest.raises(queries.BadCursor, match="another run"):
            queries.run_jobs(conn, "instagram", "r2", page.next_cursor, 1)
