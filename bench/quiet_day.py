"""Issue 18 item 4: a quiet day at scale, through a real scheduler (``bench/run.py --only quiet``).

Day 1 (setup, not measured): ``profiles`` tracked profiles synced in-process (``socialsync.local.inline``,
the DAG's own extract / normalize / bookkeeping code) at 0 ms latency, so the warehouse holds what a
first sync leaves, watermarks included. Day 2 (measured): the same sandbox epoch (nothing changed) at
150 ms latency, ``instagram_sync``'s scheduled run (made when the DAG is unpaused) on a real api-server,
scheduler, dag-processor and triggerer with the LocalExecutor on a PostgreSQL metadata database, sized
for this machine (``settings.sized_env``). Reported: the run's wall time (start_date to end_date), the
requests the sandbox saw (and per profile), profiles/s, the task instances and their mean time, the time
from the run's start to its first extract task, each component's peak RSS and CPU seconds over the run
(its whole process session, the sandbox and PostgreSQL, sampled every 0.5 s from /proc), how busy the
machine was, and a projection to 1,000,000 profiles on 8 worker slots. With ``SOCIALSYNC_BENCH_PY_SPY=1``
py-spy samples the scheduler and the processes it starts for the run (``scheduler-stacks.txt`` in the
work directory, its path in the result).

Day 1 also enriches what it loaded, through the sandbox's ML and vision job APIs with the DAG's own
client and item queries (``enrich_everything``), so day 2 finds nothing to enrich, as a quiet day after
an enriched one does: its sensors return at once instead of deferring.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import fmean
from typing import Any

import httpx
from sqlalchemy import make_url

DAG = "instagram_sync"
ROOT = Path(__file__).resolve().parents[1]
DAY1_CHUNK = 1_000  # profiles per in-process day-1 batch (bounded memory)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    pid: int
    session: int
    comm: str
    cpu_ticks: int  # user + system, of the process itself (utime + stime)


def _procs() -> list[Proc]:
    """Every process of the machine, from /proc (every component is started in a session of its own)."""
    out: list[Proc] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
            comm = text[text.index("(") + 1:text.rindex(")")]
            rest = text.rsplit(")", 1)[1].split()
            # fields after the name: state(3) ppid(4) pgrp(5) session(6) ... utime(14) stime(15)
            out.append(Proc(int(entry), int(rest[3]), comm, int(rest[11]) + int(rest[12])))
        except (OSError, IndexError, ValueError):
            continue
    return out


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class MemorySampler:
    """Peak summed RSS and CPU seconds of each named process session, sampled every ``interval`` seconds.

    ``pids`` names single processes outside those sessions (the sandbox), ``comms`` every process of a
    name (``postgres``: the bench's server and its backends). A process's CPU is its last sample, so one
    that lived less than ``interval`` is missed: task processes live seconds.
    """

    sessions: dict[str, int]
    pids: dict[str, int] = field(default_factory=dict)
    comms: dict[str, str] = field(default_factory=dict)
    interval: float = 0.5
    peaks_mb: dict[str, float] = field(default_factory=dict)
    _ticks: dict[tuple[str, int], int] = field(default_factory=dict)
    _base: dict[tuple[str, int], int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _start: tuple[int, int] = (0, 0)
    _machine: tuple[float, float] = (0.0, 0.0)  # (busy, all) CPU seconds of the whole machine since the mark

    def _groups(self, procs: list[Proc]) -> dict[str, list[Proc]]:
        groups: dict[str, list[Proc]] = {name: [] for name in (*self.sessions, *self.pids, *self.comms)}
        session_of = {sid: name for name, sid in self.sessions.items()}
        pid_of = {pid: name for name, pid in self.pids.items()}
        comm_of = {comm: name for name, comm in self.comms.items()}
        for proc in procs:
            name = session_of.get(proc.session) or pid_of.get(proc.pid) or comm_of.get(proc.comm)
            if name:
                groups[name].append(proc)
        return groups

    def _sample(self) -> None:
        for name, procs in self._groups(_procs()).items():
            total = sum(_rss_kb(p.pid) for p in procs) / 1024
            self.peaks_mb[name] = max(self.peaks_mb.get(name, 0.0), total)
            with self._lock:
                for p in procs:
                    self._ticks[(name, p.pid)] = p.cpu_ticks

    def _run(self) -> None:
        self._start = _machine_ticks()
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)
        self._sample()
        end = _machine_ticks()
        self._machine = ((end[0] - self._start[0]) / CLOCK_TICKS, (end[1] - self._start[1]) / CLOCK_TICKS)

    def mark(self) -> None:
        """CPU is counted from here on (the run's start, not the components' own start)."""
        self._sample()
        with self._lock:
            self._base = dict(self._ticks)
        self._start = _machine_ticks()

    @property
    def cpu_s(self) -> dict[str, float]:
        out: dict[str, float] = {}
        with self._lock:
            for key, ticks in self._ticks.items():
                out[key[0]] = out.get(key[0], 0.0) + (ticks - self._base.get(key, 0)) / CLOCK_TICKS
        return out

    @property
    def machine_busy(self) -> float:
        """The share of the machine's CPU time (all cores) that was not idle while sampled."""
        busy, total = self._machine
        return busy / total if total else 0.0

    @contextmanager
    def running(self) -> Iterator[MemorySampler]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=5)


