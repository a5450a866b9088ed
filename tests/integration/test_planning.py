"""Planning is set-based and says the same on both databases: SQLite in chunks of 1,000, PostgreSQL in bulk."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import URL, Connection, Engine, create_engine, event, func, insert, make_url, select, update

from socialsync.storage import jobs, migrate, planning
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.schema import (
    entity_leases,
    sync_batches,
    sync_jobs,
    sync_tasks,
    tracked_entities,
)

NOW = datetime(2026, 11, 1, 6, tzinfo=UTC)
DAY = timedelta(days=1)
_T = TypeVar("_T")
# Ids whose order differs between code points and a locale's collation (case, punctuation, digits,
# accents), and the characters COPY's text format escapes.
AWKWARD = ["b", "B", "_a", "a", "10", "9", "é", "Z", "a_1", "a-1", "tab\there", "back\\slash", "line\nbreak"]


@pytest.fixture(params=["sqlite", "psycopg2", "psycopg"])
def warehouse(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    """The suite's warehouses, PostgreSQL twice: through psycopg2, and through psycopg (3), which
    Airflow's PostgresHook picks next to SQLAlchemy 2, so the driver the DAG's plan task uses."""
    if request.param == "sqlite":
        engine = warehouse_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    else:
        engine = warehouse_engine(_driver(request.getfixturevalue("postgres_url"), request.param))
    yield engine
    migrate.drop_all(engine)
    engine.dispose()


def _driver(url: str, driver: str) -> URL:
    return make_url(url).set(drivername=f"postgresql+{driver}")


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


def _finish(conn: Connection, job_ids: list[int], status: str = "succeeded", **values: Any) -> None:
    conn.execute(update(sync_jobs).where(sync_jobs.c.id.in_(job_ids)).values(status=status, finished_at=NOW, **values))


def _jobs(conn: Connection, job_ids: list[int]) -> dict[int, Any]:
    return {r.id: r for r in conn.execute(select(sync_jobs).where(sync_jobs.c.id.in_(job_ids)))}


def _holder(conn: Connection, entity_id: str) -> tuple[int, str]:
    row = conn.execute(select(entity_leases.c.job_id, entity_leases.c.run_id)
                       .where(entity_leases.c.entity_id == entity_id)).one()
    return row.job_id, row.run_id


def _drop_tables_unchecked(engine: Engine) -> None:
    """On SQLite, drop the tables without the foreign key checks the fixture's teardown would make.

    Dropping ``sync_jobs`` deletes its rows one by one, each looked for as some job's
    ``previous_job_id``, which has no index: a scan per row, over half a minute for 20,000 jobs.
    """
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            migrate.drop_all(conn)
            conn.commit()
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")


def _batches(conn: Connection, run_id: str) -> dict[int, int]:
    b = sync_batches.c
    return dict(conn.execute(select(b.job_id, b.batch_no).where(b.run_id == run_id)).tuples().all())


# --- the number of statements ------------------------------------------------------------------


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


def test_statements_grow_by_chunks_on_sqlite_and_not_at_all_on_postgresql(warehouse: Engine) -> None:
    small, large = _plan_days(warehouse, "small", 10), _plan_days(warehouse, "large", 2000)
    print(f"\n{warehouse.dialect.name} statements for 10 profiles: {small}\n  for 2,000: {large}")
    chunks = math.ceil(2000 / planning.CHUNK)
    for step, count in small.items():
        if warehouse.dialect.name == "postgresql" and not step.startswith("track"):
            assert count <= 16 and large[step] == count, (step, count, large[step])  # COPY is not counted
        else:
            assert count <= 6, (step, count)  # a handful whatever the step
            assert large[step] <= count * chunks, (step, count, large[step])
    _drop_tables_unchecked(warehouse)


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
    # Per 1,000 profiles on SQLite: the last jobs, the jobs, their batches, the leases read and written.
    bound = 20 if warehouse.dialect.name == "postgresql" else 5 * math.ceil(20_000 / planning.CHUNK) + 5
    assert sum(statements.steps.values()) <= bound
    with warehouse.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(sync_jobs)) == 20_000
        assert conn.scalar(select(func.count()).select_from(entity_leases)) == 20_000
        batches: dict[int, int] = dict(conn.execute(select(sync_batches.c.batch_no, func.count())
                                                    .group_by(sync_batches.c.batch_no)).tuples().all())
    assert len(batches) == 128 and set(batches.values()) <= {156, 157}
    assert job_ids == sorted(job_ids) and len(set(job_ids)) == 20_000
    _drop_tables_unchecked(warehouse)


# --- what planning does, on both databases -----------------------------------------------------


def test_job_ids_come_back_in_the_order_of_the_entities(warehouse: Engine) -> None:
    ids = ["30", "10", "20", "10"]  # not sorted, one named twice
    with warehouse.begin() as conn:
        job_ids = planning.open_jobs(conn, "instagram", "run", ids, {"as_of": "x"}, 2, NOW)
        rows: dict[int, str] = dict(conn.execute(select(sync_jobs.c.id, sync_jobs.c.entity_id)).tuples().all())
        batch_of: dict[int, int] = dict(conn.execute(select(sync_batches.c.job_id, sync_batches.c.batch_no))
                                        .tuples().all())
        busy = planning.acquire_leases(conn, "instagram", "run", job_ids, ids, NOW)
        holder = _holder(conn, "10")
    assert [rows[j] for j in job_ids] == ids and len(set(job_ids)) == 4
    assert job_ids[1] < job_ids[3]  # the first mention has the first job
    assert [batch_of[j] for j in job_ids] == [0, 1, 0, 1]
    assert busy == {} and holder == (job_ids[3], "run")  # the last mention holds the lease


def test_awkward_ids_are_stored_as_given(warehouse: Engine) -> None:
    with warehouse.begin() as conn:
        job_ids = planning.open_jobs(conn, "instagram", "run", AWKWARD, {}, 3, NOW)
        assert planning.acquire_leases(conn, "instagram", "run", job_ids, AWKWARD, NOW) == {}
        planning.record_unsupported(conn, "instagram", job_ids, AWKWARD, {"likes"})
        rows = _jobs(conn, job_ids)
        leased: dict[str, int] = dict(conn.execute(select(entity_leases.c.entity_id, entity_leases.c.job_id))
                                      .tuples().all())
        tasks: dict[int, str] = dict(conn.execute(select(sync_tasks.c.job_id, sync_tasks.c.external_id))
                                     .tuples().all())
    assert [rows[j].entity_id for j in job_ids] == AWKWARD
    assert leased == dict(zip(AWKWARD, job_ids, strict=True))
    assert tasks == dict(zip(job_ids, AWKWARD, strict=True))


def test_due_entities_are_in_code_point_order(warehouse: Engine) -> None:
    t0 = NOW - DAY
    with warehouse.begin() as conn:
        planning.track_entities(conn, "instagram", AWKWARD, t0)
        jobs.advance_watermark(conn, "instagram", "B", NOW)  # synced since: not due
        jobs.advance_watermark(conn, "instagram", "Z", t0)  # synced before: due
        due = planning.due_entities(conn, "instagram", NOW - timedelta(hours=20))
    assert due == sorted(set(AWKWARD) - {"B"})


def test_the_second_day_continues_every_entity(warehouse: Engine) -> None:
    tomorrow = NOW + DAY
    with warehouse.begin() as conn:
        planning.track_entities(conn, "instagram", ["3", "1", "2"], NOW - DAY)
        due = planning.due_entities(conn, "instagram", NOW - timedelta(hours=20))
        first = planning.open_jobs(conn, "instagram", "day-1", due, {"as_of": "d1"}, 2, NOW)
        assert planning.acquire_leases(conn, "instagram", "day-1", first, due, NOW) == {}
    with warehouse.begin() as conn:  # the run ends: all succeed, the first batch released its leases
        _finish(conn, first)
        for entity_id in due:
            jobs.advance_watermark(conn, "instagram", entity_id, NOW)
        planning.release_leases(conn, "instagram", first[:1])
    with warehouse.begin() as conn:
        again = planning.due_entities(conn, "instagram", tomorrow - timedelta(hours=20))
        second = planning.open_jobs(conn, "instagram", "day-2", again, {"as_of": "d2"}, 2, tomorrow)
        busy = planning.acquire_leases(conn, "instagram", "day-2", second, again, tomorrow)
        rows = _jobs(conn, second)
        batches = {"day-1": _batches(conn, "day-1"), "day-2": _batches(conn, "day-2")}
        leases = conn.execute(select(entity_leases.c.entity_id, entity_leases.c.job_id, entity_leases.c.run_id,
                                     entity_leases.c.acquired_at).order_by(entity_leases.c.entity_id)).all()
    assert due == again == ["1", "2", "3"] and busy == {}
    assert second == sorted(second) and second[0] > first[-1]
    assert [rows[j].previous_job_id for j in second] == first
    assert {(r.status, r.run_id, r.started_at) for r in rows.values()} == {("pending", "day-2", tomorrow)}
    assert all(r.cursor == {"as_of": "d2"} for r in rows.values())
    assert batches == {"day-1": dict(zip(first, [0, 1, 0], strict=True)),
                       "day-2": dict(zip(second, [0, 1, 0], strict=True))}
    assert leases == [(e, j, "day-2", tomorrow) for e, j in zip(again, second, strict=True)]


def test_a_cleared_run_planned_again_supersedes_its_unfinished_jobs(warehouse: Engine) -> None:
    later = NOW + timedelta(hours=1)
    with warehouse.begin() as conn:
        first = planning.open_jobs(conn, "instagram", "day-1", ["b", "c", "a", "b"], {"as_of": "x"}, 2, NOW)
        planning.acquire_leases(conn, "instagram", "day-1", first, ["b", "c", "a", "b"], NOW)
        _finish(conn, [first[1]])  # "c" finished before the run was cleared
        conn.execute(update(sync_jobs).where(sync_jobs.c.id == first[2]).values(status="running"))
    with warehouse.begin() as conn:
        replanned = planning.entities_of_run(conn, "instagram", "day-1")
        again = planning.open_jobs(conn, "instagram", "day-1", replanned, {"as_of": "x"}, 1, later)
        busy = planning.acquire_leases(conn, "instagram", "day-1", again, replanned, later)
        old, new = _jobs(conn, first), _jobs(conn, again)
        batches = _batches(conn, "day-1")
        holders = {e: _holder(conn, e) for e in replanned}
    assert replanned == ["a", "b", "c"] and busy == {}
    # Each job continues the run's own earlier job (of "b", the later of two).
    assert [new[j].previous_job_id for j in again] == [first[2], first[3], first[1]]
    assert (old[first[1]].status, old[first[1]].error_type) == ("succeeded", None)
    for job_id in (first[0], first[2], first[3]):
        assert (old[job_id].status, old[job_id].error_type, old[job_id].finished_at) == ("failed", "superseded", later)
        assert old[job_id].error_message == "run day-1 was planned again"
    assert batches == dict.fromkeys(again, 0)
    assert holders == {e: (j, "day-1") for e, j in zip(replanned, again, strict=True)}
    with warehouse.begin() as conn:  # planned again with nothing: closes its jobs, forgets its batches
        assert planning.open_jobs(conn, "instagram", "day-1", [], {}, 1, later) == []
        assert planning.entities_of_run(conn, "instagram", "day-1") == []
        assert {r.error_type for r in _jobs(conn, again).values()} == {"superseded"}


@pytest.mark.parametrize(("status", "before", "taken_up"), [
    ("partial", {"posts_after": "c9", "full_pass": True}, {"resume_after": "c9", "resume_full_pass": True}),
    ("failed", {"resume_after": "r1", "posts_after": "c9"}, {"resume_after": "r1", "resume_full_pass": False}),
    ("failed", {"resume_after": "", "posts_after": "c9", "full_pass": 1}, {"resume_after": "c9",
                                                                          "resume_full_pass": True}),
    ("partial", {"posts_after": {"page": 3}, "full_pass": [0]}, {"resume_after": {"page": 3},
                                                                  "resume_full_pass": True}),
    ("partial", {"posts_after": 7, "full_pass": 0.0}, {"resume_after": 7, "resume_full_pass": False}),
    ("partial", {"posts_after": "c9", "full_pass": ""}, {"resume_after": "c9", "resume_full_pass": False}),
    ("partial", {"resume_after": None, "posts_after": "", "full_pass": True}, {}),
    ("failed", {"resume_after": [], "posts_after": 0}, {}),
    ("failed", {"resume_after": {}, "posts_after": False}, {}),
    ("succeeded", {"posts_after": "c9"}, {}),
    ("skipped", {"posts_after": "c9"}, {}),
])
def test_a_continued_job_takes_up_the_unfinished_cursor(warehouse: Engine, status: str, before: dict[str, Any],
                                                        taken_up: dict[str, Any]) -> None:
    cursor = {"as_of": "y", "resume_after": "from the conf"}
    with warehouse.begin() as conn:
        [old, hidden] = planning.open_jobs(conn, "instagram", "day-1", ["1", "2"], {}, 1, NOW)
        _finish(conn, [old, hidden], status, cursor=before)
        [newer] = planning.open_jobs(conn, "instagram", "manual", ["2"], {}, 1, NOW)
        _finish(conn, [newer])  # the latest job decides: this one finished its pass
        new = planning.open_jobs(conn, "instagram", "day-2", ["1", "2"], cursor, 1, NOW + DAY)
        rows = _jobs(conn, new)
    assert rows[new[0]].cursor == {**cursor, **taken_up} and rows[new[0]].previous_job_id == old
    assert rows[new[1]].cursor == cursor and rows[new[1]].previous_job_id == newer


def test_a_live_holder_keeps_its_entities_and_the_other_jobs_are_skipped_as_busy(warehouse: Engine) -> None:
    with warehouse.begin() as conn:
        held = planning.open_jobs(conn, "instagram", "scheduled", ["1", "2"], {}, 1, NOW)
        assert planning.acquire_leases(conn, "instagram", "scheduled", held, ["1", "2"], NOW) == {}
        conn.execute(update(sync_jobs).where(sync_jobs.c.id == held[0]).values(status="running"))
        later = NOW + timedelta(hours=1)
        mine = planning.open_jobs(conn, "instagram", "manual", ["1", "2", "3"], {}, 1, later)
        busy = planning.acquire_leases(conn, "instagram", "manual", mine, ["1", "2", "3"], later)
        jobs = _jobs(conn, mine)
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


def test_busy_stale_and_finished_holders_on_the_second_day(warehouse: Engine) -> None:
    ids = ["4", "2", "3", "1", "5"]
    tomorrow = NOW + DAY
    with warehouse.begin() as conn:
        day_1 = planning.open_jobs(conn, "instagram", "day-1", ["2", "3"], {}, 1, NOW)
        planning.acquire_leases(conn, "instagram", "day-1", day_1, ["2", "3"], NOW)
        conn.execute(update(sync_jobs).where(sync_jobs.c.id == day_1[0]).values(status="running"))  # died
        _finish(conn, day_1[1:])  # its lease was never released
        manual = planning.open_jobs(conn, "instagram", "manual", ["4", "1"], {}, 1, tomorrow - timedelta(hours=2))
        planning.acquire_leases(conn, "instagram", "manual", manual, ["4", "1"], tomorrow - timedelta(hours=2))
        conn.execute(update(sync_jobs).where(sync_jobs.c.id == manual[0]).values(status="running"))
        day_2 = planning.open_jobs(conn, "instagram", "day-2", ids, {}, 2, tomorrow)
        busy = planning.acquire_leases(conn, "instagram", "day-2", day_2, ids, tomorrow)
        rows = _jobs(conn, day_2)
        holders = {e: _holder(conn, e) for e in ids}
    assert list(busy) == ["4", "1"]  # in the order the entities were given
    assert busy == {e: f"entity is being synced by run manual (job {j})" for e, j in zip("41", manual, strict=True)}
    assert [rows[j].status for j in day_2] == ["skipped", "pending", "pending", "skipped", "pending"]
    assert holders == {"4": (manual[0], "manual"), "1": (manual[1], "manual"),
                       **{e: (j, "day-2") for e, j in zip(ids, day_2, strict=True) if e in "235"}}


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
        planning.record_unsupported(conn, "instagram", job_ids, ["1", "2"], {"likes", "stories"})
        rows = conn.execute(select(sync_tasks.c.id, sync_tasks.c.job_id, sync_tasks.c.kind, sync_tasks.c.external_id,
                                   sync_tasks.c.status, sync_tasks.c.last_error).order_by(sync_tasks.c.id)).all()
    assert [tuple(r)[1:] for r in rows] == [(j, kind, e, "skipped", f"instagram does not expose {kind}")
                                            for kind in ("likes", "stories")
                                            for j, e in zip(job_ids, "12", strict=True)]
    assert [r.id for r in rows] == [1, 2, 3, 4]  # skipping the present ones drew no id


# --- the same answers from both databases ------------------------------------------------------


def _scenario(engine: Engine) -> list[Any]:
    """Three days of plans over awkward ids, with every outcome; returns what each call said."""
    said: list[Any] = []
    net, t0 = "instagram", NOW
    with engine.begin() as conn:
        said.append(planning.track_entities(conn, net, AWKWARD, t0 - DAY))
        due = planning.due_entities(conn, net, t0)
        day_1 = planning.open_jobs(conn, net, "day-1", due, {"as_of": "d1"}, 4, t0)
        said += [due, day_1, planning.acquire_leases(conn, net, "day-1", day_1, due, t0)]
        planning.record_unsupported(conn, net, day_1, due, {"likes"})
        named = ["a", "new", "a", "Z"]  # a manual run while day 1 holds everything
        manual = planning.open_jobs(conn, net, "manual", named, {"as_of": "m"}, 2, t0 + timedelta(hours=1))
        said += [manual, planning.acquire_leases(conn, net, "manual", manual, named, t0 + timedelta(hours=1))]
    with engine.begin() as conn:  # day 1 ends every way a job can
        job = dict(zip(due, day_1, strict=True))
        _finish(conn, [job["b"], job["B"], job["9"]])
        _finish(conn, [job["_a"]], "partial", cursor={"posts_after": "p1", "full_pass": True})
        _finish(conn, [job["10"]], "failed", cursor={"resume_after": "r1", "posts_after": "p0"})
        _finish(conn, [job["é"]], "failed")
        conn.execute(update(sync_jobs).where(sync_jobs.c.id == job["a"]).values(status="running"))  # died
        planning.release_leases(conn, net, [job["b"], job["_a"], job["10"]])
        for entity_id in ("b", "B", "9"):
            jobs.advance_watermark(conn, net, entity_id, t0 + timedelta(hours=10))
        conn.execute(update(tracked_entities).where(tracked_entities.c.entity_id == "a_1").values(active=False))
    t1 = t0 + DAY
    with engine.begin() as conn:
        # Day 1's leases are stale by now: a manual run takes two of them and is still running.
        live = planning.open_jobs(conn, net, "manual-2", ["Z", "a"], {}, 1, t1 - timedelta(hours=1))
        planning.acquire_leases(conn, net, "manual-2", live, ["Z", "a"], t1 - timedelta(hours=1))
        due = planning.due_entities(conn, net, t1 - timedelta(hours=20))
        day_2 = planning.open_jobs(conn, net, "day-2", due, {"as_of": "d2"}, 3, t1)
        said += [live, due, day_2, planning.acquire_leases(conn, net, "day-2", day_2, due, t1)]
        planning.record_unsupported(conn, net, day_2, due, {"likes", "stories"})
    with engine.begin() as conn:  # day 2 is cleared after one job finished, and planned again
        _finish(conn, day_2[:1])
        replanned = planning.entities_of_run(conn, net, "day-2")
        again = planning.open_jobs(conn, net, "day-2", replanned, {"as_of": "d2"}, 3, t1 + timedelta(minutes=5))
        said += [replanned, again,
                 planning.acquire_leases(conn, net, "day-2", again, replanned, t1 + timedelta(minutes=5))]
        said.append(planning.open_jobs(conn, net, "manual", [], {}, 1, t1))
        said.append(planning.entities_of_run(conn, net, "manual"))
    with engine.connect() as conn:
        for table in (tracked_entities, sync_jobs, sync_batches, entity_leases, sync_tasks):
            said.append([tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key.columns))])
    return said


def test_both_databases_plan_alike(postgres_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    said = {}
    for url in (f"sqlite:///{tmp_path / 'warehouse.db'}", _driver(postgres_url, "psycopg2"),
                _driver(postgres_url, "psycopg")):
        engine = warehouse_engine(url)
        migrate.reset(engine)  # job and task ids from 1 on each
        try:
            said[engine.dialect.driver] = _scenario(engine)
        finally:
            migrate.drop_all(engine)
            engine.dispose()
    sqlite = said.pop("pysqlite")
    for driver, postgres in said.items():
        assert len(sqlite) == len(postgres), driver
        for index, (lite, other) in enumerate(zip(sqlite, postgres, strict=True)):
            assert lite == other, (driver, index)
    # Day 2 found two entities held by a live run; its cleared plan found them held still.
    assert list(sqlite[9]) == list(sqlite[12]) == ["Z", "a"]


@pytest.fixture
def locale_warehouse(postgres_url: str) -> Iterator[Engine]:
    """A warehouse whose database sorts text by a locale (ICU en-US), as many installations do."""
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = admin.dialect.identifier_preparer.quote("warehouse_en_us")
    try:
        with admin.connect() as conn:
            if not conn.exec_driver_sql("SELECT 1 FROM pg_collation WHERE collname = %s", ("en-US-x-icu",)).first():
                pytest.skip("this PostgreSQL has no ICU collations")
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            # Utility statements take no server-side parameters: psycopg2 quotes the locale in.
            conn.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu "
                                 "ICU_LOCALE %s LOCALE %s", ("en-US", "C.UTF-8"))
        engine = warehouse_engine(make_url(postgres_url).set(database="warehouse_en_us"))
        try:
            yield engine
        finally:
            engine.dispose()
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE {name}")
    finally:
        admin.dispose()


def test_due_entities_ignore_the_database_collation(locale_warehouse: Engine) -> None:
    with locale_warehouse.begin() as conn:
        planning.track_entities(conn, "instagram", AWKWARD, NOW - DAY)
        due = planning.due_entities(conn, "instagram", NOW)
        entity_id = tracked_entities.c.entity_id
        ordered_by_locale = list(conn.scalars(select(entity_id).order_by(entity_id)))
    assert ordered_by_locale != sorted(AWKWARD)  # the database's own order is the locale's
    assert due == sorted(AWKWARD)
