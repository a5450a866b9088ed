"""Posts walks that list many profiles in one query (TikTok's video query takes 100 usernames).

A batch's jobs are walked ``NetworkSpec.posts_per_query`` at a time. Every answer's pages land in
their own jobs' raw pages, and the walk's state (window, cursor, search id) is saved on every member
job in the same transaction: a killed task resumes each group where its last answer left it. A
profile leaves the walk at its floor (its last sync minus the lookback), or, with no floor, once it
has seen every post its profile page counts: only that walk proves which posts are gone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Engine, select

from socialsync.networks.base import ApiError, GroupedPostsClient, NetworkSpec, PageAnomaly, PostsWalk
from socialsync.storage import jobs as bookkeeping
from socialsync.storage.raw import write_raw_page
from socialsync.storage.schema import tracked_entities

log = logging.getLogger(__name__)


class Window(Protocol):
    @property
    def as_of(self) -> datetime: ...

    @property
    def full_refresh(self) -> bool: ...

    @property
    def last_synced_at(self) -> datetime | None: ...

    @property
    def recent_since(self) -> datetime: ...


class Report(Protocol):
    def add(self, **counts: int) -> None: ...


def grouped_posts(engine: Engine, network: NetworkSpec, client: GroupedPostsClient,
                  jobs: Sequence[bookkeeping.JobRef], window: Window, report: Report, clock: Callable[[], datetime],
                  expected: Callable[[bookkeeping.JobRef], int | None],
                  failed: Callable[[list[bookkeeping.JobRef], ApiError], None], workers: int,
                  finished: Callable[[bookkeeping.JobRef], None] = lambda job: None) -> None:
    """Walk the posts of ``jobs``, a group per query; ``failed`` handles an error that ends a group's walk."""
    with engine.begin() as conn:
        tasks = {job.id: bookkeeping.begin_task(conn, job.id, "posts", job.entity_id) for job in jobs}
        cursors = {job.id: bookkeeping.job_cursor(conn, job.id) for job in jobs}
        floors = _floors(conn, network, jobs, window)
    todo = [job for job in jobs if tasks[job.id][1] != "succeeded"]
    groups = _groups(todo, cursors, network.posts_per_query)

    def walk(group: tuple[list[bookkeeping.JobRef], dict[str, Any] | None]) -> None:
        members, state = group
        by_entity = {job.entity_id: job for job in members}
        active = set(by_entity)
        walks = [PostsWalk(job.entity_id, floors.get(job.entity_id), expected(job)) for job in members]
        try:
            for step in client.walk_posts(walks, state, window.as_of):
                with engine.begin() as conn:  # the pages and the walk's state after them land together
                    for page in step.pages:
                        if page.parent_id in by_entity:
                            write_raw_page(conn, network.name, by_entity[page.parent_id].id, page, clock())
                    for entity_id in sorted(active):
                        job = by_entity[entity_id]
                        cursor = cursors[job.id]
                        if entity_id in step.ended:
                            cursor.pop("walk", None)
                            cursor.update(top_done=True, from_top=True, posts_complete=step.ended[entity_id])
                            bookkeeping.finish_task(conn, tasks[job.id][0], "succeeded", clock())
                            active.discard(entity_id)
                        else:
                            cursor["walk"] = step.state
                        bookkeeping.set_job_cursor(conn, job.id, cursor)
                report.add(pages=len(step.pages), items=sum(page.item_count for page in step.pages))
                for entity_id in step.ended:
                    if entity_id in by_entity:
                        finished(by_entity[entity_id])
        except PageAnomaly as exc:
            log.warning("posts walk of %s profile(s) stopped by an anomaly, their jobs end partial: %s",
                        len(active), exc)
            report.add(anomalies=1)
            with engine.begin() as conn:
                for entity_id in active:
                    job = by_entity[entity_id]
                    bookkeeping.finish_task(conn, tasks[job.id][0], "partial", None, error=str(exc)[:2000])
                    bookkeeping.set_job_status(conn, job.id, "running", error_type=exc.error_type,
                                               error_message=str(exc)[:2000])
        except ApiError as exc:
            failed([by_entity[e] for e in sorted(active)], exc)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(groups) or 1)),
                            thread_name_prefix="walk") as pool:
        for future in [pool.submit(walk, group) for group in groups]:
            future.result()


def _floors(conn: Any, network: NetworkSpec, jobs: Sequence[bookkeeping.JobRef],
            window: Window) -> dict[str, datetime | None]:
    """How far back each profile must be walked: its last sync minus the lookback (a run's own
    ``last_synced_at`` instead, when given); ``None`` (as far as it goes) when never synced or refreshing."""
    ids = [job.entity_id for job in jobs]
    if window.full_refresh:
        return dict.fromkeys(ids)
    if window.last_synced_at is not None:
        return dict.fromkeys(ids, window.last_synced_at)
    t = tracked_entities.c
    synced = dict(conn.execute(select(t.entity_id, t.last_synced_at).where(
        t.network == network.name, t.entity_id.in_(ids))).tuples().all())
    lookback = window.as_of - window.recent_since
    return {entity_id: (synced[entity_id] - lookback if synced.get(entity_id) else None) for entity_id in ids}


def _groups(jobs: Sequence[bookkeeping.JobRef], cursors: dict[int, dict[str, Any]],
            size: int) -> list[tuple[list[bookkeeping.JobRef], dict[str, Any] | None]]:
    """Walks an earlier try left go on together from their saved state; the others in new groups."""
    resumed: dict[str, tuple[list[bookkeeping.JobRef], dict[str, Any]]] = {}
    fresh = []
    for job in jobs:
        state = cursors[job.id].get("walk")
        if isinstance(state, dict) and isinstance(state.get("walk"), str):
            resumed.setdefault(state["walk"], ([], state))[0].append(job)
        else:
            fresh.append(job)
    groups: list[tuple[list[bookkeeping.JobRef], dict[str, Any] | None]] = list(resumed.values())
    groups += [(fresh[i:i + size], None) for i in range(0, len(fresh), max(1, size))]
    return groups
