"""What earlier syncs saw: known posts and each post's comment watermark, for incremental runs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, select

from socialsync.storage.schema import posts, sync_state
from socialsync.storage.upserts import upsert

COMMENTS = "comments"


def known_posts(conn: Connection, network: str, post_ids: Iterable[str]) -> set[str]:
    ids = list(post_ids)
    if not ids:
        return set()
    return set(conn.scalars(select(posts.c.post_id).where(posts.c.network == network, posts.c.post_id.in_(ids))))


def comment_watermarks(conn: Connection, network: str, post_ids: Iterable[str]) -> dict[str, int]:
    """Per post, the ``comments_count`` it reported when its comments were last fetched in full."""
    ids = list(post_ids)
    if not ids:
        return {}
    rows = conn.execute(select(sync_state.c.external_id, sync_state.c.state).where(
        sync_state.c.network == network, sync_state.c.kind == COMMENTS, sync_state.c.external_id.in_(ids)))
    return {post_id: int(state.get("comments_count", -1)) for post_id, state in rows}


def set_comment_watermark(conn: Connection, network: str, post_id: str, comments_count: int | None,
                          synced_at: datetime) -> None:
    upsert(conn, sync_state, [{"network": network, "kind": COMMENTS, "external_id": post_id,
                               "state": {"comments_count": comments_count}, "synced_at": synced_at}])
