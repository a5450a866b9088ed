"""What earlier syncs saw: known posts and each post's comment watermark, for incremental runs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, func, or_, select, tuple_

from socialsync.networks.base import PostStub
from socialsync.storage.schema import comments, metadata, posts, sync_state, sync_tasks

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


def known_comments(conn: Connection, network: str, post_id: str, comment_ids: Sequence[str]) -> dict[str, int | None]:
    """Of ``comment_ids``, the live top-level comments of the post the warehouse holds, with their stored
    reply counts: a walk that stops at known comments asks this once a page."""
    c = comments.c
    if not comment_ids:
        return {}
    rows = conn.execute(select(c.comment_id, c.reply_count).where(
        c.network == network, c.post_id == post_id, c.comment_id.in_(list(comment_ids)), c.deleted.is_(False),
        c.parent_comment_id.is_(None)))
    return {comment_id: replies for comment_id, replies in rows}


def comment_watermark(network: str, post_id: str, comments_count: int | None, synced_at: datetime) -> dict[str, Any]:
    """The ``sync_state`` row saying a post's comments were fetched in full at ``comments_count``."""
    return {"network": network, "kind": COMMENTS, "external_id": post_id,
            "state": {"comments_count": comments_count}, "synced_at": synced_at}


def comment_debt(conn: Connection, network: str, profile_id: str, limit: int = 100_000,
                 exclude_job: int | None = None) -> list[PostStub]:
    """Known posts of a profile whose comments were never fetched in full at their current count.

    Work a stopped run left behind (quota, errors) is found here by the next run, whichever pages
    that run happens to list; ``exclude_job`` leaves out the posts that job already has a comments
    sub-sync for (the ones its own pages listed).
    """
    s = sync_state.c
    joined = posts.outerjoin(sync_state, and_(s.network == posts.c.network, s.kind == COMMENTS,
                                              s.external_id == posts.c.post_id))
    query = (
        select(posts.c.post_id, posts.c.created_at, posts.c.comments_count, s.state)
        .select_from(joined)
        .where(posts.c.network == network, posts.c.profile_id == profile_id, posts.c.deleted.is_(False),
               or_(s.state.is_(None), posts.c.comments_count > 0))
        .order_by(posts.c.created_at.desc()).limit(limit)
    )
    if exclude_job is not None:
        t = sync_tasks.c
        query = query.where(~exists().where(t.job_id == exclude_job, t.kind == "comments",
                                            t.external_id == posts.c.post_id))
    debt = []
    for post_id, created_at, count, state in conn.execute(query):
        synced = None if state is None else state.get("comments_count")
        if (synced is None and count) or (synced is not None and synced != count):
            debt.append(PostStub(post_id, created_at, count))
    return debt


def list_walk_kind(kind: str) -> str:
    """The ``sync_state`` kind saying when a profile's list (``followers``) was last walked to its end."""
    return f"walk:{kind}"


def last_complete_walk(conn: Connection, network: str, kind: str, profile_id: str) -> datetime | None:
    state = conn.scalar(select(sync_state.c.state).where(
        sync_state.c.network == network, sync_state.c.kind == list_walk_kind(kind),
        sync_state.c.external_id == profile_id))
    at = (state or {}).get("complete_at")
    return datetime.fromisoformat(at) if isinstance(at, str) else None


def complete_walk(network: str, kind: str, profile_id: str, moment: datetime) -> dict[str, Any]:
    """The ``sync_state`` row a complete walk of a list leaves, in the transaction of what it proves."""
    return {"network": network, "kind": list_walk_kind(kind), "external_id": profile_id,
            "state": {"complete_at": moment.isoformat()}, "synced_at": moment}


def known_rows(conn: Connection, network: str, table_name: str, rows: Sequence[dict[str, Any]]) -> bool:
    """Whether the warehouse holds any of ``rows`` (by the table's key) live: where a newest-first walk stops."""
    table = metadata.tables[table_name]
    key = [c.name for c in table.primary_key.columns if c.name != "network"]
    wanted = [tuple(row[k] for k in key) for row in rows]
    if not wanted:
        return False
    found = conn.scalar(select(func.count()).select_from(table).where(
        table.c.network == network, table.c.removed_at.is_(None),
        tuple_(*(table.c[k] for k in key)).in_(wanted)))
    return bool(found)
