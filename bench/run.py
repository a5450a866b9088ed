"""``make bench``: request counts, timings and throughput of socialsync's sync, printed as figures.

Runs the library's sync in-process (the code the DAG's tasks call, without Airflow's overhead)
against the sandbox, on SQLite by default or on ``--warehouse-url``:

  1. first sync of every profile (walks everything)
  2. the next day with no changes (what a quiet daily run costs)
  3. after two days of changes (new posts and comments, deletions, moved counts)
  4. a first sync while 10% of Graph requests fail (throttles, 5xx, timeouts, cut bodies, resets)
  5. rebuild of every normalized table from raw pages
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from socialsync.local.inline import checksums, sync
from socialsync.networks import get_network
from socialsync.networks.base import ApiCredentials
from socialsync.networks.instagram.client import InstagramClient
from socialsync.sandbox.dataset import REFERENCE_NOW, DatasetSpec
from socialsync.sandbox.faults import FaultPlan
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.storage import schema
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.jobs import normalized_jobs
from socialsync.storage.rebuild import clear_derived
from socialsync.storage.schema import metadata
from socialsync.transform.pipeline import normalize_jobs

INSTAGRAM = get_network("instagram")
ROW = "{:<34}{:>9}{:>9}{:>10}{:>10}{:>9}{:>11}"


def _requests(sandbox: SandboxServer) -> Counter[str]:
    return Counter({k.split(":")[1]: v for k, v in sandbox.counters.items() if k.startswith("graph:")})


def _client(sandbox: SandboxServer, **options: object) -> InstagramClient:
    return InstagramClient(ApiCredentials(f"{sandbox.url}/v21.0", "sandbox-token",
                                          {"page_size": 25, **options}))


def _rows(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return sum(int(conn.scalar(select(func.count()).select_from(t)) or 0)
                   for t in (schema.profiles, schema.posts, schema.media, schema.comments))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=200)
    parser.add_argument("--posts-median", type=int, default=30)
    parser.add_argument("--comments-median", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=2.0, help="the sandbox's answer delay")
    parser.add_argument("--fault-profiles", type=int, default=50, help="profiles in the faulted scenario")
    parser.add_argument("--warehouse-url", help="default: a SQLite file in a temporary folder")
    args = parser.parse_args(argv)
    # Retries under injected faults are the point of scenario 4, not news: keep the output to figures.
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("uvicorn.error").addFilter(lambda record: "without completing response" not in record.msg)

    spec = DatasetSpec(profiles=args.profiles, posts_median=args.posts_median, comments_median=args.comments_median)
    work = Path(tempfile.mkdtemp(prefix="socialsync-bench-"))
    url = args.warehouse_url or f"sqlite:///{work / 'warehouse.db'}"
    print(f"socialsync bench: {spec.profiles} profiles, posts median {spec.posts_median}, comments median "
          f"{spec.comments_median}, sandbox latency {args.latency_ms} ms, warehouse {url.split('://')[0]}")
    print(ROW.format("scenario", "profile", "media", "comments", "requests", "seconds", "rows/s"))

    def report(name: str, spent: Counter[str], seconds: float, rows: int) -> None:
        total = sum(spent.values())
        print(ROW.format(name, spent["node"], spent["media"], spent["comments"], total, f"{seconds:.1f}",
                         f"{rows / seconds:,.0f}" if rows else "-"), flush=True)

    engine = warehouse_engine(url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    with SandboxServer(SandboxConfig(spec=spec, latency_ms=args.latency_ms)) as sandbox:
        dataset = sandbox.app.state.dataset
        ids, client = dataset.profile_ids(), _client(sandbox)

        for name, epoch, day, extra in (("1 first sync", 0, 1, {}),
                                        ("2 next day, nothing changed", 0, 2, {}),
                                        ("3 after two days of changes", 2, 4, {})):
            dataset.epoch = epoch
            before, started = _requests(sandbox), time.perf_counter()
            rows_before = _rows(engine)
            sync(engine, INSTAGRAM, client, ids, f"bench-{day}", REFERENCE_NOW + timedelta(days=day), **extra)
            report(name, _requests(sandbox) - before, time.perf_counter() - started,
                   _rows(engine) - rows_before if epoch == 0 and day == 1 else 0)
        quiet = _requests(sandbox)
        with engine.connect() as conn:
            loaded = int(conn.scalar(select(func.count()).select_from(schema.posts)) or 0)

        started = time.perf_counter()
        with engine.begin() as conn:
            jobs = normalized_jobs(conn, "instagram")
            clear_derived(conn, "instagram")
        before_rebuild = checksums(engine)
        normalize_jobs(engine, INSTAGRAM, [job_id for job_id, _ in jobs])
        rebuild_s = time.perf_counter() - started
        report("5 rebuild from raw (all jobs)", _requests(sandbox) - quiet, rebuild_s, _rows(engine))
        assert before_rebuild != checksums(engine)

    faulty = warehouse_engine(f"sqlite:///{work / 'faulty.db'}") if not args.warehouse_url else engine
    if args.warehouse_url:
        metadata.drop_all(engine)
        metadata.create_all(engine)
    faults = FaultPlan(rate=0.10, seed=5, retry_after_s=0.1, timeout_s=0.6)
    small = DatasetSpec(profiles=args.fault_profiles, posts_median=args.posts_median,
                        comments_median=args.comments_median)
    with SandboxServer(SandboxConfig(spec=small, latency_ms=args.latency_ms, faults=faults)) as sandbox:
        truth = sandbox.app.state.dataset.totals()
        client = _client(sandbox, timeout=0.3, backoff_s=0.05, max_wait_s=2, max_attempts=8, max_pause_s=0.1)
        started = time.perf_counter()
        sync(faulty, INSTAGRAM, client, sandbox.app.state.dataset.profile_ids(), "bench-faults",
             REFERENCE_NOW + timedelta(days=1))
        report(f"4 first sync, 10% faults ({small.profiles})", _requests(sandbox), time.perf_counter() - started,
               _rows(faulty))
        with faulty.connect() as conn:
            faulty_posts = int(conn.scalar(select(func.count()).select_from(schema.posts)) or 0)
    print(f"\nrows 1-3, 5: posts in the warehouse {loaded} (deleted ones are marked, not removed); a quiet day "
          "costs the profile and one media page per profile, plus the comments of posts inside the 3-day lookback")
    print(f"row 4: faults injected {dict(faults.injected)}; posts loaded {faulty_posts}, "
          f"sandbox truth {truth['posts']}")
    return 0 if faulty_posts == truth["posts"] else 1


if __name__ == "__main__":
    sys.exit(main())
