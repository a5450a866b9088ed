"""Normalize jobs: read their raw pages in order, validate and map them, upsert, mark what is gone.

The result depends only on the raw pages and each job's as-of time (kept on its cursor), so
re-running a run or rebuilding every table from raw reproduces the same rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Column, ColumnElement, Connection, Engine, Table, delete, insert, select, update

from socialsync.networks.base import NetworkSpec
from socialsync.storage.jobs import advance_watermark, begin_task, finish_task
from socialsync.storage.raw import raw_page_ids, read_raw_pages
from socialsync.storage.schema import comments, media, metrics, posts, profiles, quarantine, sync_jobs, sync_tasks
from socialsync.storage.state import set_comment_watermark
from socialsync.storage.upserts import upsert
from socialsync.transform.records import NormalizedPage

log = logging.getLogger(__name__)

PAGES_PER_CHUNK = 20  # raw pages read into memory at a time
NEWER = "synced_at"  # the job's as-of time: a row is only replaced by one at least as new


@dataclass
class NormalizeReport:
    pages: int = 0
    profiles: int = 0
    posts: int = 0
    media: int = 0
    comments: int = 0
    metrics: int = 0
    rejects: int = 0
    deleted_posts: int = 0
    deleted_comments: int = 0

    def as_xcom(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Seen:
    posts: set[str]
    comments: dict[str, set[str]]


def as_of(cursor: dict[str, object], fallback: datetime | None) -> datetime:
    """The time a job stands for: its run's, as plan wrote it on the cursor."""
    value = cursor.get("as_of")
    if isinstance(value, str):
        return datetime.fromisoformat(value).astimezone(UTC)
    if fallback is None:
        raise ValueError("job has neither an as_of cursor entry nor a start time")
    return fallback


def captured_on(moment: datetime) -> date:
    # A daily run's interval ends at midnight: its snapshot belongs to the day the interval covers.
    return (moment - timedelta(microseconds=1)).date()


def normalize_jobs(engine: Engine, network: NetworkSpec, job_ids: Sequence[int],
                   now: Callable[[], datetime] | None = None) -> NormalizeReport:
    """Re-derive normalized rows from every raw page of ``job_ids``, job by job in id order."""
    report = NormalizeReport()
    for job_id in sorted(job_ids):
        _normalize_job(engine, network, job_id, report, now or (lambda: datetime.now(UTC)))
    log.info("normalized %s pages of %s jobs: %s", report.pages, len(job_ids), report.as_xcom())
    return report


def _normalize_job(engine: Engine, network: NetworkSpec, job_id: int, report: NormalizeReport,
                   now: Callable[[], datetime]) -> None:
    """One job in one transaction: its rows, what its complete passes prove gone, and the watermarks
    they vouch for (a post's comment count, the entity's ``last_synced_at``) commit together or not at all.
    """
    with engine.begin() as conn:
        job = conn.execute(select(sync_jobs.c.entity_id, sync_jobs.c.cursor, sync_jobs.c.started_at,
                                  sync_jobs.c.status).where(sync_jobs.c.id == job_id)).one()
        page_ids = raw_page_ids(conn, [job_id])
        tasks = conn.execute(select(sync_tasks.c.kind, sync_tasks.c.external_id, sync_tasks.c.status,
                                    sync_tasks.c.seen).where(sync_tasks.c.job_id == job_id)).all()
        cursor = dict(job.cursor or {})
        moment = as_of(cursor, job.started_at)
        bounds = _Bounds.of(cursor)
        seen = _Seen(posts=set(), comments={})
        for start in range(0, len(page_ids), PAGES_PER_CHUNK):
            chunk = page_ids[start : start + PAGES_PER_CHUNK]
            for page in read_raw_pages(conn, chunk):
                normalized = bounds.apply(network.normalize(page))
                _write(conn, network.name, page.id, normalized, moment, report)
                seen.posts.update(p.post_id for p in normalized.posts)
                for c in normalized.comments:
                    seen.comments.setdefault(c.post_id, set()).add(c.comment_id)
            report.pages += len(chunk)
        posts_done = any(t.kind == "posts" and t.status == "succeeded" for t in tasks)
        if cursor.get("posts_complete") and posts_done:
            _mark_posts_deleted(conn, network.name, job.entity_id, seen.posts, moment, report)
        for task in tasks:
            if task.kind == "comments" and task.status == "succeeded":
                report.deleted_comments += len(_mark_deleted(
                    conn, comments, comments.c.comment_id, network.name, comments.c.post_id == task.external_id,
                    seen.comments.get(task.external_id, set()), moment))
                set_comment_watermark(conn, network.name, task.external_id,
                                      (task.seen or {}).get("comments_count"), moment)
        extracted = [t for t in tasks if t.kind != "normalize"]
        owed = set(cursor.get("parts", [])) - {t.kind for t in extracted}  # parts that never started
        if job.status not in ("failed", "skipped") and extracted and not owed and all(
                t.status in ("succeeded", "skipped") for t in extracted):
            advance_watermark(conn, network.name, job.entity_id, moment)
        task_id, _ = begin_task(conn, job_id, "normalize", job.entity_id)
        finish_task(conn, task_id, "succeeded", now())


