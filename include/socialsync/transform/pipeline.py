"""Normalize a batch: read its raw pages in order, validate and map them, upsert the results."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, Engine, delete, insert

from socialsync.networks.base import NetworkSpec
from socialsync.storage.raw import raw_page_ids, read_raw_pages
from socialsync.storage.schema import comments, media, metrics, posts, profiles, quarantine
from socialsync.storage.upserts import upsert
from socialsync.transform.records import NormalizedPage

log = logging.getLogger(__name__)

PAGES_PER_TRANSACTION = 20


@dataclass
class NormalizeReport:
    pages: int = 0
    profiles: int = 0
    posts: int = 0
    media: int = 0
    comments: int = 0
    metrics: int = 0
    rejects: int = 0

    def as_xcom(self) -> dict[str, int]:
        return dict(self.__dict__)


def normalize_jobs(engine: Engine, network: NetworkSpec, job_ids: Sequence[int], synced_at: datetime,
                   captured_on: date) -> NormalizeReport:
    """Re-derive normalized rows from every raw page of ``job_ids``; later pages win on a key."""
    report = NormalizeReport()
    with engine.connect() as conn:
        page_ids = raw_page_ids(conn, job_ids)
    for start in range(0, len(page_ids), PAGES_PER_TRANSACTION):
        chunk = page_ids[start : start + PAGES_PER_TRANSACTION]
        normalized = [(page.id, network.normalize(page)) for page in read_raw_pages(engine, chunk)]
        with engine.begin() as conn:
            for page_id, page in normalized:
                _write(conn, network.name, page_id, page, synced_at, captured_on, report)
        report.pages += len(chunk)
    log.info("normalized %s pages of %s jobs: %s", report.pages, len(job_ids), report.as_xcom())
    return report


def _write(conn: Connection, network: str, page_id: int, page: NormalizedPage, synced_at: datetime,
           captured_on: date, report: NormalizeReport) -> None:
    base = {"network": network}
    report.profiles += upsert(conn, profiles, [
        {**base, **p.model_dump(), "raw_page_id": page_id, "synced_at": synced_at} for p in page.profiles])
    report.posts += upsert(conn, posts, [
        {**base, **p.model_dump(), "deleted": False, "raw_page_id": page_id, "synced_at": synced_at}
        for p in page.posts])
    report.media += upsert(conn, media, [
        {**base, **m.model_dump(), "raw_page_id": page_id} for m in page.media])
    report.comments += upsert(conn, comments, [
        {**base, **c.model_dump(), "deleted": False, "raw_page_id": page_id} for c in page.comments])
    report.metrics += upsert(conn, metrics, [
        {**base, **m.model_dump(), "captured_on": captured_on} for m in page.metrics])
    # Re-normalizing a page replaces its rejects rather than piling them up.
    conn.execute(delete(quarantine).where(quarantine.c.raw_page_id == page_id))
    if page.rejects:
        conn.execute(insert(quarantine), [
            {**base, "raw_page_id": page_id, "record_kind": r.record_kind, "record_id": r.record_id,
             "reason": r.reason[:4000], "record": r.record, "quarantined_at": synced_at}
            for r in page.rejects])
        report.rejects += len(page.rejects)
        log.warning("raw page %s: %s record(s) quarantined, first: %s", page_id, len(page.rejects),
                    page.rejects[0].reason)
