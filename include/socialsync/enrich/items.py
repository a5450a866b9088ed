"""Which items of a batch still lack an enrichment, and storing what the services answered."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, select

from socialsync.storage.schema import enrichments, media, posts, profiles
from socialsync.storage.upserts import upsert

ML, VISION = "ml", "vision"


def _missing(service: str, kind: str, key: Any, network: str) -> Any:
    e = enrichments.c
    return ~exists().where(and_(e.network == network, e.service == service, e.item_kind == kind,
                                e.item_id == key))


def text_items(conn: Connection, network: str, profile_ids: Sequence[str], limit: int) -> list[dict[str, Any]]:
    """Bios and captions of the batch's profiles with no ML result yet (missing ones are retried)."""
    ids = list(profile_ids)
    items: list[dict[str, Any]] = []
    bios = select(profiles.c.profile_id, profiles.c.bio).where(
        profiles.c.network == network, profiles.c.profile_id.in_(ids), profiles.c.bio.is_not(None),
        _missing(ML, "profile", profiles.c.profile_id, network)).order_by(profiles.c.profile_id).limit(limit)
    items += [{"id": f"profile:{pid}", "type": "text", "text": bio} for pid, bio in conn.execute(bios)]
    captions = select(posts.c.post_id, posts.c.caption).where(
        posts.c.network == network, posts.c.profile_id.in_(ids), posts.c.caption.is_not(None),
        posts.c.deleted.is_(False), _missing(ML, "post", posts.c.post_id, network),
    ).order_by(posts.c.post_id).limit(max(0, limit - len(items)))
    items += [{"id": f"post:{pid}", "type": "text", "text": text} for pid, text in conn.execute(captions)]
    return items


def media_items(conn: Connection, network: str, profile_ids: Sequence[str], limit: int) -> list[dict[str, Any]]:
    """Photos and videos of the batch's posts with no recognition result yet."""
    query = (
        select(media.c.media_id, media.c.media_type, media.c.url)
        .join(posts, and_(posts.c.network == media.c.network, posts.c.post_id == media.c.post_id))
        .where(media.c.network == network, posts.c.profile_id.in_(list(profile_ids)),
               media.c.url.is_not(None), posts.c.deleted.is_(False),
               _missing(VISION, "media", media.c.media_id, network))
        .order_by(media.c.media_id).limit(limit)
    )
    return [{"id": f"media:{mid}", "type": kind, "url": url} for mid, kind, url in conn.execute(query)]


def store_results(conn: Connection, network: str, service: str, external_job_id: str,
                  results: Sequence[dict[str, Any]], now: datetime) -> int:
    rows = []
    for result in results:
        kind, _, item_id = str(result.get("id", "")).partition(":")
        if not kind or not item_id:
            continue  # an answer for an item we never sent carries no key to store it under
        rows.append({"network": network, "item_kind": kind, "item_id": item_id, "service": service,
                     "result": result, "external_job_id": external_job_id, "enriched_at": now})
    return upsert(conn, enrichments, rows)
