"""What the sync API reads from the warehouse: every query is bound to one network.

Lists are newest first and paged by keyset: a page's ``next_cursor`` is the sort key of its last
row, so a page costs one index range scan however deep it is, and rows written while a client
pages never shift what it sees.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select

from socialsync.storage import schema

MAX_LIMIT = 500


class BadCursor(ValueError):
    """A cursor that this API did not hand out (or one from another list)."""


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


# What a cursor may hold: the sort key of a row this API listed, so no more than its columns can.
MAX_CURSOR_TEXT = 512
MIN_ID, MAX_ID = -(2**63), 2**63 - 1  # a BIGINT key


def encode_cursor(kind: str, key: Sequence[Any], parent: str = "") -> str:
    """A page's cursor: the list it belongs to (``kind``, and the profile, post or run it lists under:
    ``parent``) and the sort key of the page's last row."""
    values = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    return base64.urlsafe_b64encode(json.dumps([kind, parent, *values]).encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, types: Sequence[type], parent: str = "") -> list[Any]:
    """The sort key of a cursor this list handed out; ``BadCursor`` for anything else: a forged value, a
    cursor of another list, or of the same list under another parent (another profile's posts)."""
    if len(cursor) > 4 * MAX_CURSOR_TEXT:
        raise BadCursor("cursor is not one this API handed out (too long)")
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise BadCursor("cursor is not one this API handed out") from exc
    if not isinstance(raw, list) or len(raw) != len(types) + 2 or raw[0] != kind:
        raise BadCursor(f"cursor does not belong to this list ({kind})")
    if raw[1] != parent:
        raise BadCursor(f"cursor belongs to the {kind} of another {_PARENTS.get(kind, 'parent')}")
    return [_cursor_value(value, expected) for value, expected in zip(raw[2:], types, strict=True)]


_PARENTS = {"posts": "profile", "likes": "profile", "follows-following": "profile",
            "follows-followers": "profile", "comments": "post", "enrichments": "post", "run_jobs": "run"}


def _cursor_value(value: Any, expected: type) -> Any:
    """One value of a cursor's key, checked as strictly as the column it is compared with."""
    forged = BadCursor("cursor is not one this API handed out")
    if expected is int:
        if type(value) is not int or not MIN_ID <= value <= MAX_ID:
            raise forged
        return value
    if not isinstance(value, str) or len(value) > MAX_CURSOR_TEXT or "\x00" in value:
        raise forged
    if expected is datetime:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise forged from None
        if moment.tzinfo is None:
            raise forged
        return moment
    return value


def _before(time_col: Any, id_col: Any, at: datetime, key: Any) -> ColumnElement[bool]:
    # Spelled out rather than as a row comparison, so each side is bound with its column's type.
    return or_(time_col < at, and_(time_col == at, id_col < key))


def _newest_first(conn: Connection, query: Any, kind: str, parent: str, time_col: Any, id_col: Any,
                  cursor: str | None, limit: int, id_type: type = str) -> Page:
    """Rows ordered by (time, id) descending, after ``cursor`` (one of this list's, under ``parent``)."""
    if cursor:
        at, key = decode_cursor(kind, cursor, (datetime, id_type), parent)
        query = query.where(_before(time_col, id_col, at, key))
    rows = [dict(r._mapping) for r in conn.execute(query.order_by(time_col.desc(), id_col.desc()).limit(limit + 1))]
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows and more else None
    next_cursor = encode_cursor(kind, (last[time_col.name], last[id_col.name]), parent) if last else None
    return Page(rows, next_cursor)


# --- jobs ------------------------------------------------------------------------------------------
_JOB_COLUMNS = (schema.sync_jobs.c.id, schema.sync_jobs.c.entity_id, schema.sync_jobs.c.status,
                schema.sync_jobs.c.run_id, schema.sync_jobs.c.previous_job_id, schema.sync_jobs.c.started_at,
                schema.sync_jobs.c.finished_at, schema.sync_jobs.c.units, schema.sync_jobs.c.error_type,
                schema.sync_jobs.c.error_message)


