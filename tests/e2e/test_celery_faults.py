"""Faults on the production topology (loopback Celery stack): real processes, real signals, real restarts.

One stack for the module, one sync run per fault, in order: a Celery worker killed mid-extract, the
broker restarted, the scheduler and then the triggerer killed, the warehouse restarted during normalize
and during load. Each run must end ``success`` with the warehouse equal to the sandbox's truth and no
lease or unfinished job left behind, and each fault must be recovered from within ``RECOVERY_S`` of the
component being back (of the kill, for a dead worker), with the stack's recovery settings
(``socialsync.local.settings.RECOVERY``, the same in ``docker-compose.yaml``).

The warehouse is a PostgreSQL server of its own (Airflow's metadata and Celery's results on another), so
that restarting it is the warehouse failing over, not Airflow's database. A recording proxy in front of
the sandbox counts each page asked, to prove what a killed extract fetched again.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from sqlalchemy import Engine, func, select

from socialsync.local.settings import RECOVERY
from socialsync.sandbox.dataset import Dataset
from socialsync.sandbox.instagram_dataset import InstagramDataset
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.jobs import jobs_in_batch
from socialsync.storage.planning import track_entities
from socialsync.storage.schema import api_usage, entity_leases, posts, profiles, raw_pages, sync_jobs, tracked_entities
from tests.e2e.celery import DAG, CeleryStack, celery_stack, database
from tests.e2e.redis import RedisServer, redis_instance
from tests.e2e.stack import wait
from tests.hostile import HostileProxy, RequestInfo
from tests.integration.conftest import SMALL
from tests.integration.postgres import PostgresInstance, postgres_instance, postgres_server
from tests.integration.sync_helpers import clock, graph_entity
from tests.integration.tiktok_truth import assert_tiktok_matches
from tests.integration.truth import assert_warehouse_matches
from tests.integration.youtube_truth import assert_youtube_matches
from tests.sandbox_connections import APP_USER, sandbox_connections

pytestmark = pytest.mark.timeout(900)

# 30 profiles make two batches (tasks.MIN_BATCH_SIZE is 25), one for each worker. Pages of 3 posts, 4
# requests in flight and 200 ms a request keep an extract running for long enough to be killed in it.
SPEC = dataclasses.replace(SMALL, profiles=30, posts_median=20, comments_median=3, posts_max=40)
IG = InstagramDataset(Dataset(SPEC))
# Tracked as a deployment would, but for the public accounts the daily mutations rename: those fail (by
# design, tracked by their old @username until an operator tracks the new one), which is not under test.
PROFILES = [p for p in range(SPEC.profiles) if not (IG.public_only(p) and IG.renamed_at(p) is not None)]
LATENCY_MS = 200
LATER_LATENCY_MS = 50  # after the worker's kill, no fault needs an extract that long
RECOVERY_S = 120
RUN_TIMEOUT_S = 420
UNFINISHED = ("pending", "running")
WEEK = 7
WEEK_FAULT_RATE = 0.05
WEEK_QUOTA = {"quota_units": 1_000_000}
WEEK_CONN_ID = "instagram_week"
WEEK_ACCOUNTS = range(12)  # of YouTube's and TikTok's (TikTok's account 0 has the video past the comment cap)
WEEK_WORKER_SLOTS = 4
SYNCS = {"instagram": "instagram_sync", "youtube": "youtube_sync", "tiktok": "tiktok_sync"}
GROWTH_MIB = 64  # what a component's memory may gain from day 2 to day 7 (day 1 warms its caches up)


@dataclasses.dataclass
class Faults:
    stack: CeleryStack
    warehouse: PostgresInstance
    broker: RedisServer
    proxy: HostileProxy
    sandbox: SandboxServer
    engine: Engine
    epochs: list[int] = dataclasses.field(default_factory=list)  # the sandbox days a run has synced

    @property
    def dataset(self) -> Dataset:
        return self.stack.dataset

    def next_day(self, **control: float) -> int:
        """The sandbox moves to its next day (its daily mutations), with ``control``'s settings."""
        epoch = self.dataset.epoch + 1
        httpx.post(f"{self.sandbox.url}/_sandbox/control", json={"epoch": epoch, **control}).raise_for_status()
        return epoch

    def trigger_all(self) -> str:
        """A manual run of every tracked profile, refreshed in full: a complete pass, so that the warehouse
        must equal the day's whole truth (the run's clock is today's, not the sandbox's day, so an
        incremental run's lookback would leave older posts' counts as they were)."""
        with self.engine.connect() as conn:
            tracked = list(conn.scalars(select(tracked_entities.c.entity_id)
                                        .where(tracked_entities.c.network == "instagram")))
        return self.stack.trigger({"entity_ids": sorted(tracked), "full_refresh": True})

    def check_run(self, run_id: str) -> dict[str, Any]:
        """The run ended ``success``, the warehouse equals the truth, nothing is left held or unfinished."""
        run = self.stack.finished(run_id, RUN_TIMEOUT_S)
        assert run["state"] == "success", f"{run}; see {self.stack.logs}"
        jobs = len(PROFILES)
        assert f"socialsync instagram: {jobs} job(s): {jobs} succeeded" in (run["note"] or ""), run["note"]
        self.epochs.append(self.dataset.epoch)
        assert_warehouse_matches(self.engine, self.dataset, enrich=True, story_epochs=self.epochs,
                                 profiles=PROFILES)
        with self.engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(entity_leases)) == 0
            assert conn.scalar(select(func.count()).select_from(sync_jobs)
                               .where(sync_jobs.c.status.in_(UNFINISHED))) == 0
        self.assert_no_overlapping_tries(run_id)
        return run

    def assert_no_overlapping_tries(self, run_id: str) -> None:
        """No task ran twice at once: the tries of each task instance follow one another."""
        for ti in self.stack.task_instances(run_id):
            path = f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/{ti['map_index']}/tries"
            tries = sorted(self.stack.api.get(path).json()["task_instances"], key=lambda t: t["try_number"])
            for before, after in itertools.pairwise(tries):
                if before["end_date"] and after["start_date"]:
                    assert _at(before["end_date"]) <= _at(after["start_date"]), (ti["task_id"], tries)


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faults]:
    tmp = tmp_path_factory.mktemp("celery-faults")
    with ExitStack() as resources:
        warehouse = resources.enter_context(postgres_instance())
        metadata_url = database(resources.enter_context(postgres_server()), "airflow")
        broker = resources.enter_context(redis_instance())
        sandbox = resources.enter_context(SandboxServer(SandboxConfig(spec=SPEC, latency_ms=LATENCY_MS,
                                                                      job_seconds=8.0)))
        proxy = resources.enter_context(HostileProxy(sandbox.url))
        engine = warehouse_engine(warehouse.url, pool_pre_ping=True)  # the test's reads outlive a restart
        resources.callback(engine.dispose)
        stack = resources.enter_context(celery_stack(
            tmp, dataset=sandbox.app.state.dataset, sandbox_url=proxy.url, warehouse=engine,
            warehouse_url=warehouse.url, metadata_url=metadata_url, broker_url=broker.url,
            # Airflow hands Celery no more task instances than the two workers run at once (one each).
            extra_env={"AIRFLOW__CORE__PARALLELISM": "2", **_without_recovery(), **_week_connection(proxy.url)},
            instagram_extra={"page_size": 3, "max_in_flight": 4}, tracked=[IG.tracked_id(p) for p in PROFILES],
            # The week syncs every profile of every network each day, seven days in one day of the quotas' clocks.
            youtube_extra=WEEK_QUOTA, tiktok_extra={**WEEK_QUOTA, "quota_records": 100_000_000}))
        yield Faults(stack, warehouse, broker, proxy, sandbox, engine)


