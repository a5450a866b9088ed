from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from socialsync.storage.engine import warehouse_engine
from socialsync.storage.schema import posts
from socialsync.storage.upserts import upsert

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _row(post_id: str, likes: int) -> dict:
    return {"network": "instagram", "post_id": post_id, "profile_id": "1", "kind": "image", "caption": "c",
            "created_at": NOW, "like_count": likes, "deleted": False, "synced_at": NOW}


def _table(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(posts).order_by(posts.c.post_id))]


def test_upserting_twice_equals_once(tmp_path) -> None:
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'w.db'}")
    rows = [_row("a", 1), _row("b", 2)]
    with engine.begin() as conn:
        upsert(conn, posts, rows)
    once = _table(engine)
    with engine.begin() as conn:
        upsert(conn, posts, rows)
    assert _table(engine) == once
    assert len(once) == 2


def test_upsert_updates_in_place_and_last_duplicate_wins(tmp_path) -> None:
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        upsert(conn, posts, [_row("a", 1)])
        upsert(conn, posts, [_row("a", 5), _row("a", 7), _row("c", 0)])
    with engine.connect() as conn:
        rows = {r.post_id: r for r in conn.execute(select(posts))}
    assert set(rows) == {"a", "c"}
    assert rows["a"].like_count == 7
    assert rows["a"].created_at == NOW  # read back as aware UTC
