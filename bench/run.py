"""``make bench``: issue 7's targets measured as ratios in one run, printed as one markdown table."""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, make_url, select, text

from socialsync.local import inline
from socialsync.networks import get_network
from socialsync.networks.base import ApiCredentials, NetworkClient
from socialsync.sandbox.dataset import REFERENCE_NOW, Dataset, DatasetSpec
from socialsync.sandbox.instagram_dataset import InstagramDataset
from socialsync.storage import schema
from socialsync.storage.engine import warehouse_engine

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TOKEN = "sandbox-token"  # the sandbox's own token, not a secret
SECTIONS = ("e2e", "extract", "load", "plan", "memory", "api", "quiet")
ABOUT = """\
Every Graph API answer comes from the sandbox running as its own process (so its CPU is not the
bench's), every warehouse is a fresh database on one PostgreSQL server the bench starts (or
--postgres-url). Measured, each against what it is compared with:

  e2e      the whole sync (plan, extract, normalize, close) vs a dlt rest_api pipeline
           (bench/dlt_reference.py) over the same data, at 0 and 30 ms API latency
  extract  Graph requests/s of one extract (posts then comments) at 0, 50 and 150 ms latency vs
           the 1/latency line of one request at a time; then with a rate budget that binds, the
           sandbox refusing (429) what goes past it
  load     rows/s of the staged load vs a bare COPY + upsert (bench/load_rate.py)
  plan     seconds of plan with 10,000 / 100,000 / 1,000,000 tracked profiles (bench/plan_scale.py)
  memory   peak RSS of the extract and of the normalize of one profile, each in its own process,
           at 1,000 and at 20,000 posts
  quiet    a quiet second day of 10,000 profiles (SOCIALSYNC_BENCH_QUIET_PROFILES) at 150 ms through a
           real api-server, scheduler, dag-processor and triggerer with the LocalExecutor (bench/quiet_day.py)

--quick leaves out plan at 1,000,000 profiles and the quiet day of 10,000 profiles through a real
scheduler (the longest parts; `make bench BENCH_ARGS=--quick`);
--only picks sections. The table goes to stdout, progress to stderr.
"""

# The end-to-end dataset: about the size of the earlier measurement (20 profiles, ~530 posts,
# ~18,000 comments, ~700 requests).
E2E_SPEC = DatasetSpec(profiles=20, posts_median=16, comments_median=18)
# Many small profiles: enough independent work to keep any number of requests in flight, few
# enough requests (~600) that one request at a time at 150 ms still ends in a minute and a half.
EXTRACT_SPEC = DatasetSpec(profiles=64, posts_median=6, comments_median=3)
BUDGET_PER_S = 40  # the binding run's budget: well under what one extract does at 0 ms
BUDGET_PROFILES = 24  # a subset: ~250 requests, six seconds at the budget
MEMORY_POSTS = (1_000, 20_000)
PLAN_SIZES = (10_000, 100_000, 1_000_000)
LOAD_ROWS = 200_000


# --- the sandbox as a separate process --------------------------------------------------------------

