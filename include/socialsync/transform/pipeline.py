"""Normalize jobs: read their raw pages in order, validate and map them, upsert, mark what is gone.

The result depends only on the raw pages and each job's as-of time (kept on its cursor), so
re-running a run or rebuilding every table from raw reproduces the same rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    Table,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.sql.base import ReadOnlyColumnCollection

from socialsync.networks.base import Covers, NetworkSpec, ProfileList
from socialsync.storage.jobs import advance_watermark, record_task
from socialsync.storage.planning import profile_ids, record_identity
from socialsync.storage.raw import read_raw_pages
from socialsync.storage.schema import (
    comments,
    follows,
    likes,
    media,
    metrics,
    posts,
    profiles,
    quarantine,
    raw_pages,
    sync_jobs,
    sync_state,
    sync_tasks,
)
from socialsync.storage.staging import StagedUpserts
from socialsync.storage.state import comment_watermark, complete_walk
from socialsync.storage.upserts import upsert
from socialsync.transform.records import NormalizedPage

log = logging.getLogger(__name__)

PAGES_PER_CHUNK = 20  # raw pages read into memory at a time
TASKS_PER_CHUNK = 1000  # comment sub-syncs read into memory at a time
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
    follows: int = 0
    likes: int = 0
    removed_follows: int = 0
    flagged: int = 0  # posts a flag's list named (pinned videos), not counted again as posts

    def as_xcom(self) -> dict[str, int]:
        return dict(self.__dict__)

    def add(self, counts: dict[str, int]) -> None:
        for name, value in counts.items():
            if name in self.__dict__:
                setattr(self, name, getattr(self, name) + int(value))


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
                   now: Callable[[], datetime] | None = None, *, skip_normalized: bool = False) -> NormalizeReport:
    """Re-derive normalized rows from every raw page of ``job_ids``, job by job in id order.

    With ``skip_normalized``, a job already normalized through its last raw page (by the extract step,
    as its pages were done: ``NormalizeBehind``) is not done again; what that normalize counted is
    reported as if it ran now, so the run's figures (and its Assets' counts) stay whole.
    """
    report = NormalizeReport()
    done = normalized_through(engine, job_ids) if skip_normalized else {}
    for job_id in sorted(job_ids):
        if job_id in done:
            report.add(done[job_id])
            continue
        mine = NormalizeReport()
        _normalize_job(engine, network, job_id, mine, now or (lambda: datetime.now(UTC)))
        report.add(mine.as_xcom())
    log.info("normalized %s pages of %s jobs (%s done before): %s", report.pages, len(job_ids), len(done),
             report.as_xcom())
    return report


class NormalizeBehind:
    """Normalizes each job as soon as extract is done with it, one job at a time on a thread of its own,
    while extract goes on with the others: the rows land during the fetch instead of after it.

    ``submit`` a job whose pages are all in raw; leaving the block waits for what was submitted. A
    normalize that fails is logged and left for the normalize step, which does every job not normalized
    through its last page (``normalize_jobs(..., skip_normalized=True)``). On SQLite, whose writers take
    turns for the whole file, a normalize transaction would stall the extract's page writes: there,
    nothing is done ahead and the normalize step does it all.
    """

    def __init__(self, engine: Engine, network: NetworkSpec, now: Callable[[], datetime] | None = None) -> None:
        self.engine, self.network, self.now = engine, network, now
        self.enabled = engine.dialect.name != "sqlite"
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="normalize") if self.enabled else None

    def __enter__(self) -> NormalizeBehind:
        return self

    def __exit__(self, *_: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def submit(self, job_id: int) -> None:
        if self._pool is not None:
            self._pool.submit(self._normalize, job_id)

    def _normalize(self, job_id: int) -> None:
        try:
            normalize_jobs(self.engine, self.network, [job_id], self.now)
        except Exception:  # the normalize step does it again; nothing of this try is left behind
            log.warning("job %s: normalizing during extract failed; the normalize step will do it", job_id,
                        exc_info=True)


def normalized_through(engine: Engine, job_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Of ``job_ids``, those whose last normalize covered every raw page they have: what it counted."""
    if not job_ids:
        return {}
    t = sync_tasks.c
    with engine.connect() as conn:
        last = {job_id: page_id for job_id, page_id in conn.execute(
            select(raw_pages.c.job_id, func.max(raw_pages.c.id))
            .where(raw_pages.c.job_id.in_(list(job_ids))).group_by(raw_pages.c.job_id))}
        marks = conn.execute(select(t.job_id, t.seen).where(t.job_id.in_(list(job_ids)), t.kind == "normalize",
                                                            t.status == "succeeded")).all()
    out = {}
    for job_id, seen in marks:
        through = (seen or {}).get("through_page")
        if isinstance(through, int) and through >= (last.get(job_id) or 0):
            out[job_id] = dict((seen or {}).get("counts") or {})
    return out