def _machine_ticks() -> tuple[int, int]:
    """(busy, all) jiffies of the machine since boot, from /proc/stat's first line."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def _py_spy(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    """With ``SOCIALSYNC_BENCH_PY_SPY=1``: py-spy samples the scheduler and every process it starts (the
    LocalExecutor's workers and their task processes) for the run; ``bench/profile_e2e.py``'s summary reads
    the stacks."""
    if os.environ.get("SOCIALSYNC_BENCH_PY_SPY") != "1":
        return None
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    return subprocess.Popen([spy, "record", "--rate", "50", "--format", "raw", "--nonblocking", "--gil",
                             "--subprocesses", "--pid", str(pid), "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _psycopg_url(url: str) -> str:
    """The metadata database's SQLAlchemy URL with the driver the repo installs (psycopg2)."""
    return make_url(url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


def day_one(warehouse_url: str, sandbox: Any, ids: list[str]) -> float:
    """Tracks ``ids`` and runs their first full sync in-process; seconds."""
    from run import client_for  # type: ignore[import-not-found]

    from socialsync.local import inline
    from socialsync.networks import get_network
    from socialsync.sandbox.dataset import REFERENCE_NOW
    from socialsync.storage.engine import warehouse_engine
    from socialsync.storage.planning import track_entities

    engine = warehouse_engine(warehouse_url)
    with engine.begin() as conn:
        track_entities(conn, "instagram", ids, datetime.now(UTC))
    from tests.sandbox_connections import APP_USER

    client = client_for(sandbox, ig_user_id=APP_USER)  # largest pages by default
    started = time.perf_counter()
    try:
        for n, start in enumerate(range(0, len(ids), DAY1_CHUNK)):
            inline.sync(engine, get_network("instagram"), client, ids[start:start + DAY1_CHUNK],
                        f"bench-quiet-day1-{n}", REFERENCE_NOW + timedelta(days=1))
        enrich_everything(engine, sandbox.url)
    finally:
        client.close()
        engine.dispose()
    return time.perf_counter() - started


def enrich_everything(engine: Any, sandbox_url: str, chunk: int = 10_000, timeout_s: float = 600) -> dict[str, int]:
    """Every Instagram text and media item's ML / vision result, as the DAG's submit_enrichment and load
    get and store them (same item queries, client and store), a job of ``chunk`` items at a time."""
    from sqlalchemy import select

    from socialsync.enrich.client import JobApiClient
    from socialsync.enrich.items import ML, VISION, media_items, store_results, text_items
    from socialsync.storage.schema import profiles

    stored = {ML: 0, VISION: 0}
    with engine.connect() as conn:
        profile_ids = list(conn.scalars(select(profiles.c.profile_id).where(profiles.c.network == "instagram")))
    for service, path, items_of in ((ML, "ml/v1", text_items), (VISION, "vision/v1", media_items)):
        api = JobApiClient(f"{sandbox_url}/{path}", {"X-Api-Key": "sandbox-key"})
        asked: set[str] = set()
        try:
            while True:
                with engine.connect() as conn:
                    items = [i for i in items_of(conn, "instagram", profile_ids, chunk) if i["id"] not in asked]
                if not items:  # all done, or what is left the service answered without a result for
                    break
                asked.update(i["id"] for i in items)
                job_id = api.submit(items)
                deadline = time.monotonic() + timeout_s
                while (state := api.state(job_id)).status not in ("done", "failed"):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{service} job {job_id} not done in {timeout_s:.0f} s")
                    time.sleep(0.5)
                if state.status != "done" or state.result is None:
                    raise RuntimeError(f"{service} job {job_id} ended {state.status}: day 1 cannot be enriched")
                with engine.begin() as conn:
                    got = store_results(conn, "instagram", service, job_id, state.result.items, datetime.now(UTC))
                if not got:
                    raise RuntimeError(f"{service} job {job_id} stored nothing of {len(items)} item(s)")
                stored[service] += got
        finally:
            api.close()
    return stored


def _all_tis(api: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = api.get(f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances",
                       params={"limit": 100, "offset": offset}).json()
        out += page["task_instances"]
        offset += 100
        if offset >= page["total_entries"]:
            return out


def _upstream(api: httpx.Client) -> dict[str, list[str]]:
    """Each task's direct upstream task ids, from the DAG's own task list."""
    tasks = api.get(f"/api/v2/dags/{DAG}/tasks").json()["tasks"]
    out: dict[str, list[str]] = {t["task_id"]: [] for t in tasks}
    for t in tasks:
        for down in t.get("downstream_task_ids") or []:
            out.setdefault(down, []).append(t["task_id"])
    return out


def _gaps(tis: list[dict[str, Any]], upstream: dict[str, list[str]]) -> dict[str, float]:
    """Where a task instance's time goes before it runs, averaged: from the end of the last of its upstream
    task instances (the same map index of a mapped group, all of an unmapped upstream) to being queued (the
    scheduler), and from queued to started (the executor starting its process)."""
    ends: dict[str, dict[int, datetime]] = {}
    for ti in tis:
        if (e := _time(ti.get("end_date"))) is not None:
            ends.setdefault(ti["task_id"], {})[int(ti.get("map_index", -1))] = e
    to_queue: list[float] = []
    to_start: list[float] = []
    for ti in tis:
        queued, started = _time(ti.get("queued_when")), _time(ti.get("start_date"))
        index = int(ti.get("map_index", -1))
        before = [e for up in upstream.get(ti["task_id"], []) for i, e in ends.get(up, {}).items()
                  if index < 0 or i < 0 or i == index]
        if queued and started and before:
            to_queue.append((queued - max(before)).total_seconds())
            to_start.append((started - queued).total_seconds())
    return {"upstream_end_to_queued_s": fmean(to_queue) if to_queue else 0.0,
            "queued_to_start_s": fmean(to_start) if to_start else 0.0, "counted": len(to_queue)}


def measure_quiet_day(postgres: str, profiles: int = 10_000, latency_ms: float = 150.0,
                      workdir: Path | None = None, timeout_s: float = 1800) -> dict[str, Any]:
    """Day 1 in-process, day 2 through the real stack; the figures of day 2."""
    import tempfile

    from run import _free_port, fresh_database, sandbox_process  # type: ignore[import-not-found]

    from socialsync.local.airflow import api_env, local_airflow, prepare_metadata
    from socialsync.local.settings import airflow_env, load_settings, pools, sized_env, this_machine
    from socialsync.sandbox.dataset import Dataset, DatasetSpec
    from socialsync.sandbox.instagram_dataset import InstagramDataset
    from tests.sandbox_connections import sandbox_connections

    # Small profiles: ~3 posts, ~1 comment each, so 10,000 of them take a first sync of minutes.
    spec = DatasetSpec(profiles=profiles, posts_median=3, posts_max=20, comments_median=1, comments_max=5)
    ids = InstagramDataset(Dataset(spec)).tracked_ids()
    warehouse = fresh_database(postgres, "quiet_warehouse")
    metadata = _psycopg_url(fresh_database(postgres, "quiet_airflow"))
    work = workdir or Path(tempfile.mkdtemp(prefix="socialsync-bench-quiet-"))
    result: dict[str, Any] = {"profiles": profiles, "spec": "posts_median 3, comments_median 1"}
    with sandbox_process(spec, 0) as sandbox:
        result["day1_s"] = day_one(warehouse, sandbox, ids)
        result["day1_requests"] = sandbox.stats()["accepted"]
    port = _free_port()
    sizing = sized_env(this_machine())
    with sandbox_process(spec, latency_ms) as sandbox:
        # The connection a deployment has: the client's largest pages (the helper's test default is 10).
        conns = sandbox_connections(sandbox.url, warehouse, page_size=100)
        env = api_env(airflow_env(work / "airflow", ROOT / "dags", conns), port)
        env.update(sizing)
        env.update({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
                    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
                    "AIRFLOW__SOCIALSYNC__ENRICH_POLL_SECONDS": "2"})
        prepare_metadata(env, pools(load_settings(ROOT / "airflow_settings.yaml")))
        startup = time.perf_counter()
        with local_airflow(env, port, work / "logs") as running:
            sampler = MemorySampler({name: p.pid for name, p in running.items()}, pids={"sandbox": sandbox.pid},
                                    comms={"postgres": "postgres"})
            with sampler.running():
                base = f"http://127.0.0.1:{port}"
                token = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": "admin"},
                                   timeout=30).json()["access_token"]
                with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}) as api:
                    deadline = time.monotonic() + 240
                    while api.get(f"/api/v2/dags/{DAG}").status_code != 200:
                        if time.monotonic() > deadline:
                            raise TimeoutError("instagram_sync was not parsed")
                        time.sleep(1)
                    result["startup_s"] = time.perf_counter() - startup
                    before = sandbox.stats()["accepted"]
                    sampler.mark()
                    spy = _py_spy(running["scheduler"].pid, work / "scheduler-stacks.txt")
                    # The scheduled daily run, as a deployment gets it: unpausing makes the latest interval's
                    # run (catchup is off). A manual run beside it would share the slots with it.
                    api.patch(f"/api/v2/dags/{DAG}", json={"is_paused": False}).raise_for_status()
                    deadline = time.monotonic() + 120
                    while not (runs := api.get(f"/api/v2/dags/{DAG}/dagRuns").json()["dag_runs"]):
                        if time.monotonic() > deadline:
                            raise TimeoutError("no scheduled run was made within 120 s of unpausing")
                        time.sleep(1)
                    run_id = runs[0]["dag_run_id"]
                    deadline = time.monotonic() + timeout_s
                    while True:
                        state = api.get(f"/api/v2/dags/{DAG}/dagRuns/{run_id}").json()
                        if state["state"] in ("success", "failed"):
                            break
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"run {run_id} not finished in {timeout_s:.0f} s")
                        time.sleep(2)
                    result["requests"] = sandbox.stats()["accepted"] - before
                    if spy is not None:
                        spy.send_signal(signal.SIGINT)
                        spy.wait(timeout=60)
                        result["py_spy_stacks"] = str(work / "scheduler-stacks.txt")
                    tis = _all_tis(api, run_id)
                    upstream = _upstream(api)
        result["peaks_mb"] = dict(sampler.peaks_mb)
        result["cpu_s"] = sampler.cpu_s
        result["machine_busy"] = sampler.machine_busy
    result.update(_run_figures(state, tis, profiles, int(sizing.get("AIRFLOW__CORE__PARALLELISM", "32"))))
    result["gaps"] = _gaps(tis, upstream)
    result["state"] = state["state"]
    result["sizing"] = sizing
    return result