def _week_connection(sandbox_url: str) -> dict[str, str]:
    """The week reads Instagram as a deployment would, with the connection's defaults (the largest pages, 32
    requests in flight), not with the small pages that keep the fault tests' extracts long enough to hit;
    and waits at most 2 s (not 30) when a throttle's usage header says 100%, which 5% faults say often."""
    connection = json.loads(sandbox_connections(sandbox_url, "sqlite:///unused.db")["AIRFLOW_CONN_INSTAGRAM_API"])
    connection["extra"] = {"ig_user_id": APP_USER, "max_pause_s": 2}
    return {f"AIRFLOW_CONN_{WEEK_CONN_ID.upper()}": json.dumps(connection)}


def _without_recovery() -> dict[str, str]:
    """``SOCIALSYNC_FAULTS_RECOVERY=airflow-defaults``: the stack with Airflow's own defaults instead of
    ``RECOVERY``, to see what the settings fix (the worker and broker faults then recover too late)."""
    if os.environ.get("SOCIALSYNC_FAULTS_RECOVERY") != "airflow-defaults":
        return {}
    return {key: AIRFLOW_DEFAULTS[key] for key in RECOVERY}


AIRFLOW_DEFAULTS = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "300",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "10",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "120",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "300",
}


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def _poll(what: str, check: Callable[[], Any], logs: Path, timeout: float = 240, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(every)
    return wait(what, check, logs, timeout=1)  # fails with the components' log tails


def _refetched(faults: Faults) -> Counter[str]:
    """Graph pages asked more than once, by profile: a comments page names its post (whose owner the warehouse
    knows), business discovery its account's username, the rest their profile's node."""
    with faults.engine.connect() as conn:
        owner: dict[str, str] = dict(conn.execute(select(posts.c.post_id, posts.c.profile_id)).tuples().all())
        owner |= {"@" + name: pid for pid, name in conn.execute(select(profiles.c.profile_id, profiles.c.username))}
    first: dict[tuple[str, tuple[tuple[str, str], ...]], RequestInfo] = {}
    again: Counter[str] = Counter()
    for request in faults.proxy.requests:
        if not request.path.startswith("/v21.0/"):  # the ML and vision jobs are polled, not paged
            continue
        # A page asked again is the same path and parameters, however ordered or encoded: a first pass
        # follows the API's paging.next links, a retry builds its request from the committed cursor.
        params = parse_qsl(request.query, keep_blank_values=True)
        key = (request.path, tuple(sorted((k, v) for k, v in params if k != "access_token")))
        if key in first:
            entity = graph_entity(request)
            again[owner.get(entity, entity)] += 1
        first.setdefault(key, request)
    return again


def test_a_worker_killed_mid_extract_is_retried_on_the_other(faults: Faults) -> None:
    stack = faults.stack
    assert stack.api.patch(f"/api/v2/dags/{DAG}", json={"is_paused": False}).status_code == 200
    run_id = _poll("the daily run", lambda: (runs := stack.runs()) and runs[0]["dag_run_id"], stack.logs)
    # Mid-pass: a batch's extract_posts has stored some of its pages of posts, not all.
    victim = _poll("an extract_posts to be running", lambda: stack.running_task(run_id, "batch.extract_posts"),
                   stack.logs)
    with faults.engine.connect() as conn:
        batch = [job.id for job in jobs_in_batch(conn, "instagram", run_id, victim["map_index"])]
    pages = select(func.count()).select_from(raw_pages).where(raw_pages.c.kind == "posts",
                                                              raw_pages.c.job_id.in_(batch))
    with faults.engine.connect() as conn:
        stored_at_kill = _poll("pages of posts stored", lambda: (n := conn.scalar(pages) or 0) >= 4 and n, stack.logs,
                               every=0.05)
    worker = victim["hostname"]
    stack.kill(worker)
    killed_at = datetime.now(UTC)
    other = next(name for name in stack.workers if name != worker)

    try:
        run = faults.check_run(run_id)
    finally:  # back for the next tests, whatever this one finds
        since = stack.log_size(worker)
        stack.start(worker)
        wait(f"{worker} to be ready again", lambda: stack.ready(worker, since), stack.logs, timeout=120)
    retried = next(ti for ti in stack.task_instances(run_id)
                   if (ti["task_id"], ti["map_index"]) == (victim["task_id"], victim["map_index"]))
    assert retried["try_number"] == victim["try_number"] + 1 and retried["hostname"] == other, retried
    recovered_s = (_at(retried["start_date"]) - killed_at).total_seconds()
    took = (_at(run["end_date"]) - _at(run["start_date"])).total_seconds()
    print(f"\nworker {worker} killed in {victim['task_id']}[{victim['map_index']}]: retried on {other} "
          f"{recovered_s:.0f} s later; the run took {took:.0f} s")
    assert recovered_s <= RECOVERY_S
    with faults.engine.connect() as conn:
        stored = int(conn.scalar(pages) or 0)
    print(f"killed with {stored_at_kill} of the batch's {stored} pages of posts stored")
    assert stored_at_kill < stored, "the kill came after the batch's last page of posts"

    # Each profile the killed task had in flight asked again at most the one page it was waiting for.
    again = _refetched(faults)
    print(f"pages asked again, by profile: {dict(again)}")
    assert all(n <= 1 for n in again.values()), again


STARTED = frozenset({"running", "success", "deferred", "up_for_reschedule", "failed", "up_for_retry"})


def _queued(stack: CeleryStack, run_id: str) -> set[tuple[str, int]]:
    return {(ti["task_id"], ti["map_index"]) for ti in stack.task_instances(run_id) if ti["state"] == "queued"}


def _until_started(stack: CeleryStack, run_id: str, keys: set[tuple[str, int]], since: float) -> float:
    """Seconds from ``since`` (time.monotonic) until every task instance of ``keys`` has started."""
    waiting = set(keys)

    def started() -> bool:
        states = {(ti["task_id"], ti["map_index"]): ti["state"] for ti in stack.task_instances(run_id)}
        waiting.difference_update(key for key in list(waiting) if states.get(key) in STARTED)
        return not waiting
    _poll(f"{waiting} to start", started, stack.logs, timeout=RUN_TIMEOUT_S, every=1)
    return time.monotonic() - since


def test_the_broker_restarted_mid_run(faults: Faults) -> None:
    """Redis stopped for 20 s with a task instance's message on it, then started empty (in memory only, so
    the message is gone). To have a message waiting on the broker at that moment, whatever the race with
    the workers, both workers are frozen (SIGSTOP) until the scheduler has queued the next task."""
    stack = faults.stack
    faults.next_day(latency_ms=LATER_LATENCY_MS)
    run_id = faults.trigger_all()
    _poll("an extract to be running", lambda: stack.running_task(run_id, "batch.extract"), stack.logs)
    for name in stack.workers:
        stack.freeze(name)
    try:
        lost = _poll("a task instance queued", lambda: _queued(stack, run_id), stack.logs, timeout=RUN_TIMEOUT_S)
        faults.broker.stop()
    finally:
        for name in stack.workers:
            stack.freeze(name, frozen=False)
    time.sleep(20)
    faults.broker.start()
    back = time.monotonic()
    recovered_s = _until_started(stack, run_id, lost, back)
    faults.check_run(run_id)
    print(f"\nbroker back: {sorted(lost)}, queued when it stopped, started {recovered_s:.0f} s after it was back")
    assert recovered_s <= RECOVERY_S


def test_the_scheduler_and_then_the_triggerer_killed_mid_run(faults: Faults) -> None:
    stack = faults.stack
    faults.next_day(latency_ms=LATER_LATENCY_MS)
    run_id = faults.trigger_all()
    _poll("an extract to be running", lambda: stack.running_task(run_id, "batch.extract"), stack.logs)
    before = {(ti["task_id"], ti["map_index"]) for ti in stack.task_instances(run_id) if ti["start_date"]}
    stack.kill("scheduler")
    stack.start("scheduler")  # redeployed at once
    restarted = time.monotonic()

    def next_start() -> bool:  # a task instance the new scheduler started
        return any(ti["start_date"] and (ti["task_id"], ti["map_index"]) not in before
                   for ti in stack.task_instances(run_id))
    _poll("a task instance started by the new scheduler", next_start, stack.logs, timeout=RUN_TIMEOUT_S, every=1)
    scheduler_s = time.monotonic() - restarted

    # The enrichment sensors defer to the triggerer while the sandbox's jobs run (job_seconds).
    sensor = _poll("an enrichment sensor to defer", lambda: next(
        (ti for ti in stack.task_instances(run_id) if ti["task_id"].startswith("batch.wait_")
         and ti["state"] == "deferred"), None), stack.logs, timeout=RUN_TIMEOUT_S)
    stack.kill("triggerer")
    stack.start("triggerer")
    restarted = time.monotonic()
    triggerer_s = _until_resumed(stack, run_id, (sensor["task_id"], sensor["map_index"]), restarted)

    faults.check_run(run_id)  # with the enrichments loaded (the truth's ML and vision rows)
    print(f"\nscheduler killed and started again: the next task started {scheduler_s:.0f} s later; "
          f"triggerer killed with {sensor['task_id']}[{sensor['map_index']}] deferred: it resumed {triggerer_s:.0f} s "
          "after the triggerer's restart")
    assert scheduler_s <= RECOVERY_S and triggerer_s <= RECOVERY_S


def _until_resumed(stack: CeleryStack, run_id: str, key: tuple[str, int], since: float) -> float:
    def resumed() -> bool:
        state = next(ti["state"] for ti in stack.task_instances(run_id) if (ti["task_id"], ti["map_index"]) == key)
        return state != "deferred"
    _poll(f"{key} to resume", resumed, stack.logs, timeout=RUN_TIMEOUT_S, every=1)
    return time.monotonic() - since


def test_the_warehouse_restarted_during_normalize_and_during_load(faults: Faults) -> None:
    """``pg_ctl restart -m immediate`` (every connection dropped, no checkpoint) under a running task."""
    stack = faults.stack
    faults.next_day(latency_ms=LATER_LATENCY_MS)
    run_id = faults.trigger_all()
    hit: list[tuple[str, int]] = []
    for task in ("batch.normalize", "batch.load"):
        def running(task: str = task) -> dict[str, Any] | None:
            return stack.running_task(run_id, task)
        ti = _poll(f"{task} to be running", running, stack.logs, timeout=RUN_TIMEOUT_S, every=0.1)
        faults.warehouse.restart("immediate")
        hit.append((ti["task_id"], ti["map_index"]))
    faults.check_run(run_id)  # no row lost or twice: every table equals the truth
    tries = {key: ti["try_number"] for ti in stack.task_instances(run_id)
             if (key := (ti["task_id"], ti["map_index"])) in hit}
    print(f"\nwarehouse restarted under {hit}: tries {tries}")



def test_a_week_of_days_for_every_network_with_faults(faults: Faults) -> None:
    """Seven sandbox days in a row, each with its daily mutations (new posts and comments, edits, deletions,
    renames, new stories) and 5% of API requests failing (throttles, 5xx, stalls, cut bodies, resets,
    repeated items): every day a run of each network's DAG, the three at once on the two workers. Day 1's
    YouTube and TikTok runs are their DAGs' scheduled runs (their first sync); every other run is a manual
    complete pass (``full_refresh``), so that each day the warehouse must hold the day's whole truth, a
    deletion marked on the day it happened. After each day: no lease, unfinished job or reserved quota unit
    is left (``api_usage`` equals the calls the sandbox received, network by network), and over the week no
    component's memory grows."""
    stack, sandbox = faults.stack, faults.sandbox
    youtube, tiktok = sandbox.app.state.youtube.data, sandbox.app.state.tiktok.data
    ids = {"instagram": [IG.tracked_id(p) for p in PROFILES],
           "youtube": [youtube.channel_id(p) for p in WEEK_ACCOUNTS],
           "tiktok": [tiktok.user(p).username for p in WEEK_ACCOUNTS]}
    with faults.engine.begin() as conn:
        for network in ("youtube", "tiktok"):
            track_entities(conn, network, ids[network], clock())
    # A week's load is three DAGs at once: the deployment gives the workers 4 slots each (scheduler included).
    stack.scale(WEEK_WORKER_SLOTS)
    # The extracts need no slowing down here, nor the enrichment jobs (the fault tests above defer on them).
    _control(faults, latency_ms=0, job_seconds=0.2, fault_rate=WEEK_FAULT_RATE)
    memory: list[dict[str, float]] = []
    timings: list[float] = []
    for day in range(1, WEEK + 1):
        started = time.monotonic()
        faults.next_day()
        before = _metered(faults)
        runs: dict[str, str] = {}
        if day == 1:
            for dag in SYNCS.values():
                assert stack.api.patch(f"/api/v2/dags/{dag}", json={"is_paused": False}).status_code == 200
            for network in ("youtube", "tiktok"):
                runs[network] = _poll(f"{network}'s scheduled run", lambda dag=SYNCS[network]: next(
                    (r["dag_run_id"] for r in stack.runs(dag) if r["run_type"] == "scheduled"), None), stack.logs)
        for network, dag in SYNCS.items():
            if network not in runs:
                named: list[Any] = ids[network] if network != "instagram" else [
                    {"id": entity, "conn_id": WEEK_CONN_ID} for entity in ids[network]]
                runs[network] = stack.trigger({"entity_ids": named, "full_refresh": True,
                                               "batch_size": len(ids[network])}, dag=dag)
        for network in ("youtube", "tiktok"):
            run = stack.finished(runs[network], RUN_TIMEOUT_S, dag=SYNCS[network])
            assert run["state"] == "success", f"day {day}: {run}; see {stack.logs}"
            with faults.engine.connect() as conn:
                jobs = conn.execute(select(sync_jobs.c.entity_id, sync_jobs.c.status, sync_jobs.c.error_message)
                                    .where(sync_jobs.c.network == network, sync_jobs.c.run_id == runs[network])).all()
            statuses = {job.entity_id: job.status for job in jobs}
            # Every job succeeded but TikTok's account whose busiest video has more comments than the API
            # serves (1,000): that one is partial by design, whatever the faults.
            capped = {tiktok.user(busiest[0]).username} if network == "tiktok" and (
                busiest := tiktok.busiest_video()) else set()
            assert statuses == {e: "partial" if e in capped else "succeeded" for e in ids[network]}, (
                day, {job.entity_id: job.error_message for job in jobs if job.status != "succeeded"})
        faults.check_run(runs["instagram"])  # the Instagram truth, no lease, no unfinished job of any network
        assert_youtube_matches(faults.engine, youtube, channels=WEEK_ACCOUNTS)
        assert_tiktok_matches(faults.engine, tiktok, past_cap=day > 1, accounts=WEEK_ACCOUNTS)
        spent, received = _spent(faults), _metered(faults)
        assert {n: spent[n] - before.spent[n] for n in SYNCS} == {n: received.calls[n] - before.calls[n]
                                                                  for n in SYNCS}, f"day {day}"
        assert spent["tiktok:records"] - before.spent["tiktok:records"] == received.records - before.records
        memory.append(stack.memory())
        timings.append(time.monotonic() - started)
    injected = {k: v for k, v in sandbox.counters.items() if "fault:" in k}
    print(f"\na week: days took {[round(t) for t in timings]} s; faults injected {injected}")
    print("memory (MiB) on day 1, 2 and 7: " + ", ".join(
        f"{name} {memory[0][name]:.0f}/{memory[1][name]:.0f}/{memory[-1][name]:.0f}" for name in memory[0]))
    assert sum(injected.values()) >= 50, injected
    grown = {name: round(memory[-1][name] - memory[1][name]) for name in memory[1]
             if memory[-1][name] - memory[1][name] > GROWTH_MIB}
    assert not grown, f"memory grew from day 2 to day 7 (MiB): {grown}"


def _control(faults: Faults, **settings: float) -> None:
    httpx.post(f"{faults.sandbox.url}/_sandbox/control", json=settings).raise_for_status()


@dataclasses.dataclass(frozen=True)
class Metered:
    calls: dict[str, int]  # the calls each network's API received (each a unit of its quota, however it ended)
    records: int  # the records TikTok's answers held, those of answers cut short aside
    spent: dict[str, float]  # what api_usage holds, network by network (and TikTok's records)


def _metered(faults: Faults) -> Metered:
    counters = faults.sandbox.counters
    calls = {"instagram": counters["received:graph"], "youtube": counters["received:youtube"],
             "tiktok": counters["received:tiktok"]}
    return Metered(calls, counters["tiktok:records"] - counters["tiktok:records_cut"], _spent(faults))


def _spent(faults: Faults) -> dict[str, float]:
    with faults.engine.connect() as conn:
        rows = conn.execute(select(api_usage.c.network, func.sum(api_usage.c.units), func.sum(api_usage.c.records))
                            .group_by(api_usage.c.network)).all()
    spent = {network: 0.0 for network in SYNCS} | {network: float(units) for network, units, _ in rows}
    return spent | {"tiktok:records": next((float(r) for n, _, r in rows if n == "tiktok"), 0.0)}
