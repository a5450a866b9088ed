"""Task bodies of a network's sync DAG: each reads its batch from the warehouse, returns counts."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowException

from socialsync.airflow.connections import api_credentials, job_api, warehouse
from socialsync.airflow.params import SCOPE_PARTS
from socialsync.enrich.client import JobApiError
from socialsync.enrich.items import ML, VISION, media_items, store_results, text_items
from socialsync.extract import runner
from socialsync.networks import get_network
from socialsync.storage import jobs as bookkeeping
from socialsync.storage import planning
from socialsync.storage.rebuild import clear_derived
from socialsync.transform.pipeline import normalize_jobs

log = logging.getLogger(__name__)

MAX_BATCHES = 128  # far below core.max_map_length (1024), whatever the number of profiles
MIN_BATCH_SIZE = 25
MAX_ENRICH_ITEMS = 10_000  # per batch and service; the rest waits for the next run
ML_CONN_ID, VISION_CONN_ID = "ml_api", "vision_api"
SUBMIT_TASK_ID = "submit_enrichment"


def _utc(value: Any) -> datetime:
    return datetime.fromtimestamp(value.timestamp(), tz=UTC)


def _run() -> tuple[str, dict[str, Any], datetime]:
    """The run's id, params and the time it stands for (its data interval's end, else run_after)."""
    context = get_current_context()
    dag_run = context["dag_run"]
    end = context.get("data_interval_end") or dag_run.run_after
    return dag_run.run_id, dict(context["params"]), _utc(end)


def _scope(network_name: str, params: dict[str, Any]) -> frozenset[str]:
    return SCOPE_PARTS[params["scope"]] & get_network(network_name).scopes


def _window(network_name: str, params: dict[str, Any], run_time: datetime) -> runner.ExtractWindow:
    since = params.get("last_synced_at")
    return runner.ExtractWindow(
        scope=_scope(network_name, params),
        as_of=run_time,
        lookback=timedelta(days=int(params.get("lookback_days", 3))),
        since_id=params.get("since_id"),
        until_id=params.get("until_id"),
        last_synced_at=datetime.fromisoformat(since.replace("Z", "+00:00")) if since else None,
        full_refresh=bool(params.get("full_refresh")),
    )


def _now() -> datetime:
    return datetime.now(UTC)


def plan(network_name: str) -> list[int]:
    """Pick the profiles, open their jobs, cut batches; returns the batch numbers to map over."""
    network = get_network(network_name)
    run_id, params, run_time = _run()
    window = _window(network_name, params, run_time)  # a malformed bound fails here, before any write
    requested = SCOPE_PARTS[params["scope"]]
    engine = warehouse()
    with engine.begin() as conn:
        replanned = planning.entities_of_run(conn, network.name, run_id)
        if params.get("entity_ids"):
            entity_ids = list(dict.fromkeys(params["entity_ids"]))
            added = planning.track_entities(conn, network.name, entity_ids, run_time)
            log.info("conf names %s profile(s), %s newly tracked", len(entity_ids), added)
        elif replanned:
            entity_ids = replanned  # a cleared run does again what it did, whatever is due now
            log.info("run %s was planned before: syncing its %s profile(s) again", run_id, len(entity_ids))
        else:
            synced_before = run_time - timedelta(hours=20)  # due once a day, with slack for late runs
            entity_ids = planning.due_entities(conn, network.name, synced_before)
            log.info("%s tracked profile(s) are due", len(entity_ids))
        if params.get("batch_size"):
            batches = planning.batch_count(len(entity_ids), MAX_BATCHES, int(params["batch_size"]))
        else:
            batches = planning.batch_count(len(entity_ids), MAX_BATCHES, MIN_BATCH_SIZE)
        cursor: dict[str, Any] = {k: params[k] for k in ("since_id", "until_id", "last_synced_at", "full_refresh")
                                  if params.get(k)}
        cursor["as_of"] = run_time.isoformat()
        now = _now()
        job_ids = planning.open_jobs(conn, network.name, run_id, entity_ids, cursor, batches, now)
        busy = planning.acquire_leases(conn, network.name, run_id, job_ids, entity_ids, now)
        for entity_id, reason in busy.items():
            log.warning("skipping %s: %s", entity_id, reason)
        for part in sorted(requested - network.scopes):
            for job_id, entity_id in zip(job_ids, entity_ids, strict=True):
                bookkeeping.record_skipped_task(conn, job_id, part, entity_id,
                                                f"{network.name} does not expose {part}")
    log.info("opened %s job(s) in %s batch(es); scope %s", len(job_ids), batches, sorted(window.scope))
    return list(range(batches))


def _batch_jobs(network_name: str, batch: int) -> tuple[str, dict[str, Any], datetime,
                                                        list[bookkeeping.JobRef]]:
    run_id, params, run_time = _run()
    with warehouse().connect() as conn:
        jobs = bookkeeping.jobs_in_batch(conn, network_name, run_id, batch)
    return run_id, params, run_time, jobs


def _extract(network_name: str, batch: int, step: runner.ExtractStep) -> dict[str, int]:
    network = get_network(network_name)
    _, params, run_time, jobs = _batch_jobs(network_name, batch)
    client = network.connect(api_credentials(network.api_conn_id))
    try:
        return step(warehouse(), network, client, jobs, _window(network_name, params, run_time), _now).as_xcom()
    finally:
        client.close()


def extract_posts(network_name: str, batch: int) -> dict[str, int]:
    return _extract(network_name, batch, runner.extract_posts)


def extract_comments(network_name: str, batch: int) -> dict[str, int]:
    return _extract(network_name, batch, runner.extract_comments)


def normalize(network_name: str, batch: int) -> dict[str, int]:
    network = get_network(network_name)
    _, _, _, jobs = _batch_jobs(network_name, batch)
    engine = warehouse()
    live = [job for job in jobs if job.status not in ("failed", "skipped")]
    report = normalize_jobs(engine, network, [job.id for job in live])
    with engine.begin() as conn:
        bookkeeping.mark_normalized(conn, live, _now())
    return report.as_xcom()


def submit_enrichment(network_name: str, batch: int) -> dict[str, Any]:
    """One ML job and one image job for the batch's items that lack them; a dead service is noted."""
    _, params, _, jobs = _batch_jobs(network_name, batch)
    submitted: dict[str, Any] = {"batch": batch, "ml_job_id": None, "vision_job_id": None}
    if not params.get("enrich", True):
        return submitted
    profile_ids = [job.entity_id for job in jobs if job.status not in ("failed", "skipped")]
    with warehouse().connect() as conn:
        texts = text_items(conn, network_name, profile_ids, MAX_ENRICH_ITEMS)
        media = media_items(conn, network_name, profile_ids, MAX_ENRICH_ITEMS)
    for key, conn_id, items in (("ml_job_id", ML_CONN_ID, texts), ("vision_job_id", VISION_CONN_ID, media)):
        if not items:
            continue
        client = job_api(conn_id)
        try:
            submitted[key] = client.submit(items)
            log.info("batch %s: %s job %s for %s item(s)", batch, conn_id, submitted[key], len(items))
        except JobApiError as exc:
            log.warning("batch %s: %s is unavailable, enrichment left for a later run: %s", batch, conn_id, exc)
        finally:
            client.close()
    return submitted


