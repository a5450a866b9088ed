"""Raw pages: written as received, read back page by page (never all at once)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine, func, insert, select

from socialsync.networks.base import FetchedPage, RawPage
from socialsync.storage.schema import quarantine, raw_pages
from socialsync.storage.upserts import inserted_id

# One statement object for every page: SQLAlchemy builds, keys and compiles it once, not per page.
_INSERT_PAGE = insert(raw_pages)


def write_raw_page(conn: Connection, network: str, job_id: int, page: FetchedPage, now: datetime) -> int:
    return inserted_id(conn.execute(_INSERT_PAGE, {
        "network": network, "job_id": job_id, "kind": page.kind, "parent_id": page.parent_id,
        "request": page.request, "cursor": page.cursor, "next_cursor": page.next_cursor,
        "status_code": page.status_code, "item_count": page.item_count, "units": page.units,
        "payload": page.payload, "fetched_at": now,
    }))


def raw_page_ids(conn: Connection, job_ids: Sequence[int], kinds: Sequence[str] | None = None) -> list[int]:
    query = select(raw_pages.c.id).where(raw_pages.c.job_id.in_(list(job_ids))).order_by(raw_pages.c.id)
    if kinds:
        query = query.where(raw_pages.c.kind.in_(list(kinds)))
    return list(conn.scalars(query))


def read_raw_pages(source: Engine | Connection, page_ids: Sequence[int], chunk: int = 20) -> Iterator[RawPage]:
    """Yield the pages ``page_ids`` in order, ``chunk`` pages in memory at a time.

    Given a connection, reads through it (inside its transaction); given an engine, a short one per chunk.
    """
    for start in range(0, len(page_ids), chunk):
        ids = list(page_ids[start : start + chunk])
        query = (select(raw_pages.c.id, raw_pages.c.kind, raw_pages.c.parent_id, raw_pages.c.payload)
                 .where(raw_pages.c.id.in_(ids)).order_by(raw_pages.c.id))
        if isinstance(source, Connection):
            rows = source.execute(query).all()
        else:
            with source.connect() as conn:
                rows = conn.execute(query).all()
        for row in rows:
            yield RawPage(id=row.id, kind=row.kind, parent_id=row.parent_id, payload=row.payload)


def raw_jobs(conn: Connection, job_ids: Sequence[int]) -> list[int]:
    """Of ``job_ids``, those that stored at least one raw page."""
    if not job_ids:
        return []
    return list(conn.scalars(select(raw_pages.c.job_id).where(raw_pages.c.job_id.in_(list(job_ids))).distinct()))


def last_cursor(conn: Connection, job_id: int, kind: str, parent_id: str) -> tuple[bool, str | None]:
    """Whether a job already fetched pages of (kind, parent), and the cursor its last page led to."""
    row = conn.execute(
        select(raw_pages.c.next_cursor).where(raw_pages.c.job_id == job_id, raw_pages.c.kind == kind,
                                              raw_pages.c.parent_id == parent_id)
        .order_by(raw_pages.c.id.desc()).limit(1)
    ).first()
    return (row is not None, row.next_cursor if row is not None else None)


def rejects_per_job(conn: Connection, job_ids: Sequence[int]) -> dict[int, int]:
    query = (select(raw_pages.c.job_id, func.count()).join(quarantine, quarantine.c.raw_page_id == raw_pages.c.id)
             .where(raw_pages.c.job_id.in_(list(job_ids))).group_by(raw_pages.c.job_id))
    return {job_id: count for job_id, count in conn.execute(query)}
