"""How long ``plan``'s warehouse work takes for many tracked profiles, on the first day and the next."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, String, cast, func, insert, literal, select, update

from socialsync.networks import get_network
from socialsync.storage import jobs, migrate, planning, usage
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.schema import sync_jobs, tracked_entities
from socialsync.storage.types import UtcDateTime

NETWORK = "instagram"
DAY_1 = datetime(2026, 11, 1, 6, tzinfo=UTC)
DAY_2 = DAY_1 + timedelta(days=1)
# plan's own bounds (socialsync.airflow.tasks), repeated to keep Airflow out of the measurement.
MAX_BATCHES, MIN_BATCH_SIZE = 128, 25
FIRST_ID = 178400000000000000  # Instagram-like numeric ids, 18 digits
PARTIAL_EVERY = 100  # one job a hundred ends partial on day 1: day 2 resumes its posts pass

_T = TypeVar("_T")


def measure_plan(url: str, tracked: int) -> dict[str, float]:
    """Seconds of plan's warehouse work for ``tracked`` due profiles, day 1 and day 2, and per step.

    The warehouse at ``url`` is emptied first: give it a throwaway database. Day 1 finds no job and
    no lease; between the days the run ends as a finished run would (jobs closed, one in a hundred
    ``partial`` with a posts cursor, watermarks moved, leases released), so on day 2 every entity
    is due again with a job to continue.
    """
    engine = warehouse_engine(url)
    try:
        migrate.reset(engine)
        _track(engine, tracked)
        day_1 = _plan(engine, "day-1", DAY_1, tracked)
        _finish(engine, "day-1", DAY_1)
        day_2 = _plan(engine, "day-2", DAY_2, tracked)
    finally:
        engine.dispose()
    return {**{f"day1 {k}": v for k, v in day_1.items()}, **{f"day2 {k}": v for k, v in day_2.items()}}


def _track(engine: Engine, tracked: int) -> None:
    t = tracked_entities.c
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            number = func.generate_series(0, tracked - 1).table_valued("n").render_derived()
            conn.execute(insert(tracked_entities).from_select(
                ["network", "entity_id", "active", "added_at", "misses"],
                select(literal(NETWORK), cast(literal(FIRST_ID) + number.c.n, String), literal(True),
                       literal(DAY_1 - timedelta(days=30), UtcDateTime), literal(0)),
            ))
        else:
            for start in range(0, tracked, 10_000):
                conn.execute(insert(tracked_entities), [
                    {"network": NETWORK, "entity_id": str(FIRST_ID + n), "active": True, "misses": 0,
                     "added_at": DAY_1 - timedelta(days=30)} for n in range(start, min(tracked, start + 10_000))])
    _analyze(engine)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).where(t.network == NETWORK)) == tracked


def _analyze(engine: Engine) -> None:
    # What autovacuum does between two daily runs (a day's updates and released leases are far past
    # its thresholds): without it the bench would time a planner that has never seen the tables, and
    # day 2 would insert into indexes still holding day 1's dead rows.
    if engine.dialect.name != "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


def _plan(engine: Engine, run_id: str, run_time: datetime, tracked: int) -> dict[str, float]:
    """The warehouse half of ``socialsync.airflow.tasks.plan``, in one transaction like it."""
    timer = _Timer()
    cursor = {"as_of": run_time.isoformat(), "parts": jobs.owed_parts({"profile", "posts", "comments"})}
    with timer.total(), engine.begin() as conn:
        due = timer.step("due", lambda: planning.due_entities(conn, NETWORK, run_time - timedelta(hours=20)))
        # What today's quota admits (all of them here: the bench's usage table is empty).
        due = timer.step("quota", lambda: usage.admit_within_quota(conn, get_network(NETWORK), due, run_time,
                                                                   float(tracked) * 1_000).admitted)
        batches = planning.batch_count(len(due), MAX_BATCHES, MIN_BATCH_SIZE)
        job_ids = timer.step("open_jobs", lambda: planning.open_jobs(conn, NETWORK, run_id, due, cursor, batches,
                                                                     run_time))
        busy = timer.step("leases", lambda: planning.acquire_leases(conn, NETWORK, run_id, job_ids, due, run_time))
    assert len(due) == len(job_ids) == tracked and busy == {}, (len(due), len(job_ids), len(busy))
    return timer.seconds


def _finish(engine: Engine, run_id: str, run_time: datetime) -> None:
    """What the end of a run leaves: jobs closed, watermarks moved, leases released."""
    j = sync_jobs.c
    with engine.begin() as conn:
        conn.execute(update(sync_jobs).where(j.network == NETWORK, j.run_id == run_id)
                     .values(status="succeeded", finished_at=run_time))
        _partial(conn, run_id, run_time)
        conn.execute(update(tracked_entities).where(tracked_entities.c.network == NETWORK)
                     .values(last_synced_at=run_time))
        jobs.release_run_leases(conn, NETWORK, run_id)
    _analyze(engine)


def _partial(conn: Connection, run_id: str, run_time: datetime) -> None:
    j = sync_jobs.c
    cursor = {"as_of": run_time.isoformat(), "posts_after": "QVFIUzZA", "full_pass": True}
    conn.execute(update(sync_jobs).where(j.network == NETWORK, j.run_id == run_id, j.id % PARTIAL_EVERY == 0)
                 .values(status="partial", cursor=cursor, error_type="Partial"))


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def step(self, name: str, call: Callable[[], _T]) -> _T:
        started = time.perf_counter()
        result = call()
        self.seconds[name] = time.perf_counter() - started
        return result

    @contextmanager
    def total(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.seconds["total"] = time.perf_counter() - started  # with the commit, as plan pays it


def _report(label: str, url: str, sizes: list[int]) -> None:
    for size in sizes:
        seconds = measure_plan(url, size)
        print(f"{label:<10} {size:>9,}  day 1 {_day(seconds, 'day1')}  day 2 {_day(seconds, 'day2')}", flush=True)


def _day(seconds: dict[str, float], day: str) -> str:
    steps = ", ".join(f"{key.split(' ', 1)[1]} {value:.2f}" for key, value in seconds.items()
                      if key.startswith(day) and not key.endswith("total"))
    return f"{seconds[f'{day} total']:6.2f}s ({steps})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--sqlite-sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--postgres-url", help="an empty PostgreSQL database; default: a throwaway server")
    args = parser.parse_args(argv)
    print("plan (due_entities + open_jobs + acquire_leases, one transaction): seconds")
    with tempfile.TemporaryDirectory(prefix="socialsync-plan-") as work:
        _report("sqlite", f"sqlite:///{Path(work) / 'warehouse.db'}", args.sqlite_sizes)
    if args.postgres_url:
        _report("postgres", args.postgres_url, args.sizes)
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the suite's server helper lives in tests/
    from tests.integration.postgres import postgres_server

    with postgres_server() as url:
        _report("postgres", url, args.sizes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
