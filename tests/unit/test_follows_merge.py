"""Follows keep when they were first seen and what either side was named, whatever order jobs replay in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from socialsync.api import queries
from socialsync.storage import schema
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.staging import StagedUpserts

DAY = datetime(2026, 11, 1, tzinfo=UTC)


def _load(engine: Engine, moment: datetime, rows: list[dict[str, object]]) -> None:
    with engine.begin() as conn, StagedUpserts(conn, newer="synced_at") as stage:
        stage.append(schema.follows, [{"network": "youtube", "first_seen_at": moment, "removed_at": None,
                                       "synced_at": moment, "follower_name": None, "followee_name": None, **row}
                                      for row in rows])
        stage.merge()


def _rows(engine: Engine) -> dict[str, tuple[object, ...]]:
    with engine.connect() as conn:
        return {r.followee_id: (r.first_seen_at, r.synced_at, r.followee_name, r.follower_name)
                for r in conn.execute(select(schema.follows))}


def test_a_later_job_keeps_first_seen_and_an_earlier_replay_changes_nothing_else(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'w.db'}")
    one = {"follower_id": "UCa", "followee_id": "UCb", "followee_name": "B"}
    _load(engine, DAY + timedelta(days=2), [{**one, "followee_name": "B renamed"}])
    _load(engine, DAY, [one])  # an older job replayed after the newer one (a rebuild, newest first)
    assert _rows(engine)["UCb"] == (DAY, DAY + timedelta(days=2), "B renamed", None)
    # A list that does not name the other side (a followers list naming only the follower) keeps the name held.
    _load(engine, DAY + timedelta(days=3), [{**one, "followee_name": None, "follower_name": "A"}])
    assert _rows(engine)["UCb"] == (DAY, DAY + timedelta(days=3), "B renamed", "A")


def test_the_api_lists_follows_both_ways_newest_first(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'w.db'}")
    _load(engine, DAY, [{"follower_id": "UCa", "followee_id": f"UC{i}"} for i in range(5)])
    _load(engine, DAY + timedelta(days=1), [{"follower_id": f"UCx{i}", "followee_id": "UCa"} for i in range(3)])
    with engine.connect() as conn:
        first = queries.follows(conn, "youtube", "UCa", "following", None, 3, False)
        rest = queries.follows(conn, "youtube", "UCa", "following", first.next_cursor, 3, False)
        followers = queries.follows(conn, "youtube", "UCa", "followers", None, 10, False)
        other = queries.follows(conn, "tiktok", "UCa", "following", None, 10, False)
    assert [r["followee_id"] for r in first.items + rest.items] == [f"UC{i}" for i in (4, 3, 2, 1, 0)]
    assert rest.next_cursor is None and {r["follower_id"] for r in followers.items} == {"UCx0", "UCx1", "UCx2"}
    assert other.items == []


def test_the_api_lists_what_a_profile_liked_newest_first(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn, StagedUpserts(conn, newer="synced_at") as stage:
        stage.append(schema.likes, [
            {"network": "tiktok", "post_id": f"7{i}", "author_id": "shop", "post_author_id": "x", "caption": None,
             "first_seen_at": DAY + timedelta(hours=i), "removed_at": None, "synced_at": DAY} for i in range(4)])
        stage.merge()
    with engine.connect() as conn:
        first = queries.likes(conn, "tiktok", "shop", None, 3, False)
        rest = queries.likes(conn, "tiktok", "shop", first.next_cursor, 3, False)
    assert [r["post_id"] for r in first.items + rest.items] == ["73", "72", "71", "70"] and rest.next_cursor is None