def _normalize_job(engine: Engine, network: NetworkSpec, job_id: int, report: NormalizeReport,
                   now: Callable[[], datetime]) -> None:
    """One job in one transaction: its rows, what its complete passes prove gone, and the watermarks
    they vouch for (a post's comment count, the entity's ``last_synced_at``) commit together or not at all.

    Rows are staged and merged once per table; what a pass saw is read back from the stages, so
    memory does not grow with the posts and comments of a profile.
    """
    with engine.begin() as conn, StagedUpserts(conn, newer=NEWER) as stage:
        job = conn.execute(select(sync_jobs.c.entity_id, sync_jobs.c.cursor, sync_jobs.c.started_at,
                                  sync_jobs.c.status).where(sync_jobs.c.id == job_id)).one()
        t = sync_tasks.c
        # A pass that got all the API serves of a capped list counts as done for the watermark.
        capped = _capped(t)
        statuses = set(conn.execute(select(t.kind, case((capped, "capped"), else_=t.status))
                                    .where(t.job_id == job_id).distinct()).tuples())
        cursor = dict(job.cursor or {})
        moment = as_of(cursor, job.started_at)
        bounds = _Bounds.of(cursor)
        identity: tuple[str, str] | None = None  # what the job's profile page called the entity
        flags = {declared.kind for declared, _, covers in _covering(network) if covers.flag is not None}
        through = 0  # the job's last raw page this normalize read
        for chunk in _raw_page_chunks(conn, job_id):
            through = chunk[-1]
            # Re-normalizing a page replaces its rejects rather than piling them up: one statement a chunk.
            conn.execute(delete(quarantine).where(quarantine.c.raw_page_id.in_(chunk)))
            for page in read_raw_pages(conn, chunk):
                normalized = network.normalize(page)
                if page.kind == "profile" and page.parent_id == job.entity_id and normalized.profiles:
                    identity = (normalized.profiles[0].profile_id, normalized.profiles[0].username)
                if page.kind in flags:  # rows the posts walk writes too: counted as what the list flags
                    listed = NormalizeReport()
                    _write(conn, stage, network.name, page.id, bounds.apply(normalized), moment, listed)
                    report.flagged += listed.posts
                    report.rejects += listed.rejects
                    continue
                _write(conn, stage, network.name, page.id, bounds.apply(normalized), moment, report)
            report.pages += len(chunk)
        _stage_comment_watermarks(conn, stage, network.name, job_id, moment)
        profile_id = identity[0] if identity else profile_ids(conn, network.name, [job.entity_id])[job.entity_id]
        fresh = _new_entries(conn, stage, network, profile_id, moment)
        stage.merge()
        if identity is not None:
            record_identity(conn, network.name, job.entity_id, *identity)
        if cursor.get("posts_complete") and ("posts", "succeeded") in statuses:
            _mark_posts_deleted(conn, network, profile_id, stage.staged(posts), moment, report)
        report.deleted_comments += _mark_comments_deleted(conn, network.name, job_id, stage.staged(comments),
                                                          moment)
        _prove_list_removals(conn, stage, network, job_id, profile_id, moment, fresh, report, bounds.active)
        extracted = {(kind, status) for kind, status in statuses if kind != "normalize"}
        owed = set(cursor.get("parts", [])) - {kind for kind, _ in extracted}  # parts that never started
        if job.status not in ("failed", "skipped") and extracted and not owed and all(
                status in ("succeeded", "skipped", "capped") for _, status in extracted):
            advance_watermark(conn, network.name, job.entity_id, moment)
        record_task(conn, job_id, "normalize", job.entity_id, "succeeded", now(),
                    seen={"through_page": through, "counts": report.as_xcom()})