def _run_figures(run: dict[str, Any], tis: list[dict[str, Any]], profiles: int, slots: int) -> dict[str, Any]:
    start, end = _time(run["start_date"]), _time(run["end_date"])
    assert start and end
    wall = (end - start).total_seconds()
    spans: dict[str, list[float]] = {}
    first_extract = None
    busy = 0.0
    for ti in tis:
        s, e = _time(ti.get("start_date")), _time(ti.get("end_date"))
        if not (s and e):
            continue
        name = ti["task_id"].rsplit(".", 1)[-1]
        spans.setdefault(name, []).append((e - s).total_seconds())
        busy += (e - s).total_seconds()
        if name.startswith("extract") and (first_extract is None or s < first_extract):
            first_extract = s
    per_task = {k: {"n": len(v), "sum_s": sum(v), "mean_s": sum(v) / len(v)} for k, v in spans.items()}
    work = sum(per_task.get(k, {}).get("sum_s", 0.0) for k in ("extract_posts", "extract_comments", "normalize"))
    return {"wall_s": wall, "profiles_per_s": profiles / wall if wall else 0.0,
            "first_extract_s": (first_extract - start).total_seconds() if first_extract else None,
            "task_instances": len(tis), "tasks": per_task, "slot_s_per_profile": work / profiles,
            "all_slot_s_per_profile": busy / profiles, "parallelism": busy / wall if wall else 0.0,
            "slots": slots}