def _submitted_jobs() -> tuple[str | None, str | None]:
    """The enrichment job ids ``submit_enrichment`` returned for this batch (same map index), if any."""
    ti = get_current_context()["ti"]
    submitted = ti.xcom_pull(task_ids=SUBMIT_TASK_ID, map_indexes=ti.map_index)
    if not isinstance(submitted, dict):
        return None, None
    return submitted.get("ml_job_id"), submitted.get("vision_job_id")


def load(network_name: str, batch: int) -> dict[str, int]:
    """Store finished enrichments, close the batch's jobs and advance their watermarks."""
    _, params, run_time, jobs = _batch_jobs(network_name, batch)
    engine = warehouse()
    problems: list[str] = []
    if params.get("enrich", True):
        ml_job_id, vision_job_id = _submitted_jobs()
        _load_enrichment(engine, network_name, ML, ML_CONN_ID, ml_job_id)
        _load_enrichment(engine, network_name, VISION, VISION_CONN_ID, vision_job_id)
        problems = _missing_enrichments(engine, network_name, jobs)
    with engine.begin() as conn:
        summary = bookkeeping.close_jobs(conn, network_name, jobs, problems, run_time, _now())
        stuck = bookkeeping.failed_unexpectedly(conn, [job.id for job in jobs])
        planning.release_leases(conn, network_name, [job.id for job in jobs])
    log.info("batch %s closed: %s", batch, summary)
    if stuck:
        # Closed in the audit trail; the task fails so that the run shows red and can be cleared.
        raise AirflowException(f"batch {batch}: {len(stuck)} job(s) did not complete: {stuck[:10]}")
    return summary


def _load_enrichment(engine: Any, network_name: str, service: str, conn_id: str, job_id: str | None) -> None:
    if job_id is None:
        return
    client = job_api(conn_id)
    try:
        state = client.state(job_id)
    except JobApiError as exc:
        log.warning("%s job %s could not be read: %s", service, job_id, exc)
        return
    finally:
        client.close()
    if state.status == "done" and state.result is not None:
        with engine.begin() as conn:
            stored = store_results(conn, network_name, service, job_id, state.result.items, _now())
        log.info("%s job %s: %s result(s) stored", service, job_id, stored)
    else:
        log.warning("%s job %s is %s: its items stay missing for a later run (%s)", service, job_id,
                    state.status, (state.error or {}).get("message", "no error given"))


def _missing_enrichments(engine: Any, network_name: str, jobs: list[bookkeeping.JobRef]) -> list[str]:
    profile_ids = [job.entity_id for job in jobs]
    with engine.connect() as conn:
        texts = len(text_items(conn, network_name, profile_ids, MAX_ENRICH_ITEMS))
        media = len(media_items(conn, network_name, profile_ids, MAX_ENRICH_ITEMS))
    problems = []
    if texts:
        problems.append(f"{texts} text item(s) still lack ML results")
    if media:
        problems.append(f"{media} media item(s) still lack image recognition")
    return problems


def plan_rebuild(network_name: str) -> list[int]:
    """Clear the network's derived tables and deal its normalized jobs into batches by entity."""
    run_id, params, _ = _run()
    with warehouse().begin() as conn:
        jobs = bookkeeping.normalized_jobs(conn, network_name)
        entities = len({entity for _, entity in jobs})
        size = int(params.get("batch_size") or MIN_BATCH_SIZE)
        batches = planning.batch_count(entities, MAX_BATCHES, size)
        cleared = clear_derived(conn, network_name)
        if batches:
            bookkeeping.assign_rebuild_batches(conn, network_name, run_id, jobs, batches)
    log.info("rebuilding %s from the raw pages of %s job(s) of %s entities in %s batch(es); cleared %s",
             network_name, len(jobs), entities, batches, cleared)
    return list(range(batches))


def rebuild_batch(network_name: str, batch: int) -> dict[str, int]:
    """Normalize again every job of the batch, entity by entity in job order: no network request."""
    run_id, _, _ = _run()
    with warehouse().connect() as conn:
        jobs = bookkeeping.jobs_in_batch(conn, network_name, run_id, batch)
    return normalize_jobs(warehouse(), get_network(network_name), [job.id for job in jobs]).as_xcom()