def _raw_page_chunks(conn: Connection, job_id: int) -> Iterator[list[int]]:
    """The job's raw page ids in order, a chunk at a time (a profile may have tens of thousands)."""
    after = 0
    while True:
        chunk = list(conn.scalars(select(raw_pages.c.id).where(raw_pages.c.job_id == job_id, raw_pages.c.id > after)
                                  .order_by(raw_pages.c.id).limit(PAGES_PER_CHUNK)))
        if chunk:
            yield chunk
        if len(chunk) < PAGES_PER_CHUNK:  # the last chunk: no query to find that nothing follows
            return
        after = chunk[-1]


def _stage_comment_watermarks(conn: Connection, stage: StagedUpserts, network: str, job_id: int,
                              moment: datetime) -> None:
    """Each fully fetched post's comment count becomes its watermark, with the rows that prove it; a
    post fetched as far as the API allows (``seen.capped``) too, so that it is not walked again daily."""
    t = sync_tasks.c
    after = ""
    while True:  # in the order of the (job, kind, external id) index: each chunk is a range read
        chunk = conn.execute(select(t.external_id, t.seen).where(
            t.job_id == job_id, t.kind == "comments", t.external_id > after,
            or_(t.status == "succeeded", _capped(t)))
            .order_by(t.external_id).limit(TASKS_PER_CHUNK)).all()
        stage.append(sync_state, [
            comment_watermark(network, task.external_id, (task.seen or {}).get("comments_count"), moment)
            for task in chunk])
        if len(chunk) < TASKS_PER_CHUNK:  # the last chunk
            return
        after = chunk[-1].external_id


def _capped(t: ReadOnlyColumnCollection[str, Column[Any]]) -> ColumnElement[bool]:
    """A sub-sync that fetched all the API serves of a list it caps (``seen.capped``)."""
    return and_(t.status == "partial", t.seen["capped"].as_boolean().is_not(None))


def _mark_posts_deleted(conn: Connection, spec: NetworkSpec, profile_id: str, seen: Table, moment: datetime,
                        report: NormalizeReport) -> None:
    network = spec.name
    scope = posts.c.profile_id == profile_id
    if spec.kept_product_types:  # not on the posts edge (stories): a posts pass never proves them gone
        scope = and_(scope, or_(posts.c.product_type.is_(None),
                                posts.c.product_type.not_in(sorted(spec.kept_product_types))))
    gone = _unseen(posts, seen, ("post_id",), network, scope, moment)
    # A deleted post takes its comments with it: marked first, while the posts still say which. The
    # gone posts are worked out once: with the statistics of tables loaded in this very transaction,
    # PostgreSQL would otherwise redo the anti-join for every comment it checks.
    gone_posts = select(posts.c.post_id).where(*gone).cte("gone_posts").prefix_with("MATERIALIZED",
                                                                                    dialect="postgresql")
    conn.execute(update(comments).where(comments.c.network == network, comments.c.synced_at <= moment,
                                        comments.c.post_id.in_(select(gone_posts.c.post_id)))
                 .values(deleted=True, synced_at=moment))
    report.deleted_posts += _mark_deleted(conn, posts, gone, moment)


def _mark_comments_deleted(conn: Connection, network: str, job_id: int, seen: Table, moment: datetime) -> int:
    """Comments of every post whose comments pass succeeded that the pass did not see: one statement.

    A walk that stopped at known comments (``seen.incremental``) saw only what was new: it proves nothing gone.
    """
    t = sync_tasks.c
    passed = select(t.external_id).where(t.job_id == job_id, t.kind == "comments", t.status == "succeeded",
                                         t.seen["incremental"].as_boolean().is_(None))
    # Seen under the same post: a pass proves gone only what is gone from its own post's thread.
    return _mark_deleted(conn, comments, _unseen(comments, seen, ("comment_id", "post_id"), network,
                                                 comments.c.post_id.in_(passed), moment), moment)


