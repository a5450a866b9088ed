"""Planning is set-based: its statements grow by chunks of 1,000 profiles, never one per profile."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import Connection, Engine, event, func, insert, select, update

from socialsync.storage import planning
from socialsync.storage.schema import entity_leases, sync_batches, sync_jobs, sync_tasks, tracked_entities

NOW = datetime(2026, 11, 1, 6, tzinfo=UTC)
_T = TypeVar("_T")


class Statements:
    """Counts what reaches the driver: an executemany is one, an insertmanyvalues page is one."""

    def __init__(self) -> None:
        self.count = 0
        self.steps: dict[str, int] = {}

    def __call__(self, *_: Any) -> None:
        self.count += 1

    def step(self, name: str, call: Callable[[], _T]) -> _T:
        before = self.count
        result = call()
        self.steps[name] = self.steps.get(name, 0) + self.count - before
        return result


@contextmanager
def counting(engine: Engine) -> Iterator[Statements]:
    statements = Statements()
    event.listen(engine, "before_cursor_execute", statements)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", statements)


def _ids(n: int) -> list[str]:
    return [str(178400000000000000 + i) for i in range(n)]


def _finish(conn: Connection, job_ids: list[int]) -> None:
    conn.execute(update(sync_jobs).where(sync_jobs.c.id.in_(job_ids)).values(status="succeeded", finished_at=NOW))


def _plan_days(engine: Engine, network: str, n: int) -> dict[str, int]:
    """Every path of planning for ``n`` profiles: new ones, busy ones, taken over ones, a cleared run."""
    ids = _ids(n)
    with engine.begin() as conn, counting(engine) as statements:
        statements.step("track", lambda: planning.track_entities(conn, network, ids, NOW))
        first = statements.step("open new", lambda: planning.open_jobs(conn, network, "day-1", ids, {}, 8, NOW))
        statements.step("lease free", lambda: planning.acquire_leases(conn, network, "day-1", first, ids, NOW))
        statements.step("unsupported", lambda: planning.record_unsupported(conn, network, first, ids, {"likes"}))
        statements.step("track known", lambda: planning.track_entities(conn, network, ids, NOW))
        second = statements.step("open again", lambda: planning.open_jobs(conn, network, "manual", ids, {}, 8, NOW))
        busy = statements.step("lease busy",
                               lambda: planning.acquire_leases(conn, network, "manual", second, ids, NOW))
        assert len(busy) == n
        _finish(conn, first)
        third = statements.step("open continued", lambda: planning.open_jobs(conn, network, "day-2", ids, {}, 8, NOW))
        statements.step("lease taken", lambda: planning.acquire_leases(conn, network, "day-2", third, ids, NOW))
        again = statements.step("replan", lambda: planning.open_jobs(conn, network, "day-2", ids, {}, 8, NOW))
        statements.step("lease replan", lambda: planning.acquire_leases(conn, network, "day-2", again, ids, NOW))
        statements.step("due", lambda: planning.due_entities(conn, network, NOW))
    return statements.steps


def test_statements_grow_by_chunks_not_by_profiles(warehouse: Engine) -> None:
    small, large = _plan_days(warehouse, "small", 10), _plan_days(warehouse, "large", 2000)
    print(f"\n{warehouse.dialect.name} statements for 10 profiles: {small}\n  for 2,000: {large}")
    chunks = math.ceil(2000 / planning.CHUNK)
    for step, count in small.items():
        assert count <= 6, (step, count)  # a handful whatever the step
        assert large[step] <= count * chunks, (step, count, large[step])


def test_twenty_thousand_profiles_are_planned_in_bulk(warehouse: Engine) -> None:
    ids = _ids(20_000)
    with warehouse.begin() as conn:
        planning.track_entities(conn, "instagram", ids, NOW)
    started = time.perf_counter()
    with warehouse.begin() as conn, counting(warehouse) as statements:
        job_ids = statements.step("open", lambda: planning.open_jobs(conn, "instagram", "day-1", ids, {"as_of": "x"},
                                                                     128, NOW))
        busy = statements.step("lease", lambda: planning.acquire_leases(conn, "instagram", "day-1", job_ids, ids,
                                                                        NOW))
    seconds = time.perf_counter() - started
    print(f"\n{warehouse.dialect.name}: open_jobs + acquire_leases for 20,000 profiles in {seconds:.2f}s, "
          f"statements {statements.steps}")
    assert busy == {}
    # Per 1,000 profiles: the last jobs, the jobs, their batches, the leases read and written.
    assert sum(statements.steps.values()) <= 5 * math.ceil(20_000 / planning.CHUNK) + 5
    with warehouse.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(sync_jobs)) == 20_000
        assert conn.scalar(select(func.count()).select_from(entity_leases)) == 20_000
        batches = dict(conn.execute(select(sync_batches.c.batch_no, func.count())
                                    .group_by(sync_batches.c.batch_no)).all())
    assert len(batches) == 128 and set(batches.values()) <= {156, 157}


def test_job_ids_come_back_in_the_order_of_the_entities(warehouse: Engine) -> None:
    ids = ["30", "10", "20", "10"]  # not sorted, one named twice
    with warehouse.begin() as conn:
        job_ids = planning.open_jobs(conn, "instagram", "run", ids, {"as_of": "x"}, 2, NOW)
        rows = dict(conn.execute(select(sync_jobs.c.id, sync_jobs.c.entity_id)).all())
        batch_of = dict(conn.execute(select(sync_batches.c.job_id, sync_batches.c.batch_no)).all())
    assert [rows[j] for j in job_ids] == ids and len(set(job_ids)) == 4
    assert job_ids[1] < job_ids[3]  # the first mention has the first job
    assert [batch_of[j] for j in job_ids] == [0, 1, 0, 1]


def test_a_continued_job_takes_up_the_unfinished_cursor(warehouse: Engine) -> None:
    with warehouse.begin() as conn:
        [old, done] = planning.open_jobs(conn, "instagram", "day-1", ["1", "2"], {}, 1, NOW)
        conn.execute(update(sync_jobs).where(sync_jobs.c.id == old)
                     .values(status="partial", cursor={"posts_after": "c9", "full_pass": True}))
        _finish(conn, [done])
        new = planning.open_jobs(conn, "instagram", "day-2", ["1", "2"], {"as_of": "y"}, 1, NOW)
        rows = {r.id: r for r in conn.execute(select(sync_jobs).where(sync_jobs.c.id.in_(new)))}
    assert rows[new[0]].cursor == {"as_of": "y", "resume_after": "c9", "resume_full_pass": True}
    assert rows[new[0]].previous_job_id == old
    assert rows[new[1]].cursor == {"as_of": "y"} and rows[new[1]].previous_job_id == done


def _holder(conn: Connection, entity_id: str) -> tuple[int, str]:
    row = conn.execute(select(entity_leases.c.job_id, entity_leases.c.run_id)
                       .where(entity_leases.c.entity_id == entity_id)).one()
    return row.job_id, row.run_id


def test_a_live_holder_keeps_its_entities_and_the_other_jobs_are_skipped_as_busy(warehouse: Engine) -> None:
    with warehouse.begin() as conn:
        held = planning.open_jobs(conn, "instagram", "scheduled", ["1", "2"], {}, 1, NOW)
        assert planning.acquire_leases(conn, "instagram", "scheduled", held, ["1", "2"], NOW) == {}
        conn.execute(update(sync_jobs).where(sync_jobs.c.id == held[0]).values(status="running"))
        later = NOW + timedelta(hours=1)
        mine = planning.open_jobs(conn, "instagram", "manual", ["1", "2", "3"], {}, 1, later)
        busy = planning.acquire_leases(conn, "instagram", "manual", mine, ["1", "2", "3"], later)
        jobs = {r.id: r for r in conn.execute(select(sync_jobs).where(sync_jobs.c.id.in_(mine)))}
        holders = {e: _holder(conn, e) for e in ("1", "2", "3")}
    assert busy == {e: f"entity is being synced by run scheduled (job {j})" for e, j in zip("12", held, strict=True)}
    for entity_id, job_id in zip("12", mine[:2], strict=True):
        assert (jobs[job_id].status, jobs[job_id].error_type) == ("skipped", "Busy")
        assert jobs[job_id].error_message == busy[entity_id] and jobs[job_id].finished_at == later
        assert holders[entity_id] == (held[int(entity_id) - 1], "scheduled")
    assert jobs[mine[2]].status == "pending" and holders["3"] == (mine[2], "manual")


@pytest.mark.parametrize("holder", ["finished", "stale", "same run"])
def test_a_finished_stale_or_replanned_holder_is_taken_over(warehouse: Engine, holder: str) -> None:
    with warehouse.begin() as conn:
        [old] = planning.open_jobs(conn, "instagram", "day-1", ["1"], {}, 1, NOW)
        planning.acquire_leases(conn, "instagram", "day-1", [old], ["1"], NOW)
        now, run_id = NOW + timedelta(hours=1), "day-2"
        if holder == "finished":
            _finish(conn, [old])
        elif holder == "stale":  # its run died while the job was running
            conn.execute(update(sync_jobs).where(sync_jobs.c.id == old).values(status="running"))
            now = NOW + planning.LEASE_TTL + timedelta(seconds=1)
        else:
            run_id = "day-1"
        [new] = planning.open_jobs(conn, "instagram", run_id, ["1"], {}, 1, now)
        busy = planning.acquire_leases(conn, "instagram", run_id, [new], ["1"], now)
        assert busy == {}
        assert _holder(conn, "1") == (new, run_id)
        assert conn.scalar(select(entity_leases.c.acquired_at)) == now
        assert conn.scalar(select(sync_jobs.c.status).where(sync_jobs.c.id == new)) == "pending"


def test_naming_an_entity_tracks_it_again(warehouse: Engine) -> None:
    with warehouse.begin() as conn:
        conn.execute(insert(tracked_entities), [
            {"network": "instagram", "entity_id": e, "active": False, "added_at": NOW, "misses": 3,
             "deactivated_reason": "not found 3 runs in a row"} for e in ("1", "2")])
        assert planning.track_entities(conn, "instagram", ["1", "3", "1"], NOW) == 1
        rows = {r.entity_id: r for r in conn.execute(select(tracked_entities))}
        due = planning.due_entities(conn, "instagram", NOW)
    assert (rows["1"].active, rows["1"].misses, rows["1"].deactivated_reason) == (True, 0, None)
    assert (rows["2"].active, rows["2"].misses) == (False, 3)  # not named: stays deactivated
    assert (rows["3"].active, rows["3"].misses) == (True, 0)
    assert due == ["1", "3"]


def test_unsupported_parts_are_recorded_once_per_job(warehouse: Engine) -> None:
    with warehouse.begin() as conn:
        job_ids = planning.open_jobs(conn, "instagram", "run", ["1", "2"], {}, 1, NOW)
        for _ in range(2):
            planning.record_unsupported(conn, "instagram", job_ids, ["1", "2"], {"likes"})
        planning.record_unsupported(conn, "instagram", job_ids, ["1", "2"], set())
        rows = conn.execute(select(sync_tasks.c.job_id, sync_tasks.c.kind, sync_tasks.c.external_id,
                                   sync_tasks.c.status, sync_tasks.c.last_error)).all()
    assert sorted(rows) == [(j, "likes", e, "skipped", "instagram does not expose likes")
                            for j, e in zip(job_ids, ["1", "2"], strict=True)]
