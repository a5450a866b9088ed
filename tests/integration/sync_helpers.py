"""Drive a whole sync without Airflow: the same library calls the DAG's tasks make, in order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from hashlib import sha256

from sqlalchemy import Engine, select

from socialsync.extract import runner
from socialsync.networks import get_network
from socialsync.networks.base import ApiCredentials
from socialsync.networks.instagram.client import InstagramClient
from socialsync.sandbox.dataset import REFERENCE_NOW
from socialsync.sandbox.server import SandboxServer
from socialsync.storage import jobs as bookkeeping
from socialsync.storage.schema import NORMALIZED_TABLES
from socialsync.transform.pipeline import normalize_jobs

INSTAGRAM = get_network("instagram")
SCOPE = frozenset({"profile", "posts", "comments"})


def day(n: int) -> datetime:
    """The run time ``n`` days after the sandbox's reference time (its epoch ``n`` starts then)."""
    return REFERENCE_NOW + timedelta(days=n)


def client_for(sandbox: SandboxServer, **options: object) -> InstagramClient:
    settings: dict[str, object] = {"page_size": 10, "backoff_s": 0.01, "max_wait_s": 2.0}
    settings.update(options)
    return InstagramClient(ApiCredentials(f"{sandbox.url}/v21.0", "sandbox-token", settings))


def clock() -> datetime:
    return datetime.now(UTC)


def open_batch(engine: Engine, entity_ids: list[str], run_id: str, as_of: datetime,
               **cursor: object) -> list[bookkeeping.JobRef]:
    with engine.begin() as conn:
        ids = bookkeeping.open_jobs(conn, "instagram", run_id, entity_ids, {"as_of": as_of.isoformat(), **cursor},
                                    1, clock())
        bookkeeping.acquire_leases(conn, "instagram", run_id, ids, entity_ids, clock())
        return bookkeeping.jobs_in_batch(conn, "instagram", run_id, 0)


def sync(engine: Engine, client: InstagramClient, entity_ids: list[str], run_id: str, as_of: datetime,
         **window: object) -> dict[str, int]:
    """plan -> extract posts -> extract comments -> normalize -> close, for one batch."""
    bounds = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in window.items()
              if k in ("since_id", "last_synced_at", "full_refresh") and v}
    jobs = open_batch(engine, entity_ids, run_id, as_of, **bounds)
    settings = runner.ExtractWindow(scope=SCOPE, as_of=as_of, **window)  # type: ignore[arg-type]
    posts = runner.extract_posts(engine, INSTAGRAM, client, jobs, settings, clock)
    with engine.connect() as conn:
        jobs = bookkeeping.jobs_in_batch(conn, "instagram", run_id, 0)
    comments = runner.extract_comments(engine, INSTAGRAM, client, jobs, settings, clock)
    with engine.connect() as conn:
        jobs = bookkeeping.jobs_in_batch(conn, "instagram", run_id, 0)
    live = [j for j in jobs if j.status not in ("failed", "skipped")]
    normalize_jobs(engine, INSTAGRAM, [j.id for j in live])
    with engine.begin() as conn:
        bookkeeping.mark_normalized(conn, live, clock())
        bookkeeping.close_jobs(conn, "instagram", jobs, [], as_of, clock())
        bookkeeping.release_leases(conn, "instagram", [j.id for j in jobs])
    return {"post_pages": posts.pages, "comment_pages": comments.pages,
            "comment_posts": comments.comment_posts, "quota_stopped": int(posts.quota_stopped or
                                                                           comments.quota_stopped)}


def checksums(engine: Engine) -> dict[str, str]:
    """One digest per normalized table over every column, rows in key order."""
    out = {}
    with engine.connect() as conn:
        for table in NORMALIZED_TABLES:
            if table.name == "enrichments":
                continue  # results carry the external job id and time of the enrichment run
            key = list(table.primary_key.columns)
            digest = sha256()
            for row in conn.execute(select(table).order_by(*key)):
                digest.update(repr(tuple(row)).encode())
            out[table.name] = digest.hexdigest()
    return out