def _with_counts(conn: Connection, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each job's pages, items fetched, and sub-syncs by status: two grouped queries for the whole page."""
    ids = [j["id"] for j in jobs]
    if not ids:
        return jobs
    p, t = schema.raw_pages, schema.sync_tasks
    pages = {r.job_id: (r.pages, r.items) for r in conn.execute(
        select(p.c.job_id, func.count().label("pages"), func.coalesce(func.sum(p.c.item_count), 0).label("items"))
        .where(p.c.job_id.in_(ids)).group_by(p.c.job_id))}
    tasks: dict[int, dict[str, int]] = {}
    for r in conn.execute(select(t.c.job_id, t.c.status, func.count().label("n"))
                          .where(t.c.job_id.in_(ids)).group_by(t.c.job_id, t.c.status)):
        tasks.setdefault(r.job_id, {})[r.status] = int(r.n)
    for job in jobs:
        page_count, items = pages.get(job["id"], (0, 0))
        job["counts"] = {"pages": int(page_count), "items": int(items), "sub_syncs": tasks.get(job["id"], {})}
    return jobs


def run_jobs(conn: Connection, network: str, run_id: str, cursor: str | None, limit: int) -> Page:
    """The jobs an Airflow run opened, oldest first (the order plan opened them)."""
    j = schema.sync_jobs
    query = select(*_JOB_COLUMNS).where(j.c.network == network, j.c.run_id == run_id)
    if cursor:
        (after,) = decode_cursor("run_jobs", cursor, (int,), run_id)
        query = query.where(j.c.id > after)
    rows = [dict(r._mapping) for r in conn.execute(query.order_by(j.c.id).limit(limit + 1))]
    more = len(rows) > limit
    rows = _with_counts(conn, rows[:limit])
    return Page(rows, encode_cursor("run_jobs", (rows[-1]["id"],), run_id) if more else None)


def run_summary(conn: Connection, network: str, run_id: str) -> dict[str, int]:
    j = schema.sync_jobs
    return {r.status: int(r.n) for r in conn.execute(
        select(j.c.status, func.count().label("n")).where(j.c.network == network, j.c.run_id == run_id)
        .group_by(j.c.status))}


def job(conn: Connection, network: str, job_id: int) -> dict[str, Any] | None:
    """One job with its sub-syncs; None when it does not exist in ``network`` (a crafted id reads nothing)."""
    j, t = schema.sync_jobs, schema.sync_tasks
    row = conn.execute(select(*_JOB_COLUMNS, j.c.cursor).where(j.c.network == network, j.c.id == job_id)).first()
    if row is None:
        return None
    found = _with_counts(conn, [dict(row._mapping)])[0]
    found["request"] = found.pop("cursor")
    found["sync_tasks"] = [dict(r._mapping) for r in conn.execute(
        select(t.c.id, t.c.kind, t.c.external_id, t.c.status, t.c.attempts, t.c.last_error, t.c.last_synced_at)
        .where(t.c.job_id == job_id).order_by(t.c.id))]
    found["continued_by"] = conn.scalar(select(j.c.id).where(j.c.network == network, j.c.previous_job_id == job_id)
                                        .order_by(j.c.id).limit(1))
    return found


def recent_jobs(conn: Connection, network: str, limit: int, entity_id: str | None = None) -> list[dict[str, Any]]:
    j = schema.sync_jobs
    query = select(*_JOB_COLUMNS).where(j.c.network == network)
    if entity_id is not None:
        query = query.where(j.c.entity_id == entity_id)
    return _with_counts(conn, [dict(r._mapping) for r in conn.execute(query.order_by(j.c.id.desc()).limit(limit))])


def latest_run(conn: Connection, network: str) -> str | None:
    """The run that opened the network's newest job (a backward walk of the primary key)."""
    j = schema.sync_jobs
    return conn.scalar(select(j.c.run_id).where(j.c.network == network, j.c.run_id.is_not(None))
                       .order_by(j.c.id.desc()).limit(1))


# --- a profile and what it loaded ----------------------------------------------------------------
def rows_key(conn: Connection, network: str, entity_id: str) -> str:
    """The id a tracked entity's rows are keyed by: an Instagram ``@username``'s IG user id, once known."""
    tr = schema.tracked_entities
    named = conn.scalar(select(tr.c.profile_id).where(tr.c.network == network, tr.c.entity_id == entity_id))
    return str(named) if named else entity_id


def profile(conn: Connection, network: str, entity_id: str, metric_days: int, today: date) -> dict[str, Any] | None:
    """A profile by its id or by how it is tracked (``@username``)."""
    pr, tr, po, co = schema.profiles, schema.tracked_entities, schema.posts, schema.comments
    profile_id = rows_key(conn, network, entity_id)
    row = conn.execute(select(pr.c.username, pr.c.display_name, pr.c.bio, pr.c.followers_count,
                              pr.c.following_count, pr.c.posts_count, pr.c.website, pr.c.synced_at)
                       .where(pr.c.network == network, pr.c.profile_id == profile_id)).first()
    tracked = conn.execute(select(tr.c.active, tr.c.added_at, tr.c.last_synced_at, tr.c.misses,
                                  tr.c.deactivated_reason)
                           .where(tr.c.network == network, tr.c.entity_id == entity_id)).first()
    if row is None and tracked is None:
        return None
    of_profile = and_(po.c.network == network, po.c.profile_id == profile_id)
    posts = {bool(r.deleted): int(r.n) for r in conn.execute(
        select(po.c.deleted, func.count().label("n")).where(of_profile).group_by(po.c.deleted))}
    comments = {bool(r.deleted): int(r.n) for r in conn.execute(
        select(co.c.deleted, func.count().label("n")).select_from(co.join(
            po, and_(po.c.network == co.c.network, po.c.post_id == co.c.post_id)))
        .where(of_profile, co.c.network == network).group_by(co.c.deleted))}
    m = schema.metrics
    metrics: dict[str, list[dict[str, Any]]] = {}
    for r in conn.execute(select(m.c.metric, m.c.captured_on, m.c.value)
                          .where(m.c.network == network, m.c.entity_kind == "profile", m.c.entity_id == profile_id,
                                 m.c.captured_on > today - timedelta(days=metric_days))
                          .order_by(m.c.metric, m.c.captured_on)):
        metrics.setdefault(r.metric, []).append({"date": r.captured_on, "value": r.value})
    return {
        "network": network,
        "profile_id": profile_id,
        "profile": dict(row._mapping) if row else None,
        "tracked": dict(tracked._mapping) if tracked else None,
        "last_synced_at": tracked.last_synced_at if tracked else None,
        "counts": {"posts": posts.get(False, 0), "posts_deleted": posts.get(True, 0),
                   "comments": comments.get(False, 0), "comments_deleted": comments.get(True, 0)},
        "metrics": metrics,
    }


def posts(conn: Connection, network: str, entity_id: str, cursor: str | None, limit: int,
          include_deleted: bool) -> Page:
    """A profile's posts, by its id or by how it is tracked (``@username``)."""
    po = schema.posts
    profile_id = rows_key(conn, network, entity_id)
    query = select(po.c.post_id, po.c.profile_id, po.c.kind, po.c.product_type, po.c.caption, po.c.permalink,
                   po.c.created_at, po.c.like_count, po.c.comments_count, po.c.view_count, po.c.pinned, po.c.deleted,
                   po.c.synced_at).where(po.c.network == network, po.c.profile_id == profile_id)
    if not include_deleted:
        query = query.where(po.c.deleted.is_(False))
    return _newest_first(conn, query, "posts", profile_id, po.c.created_at, po.c.post_id, cursor, limit)


def follows(conn: Connection, network: str, entity_id: str, direction: str, cursor: str | None, limit: int,
            include_removed: bool) -> Page:
    """Whom a profile follows (``following``: a channel's subscriptions) or who follows it
    (``followers``), newest first as first seen; by its id or by how it is tracked."""
    fo = schema.follows
    profile_id = rows_key(conn, network, entity_id)
    mine, other = ((fo.c.follower_id, fo.c.followee_id) if direction == "following"
                   else (fo.c.followee_id, fo.c.follower_id))
    query = select(fo.c.follower_id, fo.c.followee_id, fo.c.follower_name, fo.c.followee_name, fo.c.first_seen_at,
                   fo.c.removed_at, fo.c.synced_at).where(fo.c.network == network, mine == profile_id)
    if not include_removed:
        query = query.where(fo.c.removed_at.is_(None))
    return _newest_first(conn, query, f"follows-{direction}", profile_id, fo.c.first_seen_at, other, cursor, limit)


def likes(conn: Connection, network: str, entity_id: str, cursor: str | None, limit: int,
          include_removed: bool) -> Page:
    """The posts a profile liked, newest first as first seen; by its id or by how it is tracked."""
    lk = schema.likes
    profile_id = rows_key(conn, network, entity_id)
    query = select(lk.c.post_id, lk.c.author_id, lk.c.post_author_id, lk.c.caption, lk.c.first_seen_at,
                   lk.c.removed_at, lk.c.synced_at).where(lk.c.network == network, lk.c.author_id == profile_id)
    if not include_removed:
        query = query.where(lk.c.removed_at.is_(None))
    return _newest_first(conn, query, "likes", profile_id, lk.c.first_seen_at, lk.c.post_id, cursor, limit)


def post_exists(conn: Connection, network: str, post_id: str) -> bool:
    po = schema.posts
    found = conn.scalar(select(po.c.post_id).where(po.c.network == network, po.c.post_id == post_id))
    return found is not None


def comments(conn: Connection, network: str, post_id: str, cursor: str | None, limit: int,
             include_deleted: bool) -> Page:
    co = schema.comments
    query = select(co.c.comment_id, co.c.post_id, co.c.parent_comment_id, co.c.author_id, co.c.author_username,
                   co.c.content, co.c.created_at, co.c.like_count, co.c.reply_count, co.c.deleted,
                   co.c.synced_at).where(co.c.network == network, co.c.post_id == post_id)
    if not include_deleted:
        query = query.where(co.c.deleted.is_(False))
    return _newest_first(conn, query, "comments", post_id, co.c.created_at, co.c.comment_id, cursor, limit)


def enrichments(conn: Connection, network: str, post_id: str, cursor: str | None, limit: int) -> Page:
    """The post's own results and those of its media and comments, newest first."""
    e, me, co = schema.enrichments, schema.media, schema.comments
    items: ColumnElement[bool] = or_(
        and_(e.c.item_kind == "post", e.c.item_id == post_id),
        and_(e.c.item_kind == "media", e.c.item_id.in_(
            select(me.c.media_id).where(me.c.network == network, me.c.post_id == post_id))),
        and_(e.c.item_kind == "comment", e.c.item_id.in_(
            select(co.c.comment_id).where(co.c.network == network, co.c.post_id == post_id))),
    )
    # The page key: when it was enriched, then one string naming the result (kind, item, service).
    key = (e.c.item_kind + ":" + e.c.item_id + ":" + e.c.service).label("result_key")
    query = select(e.c.item_kind, e.c.item_id, e.c.service, e.c.result, e.c.external_job_id, e.c.enriched_at,
                   key).where(e.c.network == network, items)
    if cursor:
        at, after = decode_cursor("enrichments", cursor, (datetime, str), post_id)
        query = query.where(_before(e.c.enriched_at, key, at, after))
    rows = [dict(r._mapping) for r in conn.execute(query.order_by(e.c.enriched_at.desc(), key.desc()).limit(limit + 1))]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = (encode_cursor("enrichments", (rows[-1]["enriched_at"], rows[-1]["result_key"]), post_id)
                   if more else None)
    for row in rows:
        del row["result_key"]
    return Page(rows, next_cursor)