COVERED = {"follows": follows, "likes": likes, "posts": posts}  # what a declared list may cover (``Covers.table``)


def _covering(network: NetworkSpec) -> Iterator[tuple[ProfileList, Table, Covers]]:
    for declared in network.lists:
        if declared.covers is not None:
            yield declared, COVERED[declared.covers.table], declared.covers


def _new_entries(conn: Connection, stage: StagedUpserts, network: NetworkSpec, profile_id: str,
                 moment: datetime) -> dict[str, int | None]:
    """Before the merge, per covering list: how many entries the job listed that the table does not hold
    live (``None`` when it holds none of the list yet: a first walk finds it whole, nothing is new)."""
    out: dict[str, int | None] = {}
    for declared, table, covers in _covering(network):
        if covers.flag is not None or not stage.holds(table):
            continue  # a flag's list (pinned posts) is no table of entries to count new ones of
        column = covers.column
        seen = stage.staged(table)
        key = [c.name for c in table.primary_key.columns]
        held = exists().where(*(table.c[k] == seen.c[k] for k in key), table.c.removed_at.is_(None))
        before = conn.scalar(select(func.count()).select_from(table).where(
            table.c.network == network.name, table.c[column] == profile_id, table.c.synced_at < moment))
        out[declared.kind] = int(conn.scalar(select(func.count()).select_from(seen).where(
            seen.c.network == network.name, seen.c[column] == profile_id, ~held)) or 0) if before else None
    return out


def _prove_list_removals(conn: Connection, stage: StagedUpserts, network: NetworkSpec, job_id: int, profile_id: str,
                         moment: datetime, fresh: dict[str, int | None], report: NormalizeReport,
                         bounded: bool) -> None:
    """What each walk of a covering list proves: a complete one, that the profile's rows it no longer holds
    are removed (one statement, the day's ``<kind>_lost``); any, once the list was seen before, the day's
    ``<kind>_new``. A walk that was not complete (it stopped at known entries, an anomaly, a cap)
    proves nothing removed; nor does a flag's list (pinned posts) under a conf bound, which left the
    posts it listed outside the bound unloaded."""
    t = sync_tasks.c
    walked = dict(conn.execute(select(t.kind, t.seen).where(
        t.job_id == job_id, t.status == "succeeded", t.kind.in_([d.kind for d, _, _ in _covering(network)]))).all())
    for declared, table, covers in _covering(network):
        if declared.kind not in walked:
            continue
        daily: dict[str, float] = {}
        complete = bool((walked[declared.kind] or {}).get("complete")) and not (covers.flag is not None and bounded)
        if complete:
            if covers.flag is not None:  # the profile's rows not listed with the flag set are off the list
                _flag_off(conn, stage, network.name, table, covers, profile_id, moment)
            else:
                key = [c.name for c in table.primary_key.columns]
                seen = stage.staged(table)
                staged = exists().where(*(seen.c[k] == table.c[k] for k in key))
                daily["lost"] = int(conn.execute(update(table).where(
                    table.c.network == network.name, table.c[covers.column] == profile_id,
                    table.c.removed_at.is_(None), table.c.synced_at <= moment, ~staged)
                    .values(removed_at=moment, synced_at=moment)).rowcount)
                report.removed_follows += int(daily["lost"])
            # When the list was last walked to its end: a newest-first one's daily walks stop early until the next.
            upsert(conn, sync_state, [complete_walk(network.name, declared.kind, profile_id, moment)],
                   newer="synced_at")
        new = fresh.get(declared.kind)
        if new is None:
            continue  # the first walk of a list finds it whole (or it is a flag's): nothing new or lost to count
        daily["new"] = new
        upsert(conn, metrics, [{"network": network.name, "entity_kind": "profile", "entity_id": profile_id,
                                "metric": f"{declared.kind}_{name}", "captured_on": captured_on(moment),
                                "value": float(value), "synced_at": moment} for name, value in daily.items()])