class SandboxDoor:
    """ASGI wrapper the bench puts in front of the sandbox: when each Graph request arrived and how it was
    answered, and with ``limit_per_s`` a server-side rate limit (429 + Retry-After past it, as an API
    enforcing the budget would answer).

    ``GET /_bench/stats`` reports it; the sandbox's own ``/_sandbox/stats`` recomputes the dataset's
    totals on every call, too costly to poll.
    """

    def __init__(self, app: Any, limit_per_s: int | None = None) -> None:
        self.app = app
        self.limit = limit_per_s
        self.arrivals: list[float] = []  # every Graph request, refused ones too: what the client sent
        self.accepted = 0
        self.refused = 0
        self.statuses: Counter[int] = Counter()
        self._window: deque[float] = deque()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        from starlette.responses import JSONResponse

        if scope["type"] != "http" or scope["path"].startswith("/_"):
            if scope.get("path") == "/_bench/stats":
                await JSONResponse(self.stats())(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        now = time.monotonic()
        self.arrivals.append(now)
        if self.limit:
            while self._window and self._window[0] <= now - 1.0:
                self._window.popleft()
            if len(self._window) >= self.limit:
                self.refused += 1
                self.statuses[429] += 1
                body = {"error": {"message": "(#4) Application request limit reached", "type": "OAuthException",
                                  "code": 4}}
                await JSONResponse(body, status_code=429, headers={"Retry-After": "1"})(scope, receive, send)
                return
            self._window.append(now)
        self.accepted += 1

        async def counted(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.statuses[message["status"]] += 1
            await send(message)

        await self.app(scope, receive, counted)

    def stats(self) -> dict[str, Any]:
        times, peak, start = self.arrivals, 0, 0
        for end, moment in enumerate(times):  # most requests sent in any one second
            while moment - times[start] >= 1.0:
                start += 1
            peak = max(peak, end - start + 1)
        return {"accepted": self.accepted, "refused": self.refused, "first": times[0] if times else None,
                "last": times[-1] if times else None, "peak_1s": peak,
                "statuses": {str(k): v for k, v in self.statuses.items()}}


def serve_sandbox(config: dict[str, Any]) -> None:
    """The child process: the sandbox app behind a ``SandboxDoor`` on the given port."""
    import uvicorn

    from socialsync.sandbox.server import SandboxConfig, build_app

    app = build_app(SandboxConfig(spec=DatasetSpec(**config["spec"]), latency_ms=config["latency_ms"]))
    uvicorn.run(SandboxDoor(app, config.get("limit_per_s")), host="127.0.0.1", port=config["port"],
                log_level="error", access_log=False)


@dataclass
class Sandbox:
    url: str
    spec: DatasetSpec
    pid: int = 0  # the server's process

    def stats(self) -> dict[str, Any]:
        return _get_json(f"{self.url}/_bench/stats")

    def graph_counters(self) -> dict[str, int]:
        """The sandbox's own counters (throttle and quota answers among them)."""
        return {k: v for k, v in _get_json(f"{self.url}/_sandbox/stats")["requests"].items()}


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=60) as answer:
        result: dict[str, Any] = json.load(answer)
        return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sandbox_process(spec: DatasetSpec, latency_ms: float = 0.0, limit_per_s: int | None = None,
                    **spec_overrides: Any) -> Iterator[Sandbox]:
    port = _free_port()
    config = {"spec": {**asdict(spec), **spec_overrides}, "latency_ms": latency_ms, "limit_per_s": limit_per_s,
              "port": port}
    child = subprocess.Popen([sys.executable, __file__, "--child", json.dumps({"kind": "sandbox", **config})])
    sandbox = Sandbox(f"http://127.0.0.1:{port}", spec, child.pid)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                sandbox.stats()
                break
            except OSError:
                if child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sandbox process did not start") from None
                time.sleep(0.1)
        yield sandbox
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


# --- PostgreSQL ------------------------------------------------------------------------------------

def fresh_database(server_url: str, name: str) -> str:
    """An empty database ``name`` on the bench's server: every measurement starts from nothing."""
    url = make_url(server_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def client_for(sandbox: Sandbox, **options: Any) -> NetworkClient:
    """The client a deployment gets from its connection (defaults but for what ``options`` sets)."""
    return get_network("instagram").connect(ApiCredentials(f"{sandbox.url}/v21.0", TOKEN, dict(options)))


def loaded(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        counts = {t.name: int(conn.scalar(select(func.count()).select_from(t)) or 0)
                  for t in (schema.profiles, schema.posts, schema.comments)}
    engine.dispose()
    return counts


@contextmanager
def extract_only() -> Iterator[list[int]]:
    """``inline.sync`` without its normalize step (the list it yields says whether one was skipped).

    For what measures the extract alone: the DAG runs normalize as a task of its own, in a process of its own.
    """
    from socialsync.transform.pipeline import NormalizeReport

    skipped: list[int] = []

    def skip(*_: Any, **__: Any) -> NormalizeReport:
        skipped.append(1)
        return NormalizeReport()

    original = inline.normalize_jobs
    inline.normalize_jobs = skip
    try:
        yield skipped
    finally:
        inline.normalize_jobs = original


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far, every thread included (as the OS counts them)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def normalize_cpu(steps: dict[str, float]) -> Iterator[None]:
    """Splits a sync's CPU between normalize and the rest: ``steps`` gets "normalize and load" (the CPU
    of the threads while they normalized a job: it stages and merges the rows, during the extract or
    after it) and "extract" (the process's CPU for the rest: plan, extract, close)."""
    from socialsync.transform import pipeline

    original = pipeline._normalize_job
    spent = [0.0]
    lock = threading.Lock()

    def timed(*args: Any, **kwargs: Any) -> Any:
        before = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                spent[0] += time.thread_time() - before

    started = cpu_seconds()
    pipeline._normalize_job = timed
    try:
        yield
    finally:
        pipeline._normalize_job = original
        steps["normalize and load"] = spent[0]
        steps["extract"] = cpu_seconds() - started - spent[0]


def run_sync(url: str, sandbox: Sandbox, ids: list[str], run_id: str, *, normalize: bool = True,
             cpu: dict[str, float] | None = None, **options: Any) -> float:
    """One inline sync into ``url`` (with ``normalize=False``, all of it but normalize); seconds. With
    ``cpu``, the CPU seconds of its steps go there (see ``normalize_cpu``)."""
    engine = warehouse_engine(url)
    client = client_for(sandbox, **options)
    try:
        with ExitStack() as stack:
            if not normalize:
                stack.enter_context(extract_only())
            elif cpu is not None:
                stack.enter_context(normalize_cpu(cpu))
            started = time.perf_counter()
            inline.sync(engine, get_network("instagram"), client, ids, run_id, REFERENCE_NOW + timedelta(days=1))
            return time.perf_counter() - started
    finally:
        client.close()
        engine.dispose()


# --- the table -------------------------------------------------------------------------------------

@dataclass
class Row:
    section: str
    what: str
    measured: str
    compared: str = ""
    ratio: str = ""
    target: str = ""
    verdict: str = ""  # pass | miss | "" (reported, no target)


@dataclass
class Bench:
    args: argparse.Namespace
    postgres: str
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(f"  {row.section}: {row.what}: {row.measured} | {row.compared} | {row.ratio} | {row.verdict}",
              file=sys.stderr, flush=True)


def verdict(ok: bool) -> str:
    return "pass" if ok else "**miss**"


def table(rows: list[Row]) -> str:
    head = ("", "measured", "compared with", "ratio", "target", "")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += [f"| {r.what} | {r.measured} | {r.compared} | {r.ratio} | {r.target} | {r.verdict} |" for r in rows]
    return "\n".join(lines)


# --- end to end --------------------------------------------------------------------------------------

def bench_e2e(bench: Bench) -> None:
    try:
        from dlt_reference import run_reference
    except ImportError as exc:
        reference: Callable[..., Any] | None = None
        missing = f"dlt not available ({exc.name}): `pip install -e '.[bench]'`"
    else:
        reference, missing = run_reference, ""
    # The accounts the token manages: both pipelines read their own edges (business discovery is ours only).
    truth, ids, with_replies = owned_truth(E2E_SPEC)
    data_rows = truth["posts"] + with_replies  # the rows both load: posts, comments and replies
    work = tempfile.mkdtemp(prefix="socialsync-bench-dlt-")
    cpu: dict[str, tuple[dict[str, float], int, dict[str, float], int]] = {}
    try:
        for latency in (0, 30):
            ours_cpu: dict[str, float] = {}
            with sandbox_process(E2E_SPEC, latency) as sandbox:
                url = fresh_database(bench.postgres, f"e2e_socialsync_{latency}")
                seconds = run_sync(url, sandbox, ids, f"bench-e2e-{latency}", cpu=ours_cpu)
                stats = sandbox.stats()
            got = loaded(url)
            complete = got["posts"] >= truth["posts"] and got["comments"] == with_replies
            # Where the time went: the span of requests is the extract, the rest plan, normalize and close.
            ours = (f"{seconds:.1f} s ({stats['last'] - stats['first']:.1f} s of it requesting), "
                    f"{stats['accepted']} req") + ("" if complete else
                                                          f" (loaded {got['posts']}/{truth['posts']} posts, "
                                                          f"{got['comments']}/{with_replies} comments and replies)")
            target = "≥ 2x" if latency == 30 else "≥ 1.5x"
            what = (f"end to end, {latency} ms latency ({truth['posts']} posts, {with_replies:,} comments and "
                    "replies): dlt's time ÷ socialsync's")
            if reference is None:
                bench.add(Row("e2e", what, ours, missing, "", target, ""))
                continue
            with sandbox_process(E2E_SPEC, latency) as sandbox:
                url = fresh_database(bench.postgres, f"e2e_dlt_{latency}")
                run = reference(f"{sandbox.url}/v21.0", TOKEN, ids, url, dataset="instagram",
                                pipelines_dir=os.path.join(work, str(latency)))
                theirs = sandbox.stats()["accepted"]
            replies = run.rows.get("comments__replies__data", 0)
            same = (run.rows.get("media") == truth["posts"] and run.rows.get("comments") == truth["comments"]
                    and run.rows.get("comments", 0) + replies == with_replies)
            ratio = run.seconds / seconds
            bench.add(Row("e2e", what, ours, f"dlt rest_api, parallelized, largest pages: {run.seconds:.1f} s, "
                          f"{theirs} req" + ("" if same else f" (loaded {run.rows})"), f"{ratio:.2f}x", target,
                          verdict(ratio >= (2 if latency == 30 else 1.5) and complete)))
            cpu[str(latency)] = (ours_cpu, stats["accepted"], run.cpu, theirs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if "0" not in cpu:
        return
    # CPU per unit of work, from the 0 ms runs (where nothing waits): extract per 1,000 requests each
    # side sent, normalize and load per 10,000 rows of the same data.
    ours_cpu, ours_requests, dlt_cpu, dlt_requests = cpu["0"]
    for step, unit, ours_per, dlt_per in (
            ("extract", "1,000 requests", ours_cpu["extract"] * 1000 / ours_requests,
             dlt_cpu["extract"] * 1000 / dlt_requests),
            ("normalize and load", "10,000 rows", ours_cpu["normalize and load"] * 10_000 / data_rows,
             dlt_cpu["normalize and load"] * 10_000 / data_rows)):
        ratio = ours_per / dlt_per if dlt_per else float("inf")
        bench.add(Row("e2e", f"CPU (user + sys) of {step} per {unit}, 0 ms latency: socialsync's ÷ dlt's",
                      f"{ours_per:.2f} s ({ours_cpu[step]:.1f} s)", f"dlt {dlt_per:.2f} s ({dlt_cpu[step]:.1f} s)",
                      f"{ratio:.2f}x", "≤ 0.5x", verdict(ratio <= 0.5)))


# --- extract -----------------------------------------------------------------------------------------

def extract_rate(stats: dict[str, Any]) -> float:
    """Requests/s between the extract's first and last request, as the sandbox saw them arrive."""
    span = (stats["last"] or 0) - (stats["first"] or 0)
    return (stats["accepted"] + stats["refused"] - 1) / span if span > 0 else 0.0


def owned_truth(spec: DatasetSpec) -> tuple[dict[str, int], list[str], int]:
    """The managed accounts' posts and top-level comments, their ids, and their comments with replies."""
    dataset = Dataset(spec)
    ig = InstagramDataset(dataset)
    owned = ig.managed_profiles()
    posts = [(p, j) for p in owned for j in dataset.posts_newest_first(p)]
    truth = {"posts": len(posts), "comments": sum(dataset.comment_count(p, j) for p, j in posts)}
    return truth, [dataset.profile_id(p) for p in owned], sum(ig.comments_count(p, j) for p, j in posts)


def bench_extract(bench: Bench) -> None:
    _, ids, _ = owned_truth(EXTRACT_SPEC)
    rates: dict[int, float] = {}
    for latency in (0, 50, 150):
        with sandbox_process(EXTRACT_SPEC, latency) as sandbox:
            url = fresh_database(bench.postgres, f"extract_{latency}")
            run_sync(url, sandbox, ids, f"bench-extract-{latency}", normalize=False)
            stats = sandbox.stats()
        rates[latency] = rate = extract_rate(stats)
        line = 1000 / latency if latency else None
        bench.add(Row("extract", f"extract requests/s, {latency} ms latency ({len(ids)} profiles)",
                      f"{rate:,.1f} req/s ({stats['accepted']} req)",
                      f"1/latency {line:,.1f} req/s" if line else "1/latency: unbounded",
                      f"{rate / line:.1f}x" if line else "",
                      "≥ 100 req/s" if latency == 150 else "",
                      verdict(rate >= 100) if latency == 150 else ""))

    subset = ids[:BUDGET_PROFILES]
    with sandbox_process(EXTRACT_SPEC, 0, limit_per_s=BUDGET_PER_S) as sandbox:
        url = fresh_database(bench.postgres, "extract_budget")
        run_sync(url, sandbox, subset, "bench-extract-budget", normalize=False,
                 max_requests_per_second=BUDGET_PER_S)
        stats = sandbox.stats()
        counters = sandbox.graph_counters()
    # Everything the API answered "slow down" to: the door's 429s, and the sandbox's own throttle and
    # quota answers (none unless its quota or faults are on).
    throttled = stats["refused"] + sum(v for k, v in counters.items()
                                       if k in ("graph:quota_refused", "fault:throttle_429", "fault:throttle_graph"))
    answered = stats["accepted"] + stats["refused"]
    share = throttled / answered if answered else 0.0
    rate = extract_rate(stats)
    binding = rates.get(0, float("inf")) > BUDGET_PER_S * 1.2
    bench.add(Row("extract", f"extract with a {BUDGET_PER_S} req/s budget, 0 ms latency ({len(subset)} profiles)"
                  + ("" if binding else " (budget did not bind)"),
                  f"{rate:,.1f} req/s, busiest second {stats['peak_1s']} sent, {throttled}/{answered} answered 429",
                  f"budget {BUDGET_PER_S} req/s, enforced by the sandbox", f"{share:.1%} throttled",
                  "< 1% throttled", verdict(share < 0.01)))


# --- load and plan (other helpers' measurements, each in a child process with a time limit) -------------

def call_child(payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Runs ``--child payload`` and returns the JSON it prints last; ``{"error": ...}`` when it fails."""
    try:
        done = subprocess.run([sys.executable, __file__, "--child", json.dumps(payload)], capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail[:200]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _helper(name: str, attribute: str) -> Callable[..., dict[str, float]]:
    module = __import__(name)
    function: Callable[..., dict[str, float]] = getattr(module, attribute)
    return function


def _number(value: Any, unit: str = "") -> str:
    if isinstance(value, float) and abs(value) < 100:
        return f"{value:,.2f}{unit}"
    return f"{value:,.0f}{unit}" if isinstance(value, int | float) else f"{value}{unit}"


def _figures(values: dict[str, Any], unit: str = "") -> str:
    return ", ".join(f"{k} {_number(v, unit)}" for k, v in values.items())


def bench_load(bench: Bench) -> None:
    what = f"load rows/s, staged vs bare COPY + upsert ({LOAD_ROWS:,} rows)"
    url = fresh_database(bench.postgres, "load_rate")
    result = call_child({"kind": "load", "url": url, "rows": LOAD_ROWS}, timeout=300)
    if "error" in result:
        bench.add(Row("load", what, f"not available: {result['error']}", target="≥ 0.8x"))
        return
    staged = next((v for k, v in result.items() if "staged" in k), None)
    bare = next((v for k, v in result.items() if "bare" in k), None)
    ratio = result.get("ratio")  # the median of paired rounds
    if ratio is None and staged and bare:
        ratio = staged / bare
    spread = (f" (rounds {result['ratio_low']:.2f} to {result['ratio_high']:.2f})"
              if "ratio_low" in result and "ratio_high" in result else "")
    rest = {k: v for k, v in result.items() if not any(w in k for w in ("staged", "bare", "ratio", "rows"))}
    measured = (f"{_number(staged)} rows/s" if staged is not None else _figures(result)) + \
        (f" ({_figures(rest)})" if rest and staged is not None else "")
    bench.add(Row("load", what, measured,
                  f"bare COPY + upsert {_number(bare)} rows/s" if bare is not None else "bare COPY + upsert",
                  f"{ratio:.2f}x{spread}" if ratio is not None else "?", "≥ 0.8x",
                  verdict(ratio is not None and ratio >= 0.8)))


def bench_plan(bench: Bench) -> None:
    for tracked in PLAN_SIZES:
        what = f"plan, {tracked:,} tracked profiles"
        target = "< 60 s" if tracked == 1_000_000 else ""
        if tracked == 1_000_000 and bench.args.quick:
            bench.add(Row("plan", what, "skipped (--quick)", target=target))
            continue
        url = fresh_database(bench.postgres, f"plan_{tracked}")
        result = call_child({"kind": "plan", "url": url, "tracked": tracked}, timeout=600)
        if "error" in result:
            bench.add(Row("plan", what, f"not available: {result['error']}", target=target,
                          verdict="**miss**" if target and "timed out" in result["error"] else ""))
            continue
        # plan_scale gives each day's total and its steps: the totals say it, the steps are for its own report.
        totals = {k.replace(" total", ""): v for k, v in result.items() if k.endswith("total")} or result
        slowest = max((float(v) for v in totals.values()), default=0.0)
        bench.add(Row("plan", what, _figures(totals, " s"), "", "", target,
                      verdict(slowest < 60) if target else ""))


# --- memory ------------------------------------------------------------------------------------------

def memory_spec(posts: int) -> tuple[DatasetSpec, str]:
    """A dataset with a profile of exactly ``posts`` posts; and that profile's id."""
    spec = DatasetSpec(profiles=12, posts_median=posts, posts_max=posts, comments_max=3)
    dataset = Dataset(spec)
    p = next(p for p in InstagramDataset(dataset).managed_profiles() if dataset.base_post_count(p) == posts)
    return spec, dataset.profile_id(p)


def bench_memory(bench: Bench) -> None:
    peaks: dict[str, dict[int, dict[str, Any]]] = {"extract": {}, "normalize": {}}
    for posts in MEMORY_POSTS:
        spec, profile = memory_spec(posts)
        url = fresh_database(bench.postgres, f"memory_{posts}")
        # The sandbox scales a lognormal by comments_median: a fraction (where the hint says int) leaves
        # about one post in 200 with a comment or two, so the 20,000 posts take seconds, not minutes.
        with sandbox_process(spec, comments_median=0.05) as sandbox:
            for phase in ("extract", "normalize"):
                peaks[phase][posts] = call_child({"kind": "memory", "phase": phase, "url": url,
                                                  "sandbox": sandbox.url, "profile": profile}, timeout=300)
    small, large = MEMORY_POSTS
    for phase, by_size in peaks.items():
        what = f"peak memory, {phase} of one profile, {small:,} vs {large:,} posts"
        if any("error" in r for r in by_size.values()):
            errors = "; ".join(f"{n:,} posts: {r['error']}" for n, r in by_size.items() if "error" in r)
            bench.add(Row("memory", what, f"not available: {errors}", target="≤ 1.10x",
                          verdict="**miss**" if "timed out" in errors else ""))
            continue
        a, b = by_size[small], by_size[large]
        ratio = b["peak_mb"] / a["peak_mb"]
        label = "" if a.get("phase") == phase else f" (measured: {a.get('phase')})"
        bench.add(Row("memory", what + label,
                      f"{a['peak_mb']:.0f} → {b['peak_mb']:.0f} MB peak RSS "
                      f"(+{a['peak_mb'] - a['base_mb']:.0f} → +{b['peak_mb'] - b['base_mb']:.0f} MB over imports, "
                      f"{a['seconds']:.0f} → {b['seconds']:.0f} s)",
                      f"{small:,} posts", f"{ratio:.2f}x", "≤ 1.10x", verdict(ratio <= 1.10)))


def _status_mb(key: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, in MB.

    Not ``getrusage``'s ``ru_maxrss``: Linux carries it over from the process that forked this one, so
    a child of the bench would report at least the bench's own RSS.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
    return 0.0


def memory_child(config: dict[str, Any]) -> dict[str, Any]:
    """One task of one profile's sync, alone in this process: its peak RSS."""
    from socialsync.transform import pipeline

    engine = warehouse_engine(config["url"])
    network = get_network("instagram")
    base = _status_mb("VmRSS")
    started = time.perf_counter()
    phase = config["phase"]
    if phase == "extract":  # the next child normalizes what this one fetched
        client = network.connect(ApiCredentials(f"{config['sandbox']}/v21.0", TOKEN, {"page_size": 25}))
        with extract_only() as skipped:
            inline.sync(engine, network, client, [config["profile"]], "bench-memory",
                        REFERENCE_NOW + timedelta(days=1))
        client.close()
        phase = "extract" if skipped else "extract + normalize"
    else:
        with engine.connect() as conn:
            job_ids = [int(i) for i in conn.scalars(select(schema.sync_jobs.c.id))]
        pipeline.normalize_jobs(engine, network, job_ids)
    peak = _status_mb("VmHWM")
    return {"phase": phase, "peak_mb": peak, "base_mb": base, "seconds": time.perf_counter() - started}


# --- a quiet day at scale, through a real scheduler (issue 18 item 4) ------------------------------------

QUIET_PROFILES = int(os.environ.get("SOCIALSYNC_BENCH_QUIET_PROFILES", "10000"))
QUIET_LATENCY_MS = 150
PROJECTED_PROFILES, PROJECTED_SLOTS = 1_000_000, 8


def bench_api(bench: Bench) -> None:
    """The sync API under 32 concurrent readers while a sync writes (tests/api_load.py), on PostgreSQL and
    on the embedded SQLite warehouse: requests/s, p50 and p99 latency, and any error, repeat or skip."""
    from tests.api_load import under_load

    for backend in ("postgresql", "sqlite"):
        if backend == "sqlite":
            url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='socialsync-api-')) / 'warehouse.db'}"
        else:
            url = fresh_database(bench.postgres, "api_load")
        result, _ = under_load(url, readers=32)
        bench.add(Row("api", f"sync API, 32 readers paging while a sync writes, {backend}",
                      f"{result.requests / result.seconds:.0f} requests/s, p50 {result.quantile(0.5) * 1000:.0f} ms, "
                      f"p99 {result.quantile(0.99) * 1000:.0f} ms ({result.requests:,} requests)",
                      target="0 errors, repeats or skips",
                      verdict=verdict(not result.errors and set(result.statuses) == {200})))


def bench_quiet(bench: Bench) -> None:
    from quiet_day import measure_quiet_day

    n = QUIET_PROFILES
    if bench.args.quick:
        bench.add(Row("quiet", f"quiet second day, {n:,} profiles through a real scheduler", "skipped (--quick)",
                      target="≥ 50 profiles/s on 2 cores"))
        return
    r = measure_quiet_day(bench.postgres, n, QUIET_LATENCY_MS)
    where = f"{n:,} profiles, {QUIET_LATENCY_MS} ms, LocalExecutor, {r['slots']} slots"
    print(f"  quiet: {json.dumps(r, default=str)}", file=sys.stderr, flush=True)
    rate = r["profiles_per_s"]
    bench.add(Row("quiet", f"quiet second day, {where} (day 1 in-process {r['day1_s']:.0f} s, Airflow start "
                  f"{r['startup_s']:.0f} s, run {r['state']})",
                  f"{r['wall_s']:.0f} s wall, {rate:.1f} profiles/s, {r['task_instances']} task instances",
                  "", "", "≥ 50 profiles/s on 2 cores", verdict(rate >= 50 and r["state"] == "success")))
    bench.add(Row("quiet", f"quiet day requests, {where}",
                  f"{r['requests']:,} req, {r['requests'] / n:.2f} req/profile"))
    bench.add(Row("quiet", "quiet day: run start to first extract task",
                  f"{r['first_extract_s']:.1f} s" if r["first_extract_s"] is not None else "no extract ran"))
    gaps = r["gaps"]
    bench.add(Row("quiet", "quiet day: a task instance's wait, mean of each with an upstream",
                  f"{gaps['upstream_end_to_queued_s']:.1f} s from its upstream's end to queued, "
                  f"{gaps['queued_to_start_s']:.1f} s from queued to started ({gaps['counted']} task instances)"))
    bench.add(Row("quiet", "quiet day: peak RSS per component (process session)",
                  ", ".join(f"{k} {v:,.0f} MB" for k, v in r["peaks_mb"].items())))
    # Where the machine's cores went during the run (each component's process session, the sandbox, and
    # PostgreSQL serving both the warehouse and Airflow's metadata).
    cpu = sorted(r["cpu_s"].items(), key=lambda kv: -kv[1])
    bench.add(Row("quiet", "quiet day: CPU seconds per component during the run (user + sys)",
                  ", ".join(f"{k} {v:,.0f} s" for k, v in cpu) + f"; {1000 * sum(r['cpu_s'].values()) / n:.0f} "
                  f"CPU-ms/profile in all; machine {r['machine_busy']:.0%} busy"))
    # Slot-seconds every task instance held, per profile, spread over 8 slots kept busy; and at the slot use
    # this run reached (busy slot-seconds / wall / slots).
    per_profile = r["all_slot_s_per_profile"]
    use = r["parallelism"] / r["slots"] if r["slots"] else 1.0
    full = PROJECTED_PROFILES * per_profile / PROJECTED_SLOTS / 3600
    tasks = ", ".join(f"{k} {v['n']} x {v['mean_s']:.1f} s" for k, v in r["tasks"].items())
    bench.add(Row("quiet", f"projection to {PROJECTED_PROFILES:,} profiles on {PROJECTED_SLOTS} worker slots",
                  f"{full:.1f} h = {PROJECTED_PROFILES:,} x {per_profile:.3f} slot-s/profile / {PROJECTED_SLOTS} "
                  f"slots busy; {full / max(use, 1e-6):.1f} h at this run's slot use ({use:.0%}); tasks: {tasks}"))


# --- children ----------------------------------------------------------------------------------------

def child(payload: dict[str, Any]) -> None:
    kind = payload["kind"]
    if kind == "sandbox":
        serve_sandbox(payload)
        return
    logging.basicConfig(level=logging.ERROR)
    if kind == "memory":
        result = memory_child(payload)
    elif kind == "load":
        result = _helper("load_rate", "measure_load")(payload["url"], payload["rows"])
    elif kind == "plan":
        result = _helper("plan_scale", "measure_plan")(payload["url"], payload["tracked"])
    else:
        raise SystemExit(f"unknown child {kind}")
    print(json.dumps(result), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip(), epilog=ABOUT,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="leave out plan at 1,000,000 tracked profiles and the quiet day")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    parser.add_argument("--postgres-url", help="a server the bench may create databases on "
                        "(default: a throwaway one, as the test suite starts)")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return 0
    # The throttled run logs every 429 it is answered: the table says how many there were.
    logging.basicConfig(level=logging.ERROR)
    sys.path.insert(1, str(ROOT))  # tests/integration/postgres.py starts the server, as for the suite
    started = time.perf_counter()
    with ExitStack() as stack:
        if args.postgres_url:
            postgres = args.postgres_url
        else:
            from tests.integration.postgres import postgres_server

            postgres = stack.enter_context(postgres_server())
        bench = Bench(args, postgres)
        print(f"socialsync bench: {os.cpu_count()} cores, sections {' '.join(args.only)}"
              f"{' (quick)' if args.quick else ''}", file=sys.stderr, flush=True)
        steps: dict[str, Callable[[Bench], None]] = {"e2e": bench_e2e, "extract": bench_extract,
                                                     "load": bench_load, "plan": bench_plan,
                                                     "memory": bench_memory, "api": bench_api,
                                                     "quiet": bench_quiet}
        for section in args.only:
            try:
                steps[section](bench)
            except Exception as exc:  # one broken section must not take the others' figures with it
                logging.getLogger("bench").exception("section %s failed", section)
                bench.add(Row(section, section, f"failed: {type(exc).__name__}: {str(exc)[:160]}",
                              verdict="**miss**"))
    minutes = (time.perf_counter() - started) / 60
    output = table(bench.rows) + f"\n\n{minutes:.1f} min on {os.cpu_count()} cores"
    print("\n" + output)
    if args.out:
        args.out.write_text(output + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