def _mark_posts_deleted(conn: Connection, network: str, entity_id: str, seen: set[str], moment: datetime,
                        report: NormalizeReport) -> None:
    gone = _mark_deleted(conn, posts, posts.c.post_id, network, posts.c.profile_id == entity_id, seen, moment)
    report.deleted_posts += len(gone)
    for start in range(0, len(gone), 500):  # a deleted post takes its comments with it
        conn.execute(update(comments).where(comments.c.network == network,
                                            comments.c.post_id.in_(gone[start : start + 500]),
                                            comments.c.synced_at <= moment)
                     .values(deleted=True, synced_at=moment))


@dataclass
class _Bounds:
    """An explicit ``last_synced_at`` / ``since_id`` from conf: records outside them are not loaded.

    Paging had to fetch the page that crossed the bound; its older records stay in raw only.
    """

    last_synced_at: datetime | None
    since_id: str | None
    cut: datetime | None = None  # the since_id post's time, once a page showed it

    @classmethod
    def of(cls, cursor: dict[str, object]) -> _Bounds:
        if cursor.get("full_refresh"):
            return cls(None, None)
        since = cursor.get("last_synced_at")
        since_id = cursor.get("since_id")
        return cls(datetime.fromisoformat(str(since).replace("Z", "+00:00")) if since else None,
                   str(since_id) if since_id else None)

    def apply(self, page: NormalizedPage) -> NormalizedPage:
        if self.since_id is not None and self.cut is None:
            self.cut = next((p.created_at for p in page.posts if p.post_id == self.since_id), None)
        floor = max((t for t in (self.last_synced_at, self.cut) if t is not None), default=None)
        if floor is None:
            return page
        dropped = {p.post_id for p in page.posts if p.created_at < floor or
                   (self.cut is not None and p.created_at <= self.cut)}
        if not dropped and all(c.created_at >= floor for c in page.comments):
            return page
        return NormalizedPage(
            profiles=page.profiles,
            posts=[p for p in page.posts if p.post_id not in dropped],
            media=[m for m in page.media if m.post_id not in dropped],
            comments=[c for c in page.comments if c.created_at >= floor],
            metrics=[m for m in page.metrics if m.entity_kind != "post" or m.entity_id not in dropped],
            rejects=page.rejects,
        )


def _mark_deleted(conn: Connection, table: Table, key: Column[str], network: str,
                  scope: ColumnElement[bool], seen: set[str], moment: datetime) -> list[str]:
    """After a complete pass, rows of ``scope`` that the pass did not see are gone upstream.

    Only rows no newer than the pass: a replayed older job never deletes what a newer one loaded.
    """
    present = set(conn.scalars(select(key).where(table.c.network == network, scope, table.c.deleted.is_(False),
                                                  table.c.synced_at <= moment)))
    gone = sorted(present - seen)
    for start in range(0, len(gone), 500):
        conn.execute(update(table).where(table.c.network == network, key.in_(gone[start : start + 500]))
                     .values(deleted=True, synced_at=moment))
    if gone:
        log.info("marked %s row(s) of %s deleted after a complete pass", len(gone), table.name)
    return gone


def _write(conn: Connection, network: str, page_id: int, page: NormalizedPage, moment: datetime,
           report: NormalizeReport) -> None:
    base = {"network": network, "synced_at": moment}
    report.profiles += upsert(conn, profiles, [{**base, **p.model_dump()} for p in page.profiles], newer=NEWER)
    report.posts += upsert(conn, posts, [{**base, **p.model_dump(), "deleted": False} for p in page.posts],
                           newer=NEWER)
    report.media += upsert(conn, media, [{**base, **m.model_dump()} for m in page.media], newer=NEWER)
    report.comments += upsert(conn, comments, [{**base, **c.model_dump(), "deleted": False} for c in page.comments],
                              newer=NEWER)
    report.metrics += upsert(conn, metrics, [
        {**base, **m.model_dump(), "captured_on": captured_on(moment)} for m in page.metrics], newer=NEWER)
    # Re-normalizing a page replaces its rejects rather than piling them up.
    conn.execute(delete(quarantine).where(quarantine.c.raw_page_id == page_id))
    if page.rejects:
        conn.execute(insert(quarantine), [
            {**base, "raw_page_id": page_id, "record_kind": r.record_kind, "record_id": r.record_id,
             "reason": r.reason[:4000], "record": r.record, "quarantined_at": moment}
            for r in page.rejects])
        report.rejects += len(page.rejects)
        log.warning("raw page %s: %s record(s) quarantined, first: %s", page_id, len(page.rejects),
                    page.rejects[0].reason)