def _flag_off(conn: Connection, stage: StagedUpserts, network: str, table: Table, covers: Covers,
              profile_id: str, moment: datetime) -> None:
    """After a complete walk of a flag's list: every row of the profile not staged with the flag set by
    this job gets it False, in one statement; a row a newer job loaded is left to that job."""
    assert covers.flag is not None
    flag = covers.flag
    key = [c.name for c in table.primary_key.columns]
    seen = stage.staged(table)
    listed = exists().where(*(seen.c[k] == table.c[k] for k in key), seen.c[flag].is_(True))
    conn.execute(update(table).where(table.c.network == network, table.c[covers.column] == profile_id,
                                     table.c[flag].is_not(False), table.c.synced_at <= moment, ~listed)
                 .values({flag: False}))


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

    @property
    def active(self) -> bool:
        return self.last_synced_at is not None or self.since_id is not None

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
        return replace(
            page,
            posts=[p for p in page.posts if p.post_id not in dropped],
            media=[m for m in page.media if m.post_id not in dropped],
            comments=[c for c in page.comments if c.created_at >= floor],
            metrics=[m for m in page.metrics if m.entity_kind != "post" or m.entity_id not in dropped],
        )


def _unseen(table: Table, seen: Table, key: tuple[str, ...], network: str, scope: ColumnElement[bool],
            moment: datetime) -> list[ColumnElement[bool]]:
    """Live rows of ``scope`` that a complete pass did not see (no staged row with the same ``key``).

    Only rows no newer than the pass: a replayed older job never deletes what a newer one loaded.
    """
    staged = exists().where(seen.c.network == table.c.network, *(seen.c[k] == table.c[k] for k in key))
    return [table.c.network == network, scope, table.c.deleted.is_(False), table.c.synced_at <= moment, ~staged]


def _mark_deleted(conn: Connection, table: Table, gone: list[ColumnElement[bool]], moment: datetime) -> int:
    """After a complete pass, the rows ``gone`` selects are gone upstream."""
    marked = int(conn.execute(update(table).where(*gone).values(deleted=True, synced_at=moment)).rowcount)
    if marked:
        log.info("marked %s row(s) of %s deleted after a complete pass", marked, table.name)
    return marked


def _write(conn: Connection, stage: StagedUpserts, network: str, page_id: int, page: NormalizedPage,
           moment: datetime, report: NormalizeReport) -> None:
    base = {"network": network, "synced_at": moment}
    report.profiles += stage.append(profiles, [{**base, **p.model_dump()} for p in page.profiles])
    report.posts += stage.append(posts, [{**base, **p.model_dump(), "deleted": False} for p in page.posts])
    report.media += stage.append(media, [{**base, **m.model_dump()} for m in page.media])
    report.comments += stage.append(comments, [{**base, **c.model_dump(), "deleted": False} for c in page.comments])
    report.follows += stage.append(follows, [{**base, **f.model_dump(), "first_seen_at": moment, "removed_at": None}
                                             for f in page.follows])
    report.likes += stage.append(likes, [{**base, **like.model_dump(), "first_seen_at": moment, "removed_at": None}
                                         for like in page.likes])
    report.metrics += stage.append(metrics, [
        {**base, **m.model_dump(), "captured_on": captured_on(moment)} for m in page.metrics])
    if page.rejects:  # what the page's earlier normalize quarantined is gone (``_normalize_job``)
        conn.execute(insert(quarantine), [
            {**base, "raw_page_id": page_id, "record_kind": r.record_kind, "record_id": r.record_id,
             "reason": r.reason[:4000], "record": r.record, "quarantined_at": moment}
            for r in page.rejects])
        report.rejects += len(page.rejects)
        log.warning("raw page %s: %s record(s) quarantined, first: %s", page_id, len(page.rejects),
                    page.rejects[0].reason)
