"""Task bodies of a network's sync DAG: each reads its batch from the warehouse, returns counts."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from airflow.sdk import Asset, AssetAlias, get_current_context
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowNotFoundException
from sqlalchemy import Connection

from socialsync.airflow import metrics
from socialsync.airflow.connections import api_credentials, job_api, warehouse
from socialsync.airflow.params import SCOPE_PARTS
from socialsync.airflow.run_note import publish_run_note
from socialsync.enrich.client import JobApiError
from socialsync.enrich.items import ML, VISION, media_items, store_results, text_items
from socialsync.extract import runner
from socialsync.extract.connections import extract_per_connection
from socialsync.extract.request import InvalidConf, SyncRequest, parse_sync_conf
from socialsync.networks import get_network
from socialsync.networks.base import AuthError, NetworkClient, NetworkSpec
from socialsync.storage import jobs as bookkeeping
from socialsync.storage import locks, planning, usage
from socialsync.storage.rebuild import clear_derived
from socialsync.transform.pipeline import NormalizeBehind, normalize_jobs

log = logging.getLogger(__name__)

MAX_BATCHES = 128  # far below core.max_map_length (1024), whatever the number of profiles
MIN_BATCH_SIZE = 25
MAX_BATCH_SIZE = 2_000  # when the conf names no batch_size: a task's work stays well inside its timeout
MAX_ENRICH_ITEMS = 10_000  # per batch and service; the rest waits for the next run
ML_CONN_ID, VISION_CONN_ID = "ml_api", "vision_api"
SUBMIT_TASK_ID = "submit_enrichment"
BATCH_GROUP = "batch"  # the mapped task group every batch's chain runs in
# [socialsync] options of the Airflow config (AIRFLOW__SOCIALSYNC__*): read at run time, not parse time.
DEACTIVATE_AFTER_MISSES = conf.getint("socialsync", "deactivate_after_misses", fallback=3)
# Batches a run is cut into when its conf names no batch_size: twice the task slots that run them. Each
# batch is a chain of seven task instances, each a process start and a few API calls, so batches of
# 25 profiles spend more on Airflow than on the sync. The local stacks set it from their slots.
TARGET_BATCHES = conf.getint("socialsync", "target_batches", fallback=16)


def _batches(entities: int, batch_size: int | None) -> int:
    """How many batches ``entities`` profiles go in: the conf's ``batch_size`` if it names one, else
    about ``TARGET_BATCHES`` of them (see ``planning.auto_batch_count``)."""
    if batch_size:
        return planning.batch_count(entities, MAX_BATCHES, batch_size)
    return planning.auto_batch_count(entities, TARGET_BATCHES, MAX_BATCHES, MIN_BATCH_SIZE, MAX_BATCH_SIZE)


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


def _plan_cursor(request: SyncRequest, run_time: datetime) -> dict[str, Any]:
    """What every job of the run starts from: the conf's bounds (only those given) and the as-of time."""
    cursor: dict[str, Any] = {"since_id": request.since_id, "until_id": request.until_id,
                              "full_refresh": request.full_refresh}
    if request.last_synced_at is not None:
        cursor["last_synced_at"] = request.last_synced_at.isoformat()
    return {**{k: v for k, v in cursor.items() if v}, "as_of": run_time.isoformat()}


def plan(network_name: str) -> list[int]:
    """Pick the profiles, open their jobs, cut batches; returns the batch numbers to map over.

    The conf is checked first: Airflow lets keys that are not Params through, and a refused conf
    must fail the run at once, with no retry, before anything is written.
    """
    network = get_network(network_name)
    try:
        request = parse_sync_conf(dict(get_current_context()["dag_run"].conf or {}), network)
    except InvalidConf as exc:
        raise AirflowFailException(str(exc)) from exc
    run_id, _, run_time = _run()
    requested = SCOPE_PARTS[request.scope]
    engine = warehouse()
    with engine.begin() as conn:
        try:  # under the network's lock until this transaction ends: a rebuild cannot start meanwhile
            locks.ensure_not_rebuilding(conn, network.name, _now())
        except locks.NetworkBusy as exc:
            raise AirflowException(str(exc)) from None  # retried: the rebuild will be done by then
        replanned = planning.entities_of_run(conn, network.name, run_id)
        if request.entity_ids:
            entity_ids = request.entity_ids  # deduplicated, in the order the conf names them
            added = planning.track_entities(conn, network.name, entity_ids, run_time, request.conn_ids)
            log.info("conf names %s profile(s), %s newly tracked", len(entity_ids), added)
        elif replanned:
            entity_ids = replanned  # a cleared run does again what it did, whatever is due now
            log.info("run %s was planned before: syncing its %s profile(s) again", run_id, len(entity_ids))
        else:
            synced_before = run_time - timedelta(hours=20)  # due once a day, with slack for late runs
            entity_ids = planning.due_entities(conn, network.name, synced_before)
            log.info("%s tracked profile(s) are due", len(entity_ids))
        if not replanned or request.entity_ids:  # a cleared run does again what it had admitted
            entity_ids = _within_quota(conn, network, entity_ids)
        batches = _batches(len(entity_ids), request.batch_size)
        now = _now()
        owed = bookkeeping.owed_parts(requested & network.scopes, network.lists)
        cursor = {**_plan_cursor(request, run_time), "parts": owed}
        job_ids = planning.open_jobs(conn, network.name, run_id, entity_ids, cursor, batches, now)
        busy = planning.acquire_leases(conn, network.name, run_id, job_ids, entity_ids, now)
        if busy:
            log.warning("skipping %s profile(s) another run holds, e.g. %s", len(busy),
                        "; ".join(f"{e}: {reason}" for e, reason in list(busy.items())[:10]))
        planning.record_unsupported(conn, network.name, job_ids, entity_ids, requested - network.scopes,
                                    network.not_given)
    log.info("opened %s job(s) in %s batch(es); scope %s", len(job_ids), batches,
             sorted(requested & network.scopes))
    return list(range(batches))


def _quota(network: NetworkSpec) -> tuple[float | None, float | None]:
    """A deployment's own quota per period, from one read of the API connection: its ``quota_units`` extra
    and ``quota_records`` (the records an API that counts them allows), each None when unset."""
    try:
        options = api_credentials(network.api_conn_id).options
    except AirflowNotFoundException:
        return None, None
    units, records = (options.get(extra) for extra in ("quota_units", "quota_records"))
    return (float(units) if units is not None else None), (float(records) if records is not None else None)


def _within_quota(conn: Connection, network: NetworkSpec, entity_ids: list[str]) -> list[str]:
    """The most overdue profiles whose estimated cost fits what is left of today's API quota; the
    rest stay due for the next run. What was decided is logged and pushed to XCom (``quota``)."""
    if network.quota is None:
        return entity_ids
    admission = usage.admit_within_quota(conn, network, entity_ids, _now(), _quota(network)[0])
    summary: dict[str, Any] = {"due": len(entity_ids), "admitted": len(admission.admitted),
                               "deferred": admission.deferred, "estimated_units": round(admission.estimated, 2),
                               "units_left": round(admission.budget_left, 2)}
    if admission.deferred:
        summary["reason"] = (f"today's {network.name} quota has room for about {round(admission.estimated)} "
                             f"unit(s) of the due profiles' estimated cost; the least overdue wait for tomorrow")
        log.warning("%s of %s due profile(s) deferred: %s", admission.deferred, len(entity_ids), summary["reason"])
    log.info("quota: %s", summary)
    get_current_context()["ti"].xcom_push(key="quota", value=summary)
    return admission.admitted


def _batch_jobs(network_name: str, batch: int) -> tuple[str, dict[str, Any], datetime,
                                                        list[bookkeeping.JobRef]]:
    run_id, params, run_time = _run()
    with warehouse().connect() as conn:
        jobs = bookkeeping.jobs_in_batch(conn, network_name, run_id, batch)
    # What the UI shows for this mapped task instead of its index (``map_index_template``).
    get_current_context()[BATCH_LABEL] = f"batch {batch}: {len(jobs)} profile(s)"  # type: ignore[literal-required]
    return run_id, params, run_time, jobs


BATCH_LABEL = "batch_label"


def _last_try() -> bool:
    """Whether this try is the task's last: then transient failures close jobs instead of retrying."""
    ti = get_current_context()["ti"]
    return bool(ti.try_number > ti.max_tries)


def _extract(network_name: str, batch: int, step: runner.ExtractStep) -> dict[str, int]:
    """``step`` over the batch, each connection's jobs with a client (and rate budget) of its own."""
    network = get_network(network_name)
    _, params, run_time, jobs = _batch_jobs(network_name, batch)
    engine = warehouse()
    with engine.connect() as conn:
        readers = planning.connections_of(conn, network.name, [job.entity_id for job in jobs])

    @contextmanager
    def open_client(conn_id: str) -> Iterator[NetworkClient]:
        try:
            credentials = api_credentials(conn_id)
        except AirflowNotFoundException:
            raise AuthError(f"no Airflow connection {conn_id!r}: define it, or track these profiles with "
                            "another conn_id") from None
        client = network.connect(credentials)
        allowance = None
        if network.quota is not None:  # no request past today's budget, whatever the estimates said
            units, records = _quota(network)
            allowance = usage.DailyAllowance(engine, network, units, lambda: client.records, _now, records=records)
            client.budget.allowance = allowance
        try:
            yield client
        finally:
            client.close()
            left = None
            if allowance is not None:  # what the API will charge, failed tries included
                allowance.settle(client.units, client.records)
                left = allowance.left()
            metrics.requested(network.name, requests=client.requests, throttled=client.budget.holds,
                              units=client.units, units_left=left)

    report = extract_per_connection(step, engine, network, jobs, _window(network_name, params, run_time), _now,
                                    reader_of=readers, open_client=open_client, last_try=_last_try())
    log.info("batch %s: %s", batch, report.as_xcom())
    metrics.extracted(network.name, report.as_xcom())
    return report.as_xcom()


def extract_posts(network_name: str, batch: int) -> dict[str, int]:
    return _extract(network_name, batch, runner.extract_posts)


def extract_comments(network_name: str, batch: int) -> dict[str, int]:
    """The batch's comment threads; each job is normalized on a thread of its own as soon as its threads
    are in raw, while the others are fetched (the normalize task then does only what is left)."""
    with NormalizeBehind(warehouse(), get_network(network_name), _now) as behind:
        return _extract(network_name, batch, partial(runner.extract_comments, done=behind.submit))


def normalize(network_name: str, batch: int) -> dict[str, int]:
    """Every job that fetched anything is normalized, failed ones too: what was fetched is real data,
    and only complete passes prove deletions or move watermarks."""
    network = get_network(network_name)
    _, _, _, jobs = _batch_jobs(network_name, batch)
    live = [job.id for job in jobs if job.status != "skipped"]
    counts = normalize_jobs(warehouse(), network, live, _now, skip_normalized=True).as_xcom()
    metrics.normalized(network_name, counts)
    return counts


def submit_enrichment(network_name: str, batch: int) -> dict[str, Any]:
    """One ML job and one image job for the batch's items that lack them; a dead service is noted."""
    _, params, _, jobs = _batch_jobs(network_name, batch)
    submitted: dict[str, Any] = {"batch": batch, "ml_job_id": None, "vision_job_id": None}
    if not params.get("enrich", True):
        return submitted
    with warehouse().connect() as conn:
        profile_ids = _profile_ids(conn, network_name, [job for job in jobs if job.status not in ("failed", "skipped")])
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
    found = [ti.xcom_pull(task_ids=f"{BATCH_GROUP}.{SUBMIT_TASK_ID}", key=key, map_indexes=ti.map_index)
             for key in ("ml_job_id", "vision_job_id")]
    return tuple(value if isinstance(value, str) else None for value in found)  # type: ignore[return-value]


def load(network_name: str, batch: int) -> dict[str, int]:
    """Store finished enrichments and close the batch's jobs with what their sub-syncs did."""
    _, params, _, jobs = _batch_jobs(network_name, batch)
    engine = warehouse()
    problems: list[str] = []
    enriched = 0
    if params.get("enrich", True):
        ml_job_id, vision_job_id = _submitted_jobs()
        enriched += _load_enrichment(engine, network_name, ML, ML_CONN_ID, ml_job_id)
        enriched += _load_enrichment(engine, network_name, VISION, VISION_CONN_ID, vision_job_id)
        problems = _missing_enrichments(engine, network_name, jobs)
    with engine.begin() as conn:
        summary = bookkeeping.close_jobs(conn, network_name, jobs, problems, _now(), DEACTIVATE_AFTER_MISSES)
        planning.release_leases(conn, network_name, [job.id for job in jobs])
    metrics.closed(network_name, summary)
    log.info("batch %s closed: %s; tables changed: %s", batch, summary,
             _emit_table_events(network_name, batch, enriched))
    return summary


def _load_enrichment(engine: Any, network_name: str, service: str, conn_id: str, job_id: str | None) -> int:
    if job_id is None:
        return 0
    client = job_api(conn_id)
    try:
        state = client.state(job_id)
    except JobApiError as exc:
        log.warning("%s job %s could not be read: %s", service, job_id, exc)
        return 0
    finally:
        client.close()
    if state.status == "done" and state.result is not None:
        with engine.begin() as conn:
            stored = store_results(conn, network_name, service, job_id, state.result.items, _now())
        log.info("%s job %s: %s result(s) stored", service, job_id, stored)
        return stored
    log.warning("%s job %s is %s: its items stay missing for a later run (%s)", service, job_id,
                state.status, (state.error or {}).get("message", "no error given"))
    return 0


def table_asset(network_name: str, table: str) -> Asset:
    """The Asset a network's table is: ``socialsync://instagram/comments``; downstream DAGs schedule on it."""
    return Asset(f"socialsync://{network_name}/{table}")


def tables_alias(network_name: str) -> AssetAlias:
    """The alias ``load`` emits its tables' events through (only the tables a batch changed)."""
    return AssetAlias(f"socialsync_{network_name}_tables")


def _emit_table_events(network_name: str, batch: int, enriched: int) -> dict[str, int]:
    """An Asset event for each table this batch changed, with its row counts in ``extra``."""
    context = get_current_context()
    ti = context["ti"]
    loaded = ti.xcom_pull(task_ids=f"{BATCH_GROUP}.normalize", map_indexes=ti.map_index) or {}
    deleted = {"posts": loaded.get("deleted_posts", 0), "comments": loaded.get("deleted_comments", 0)}
    changed = {table: loaded.get(table, 0) + deleted.get(table, 0)
               for table in ("profiles", "posts", "media", "comments", "metrics")}
    changed["enrichments"] = enriched
    events = context["outlet_events"][tables_alias(network_name)]
    for table, rows in changed.items():
        if rows:
            extra: dict[str, Any] = {"rows": rows, "batch": batch, "run_id": context["run_id"]}
            if deleted.get(table):
                extra["deleted"] = deleted[table]
            events.add(table_asset(network_name, table), extra=extra)
    return {table: rows for table, rows in changed.items() if rows}


def _profile_ids(conn: Connection, network_name: str, jobs: list[bookkeeping.JobRef]) -> list[str]:
    """The ids the jobs' rows are keyed by (an Instagram ``@username``'s account id)."""
    return list(planning.profile_ids(conn, network_name, [job.entity_id for job in jobs]).values())


def _missing_enrichments(engine: Any, network_name: str, jobs: list[bookkeeping.JobRef]) -> list[str]:
    with engine.connect() as conn:
        profile_ids = _profile_ids(conn, network_name, jobs)
        texts = len(text_items(conn, network_name, profile_ids, MAX_ENRICH_ITEMS))
        media = len(media_items(conn, network_name, profile_ids, MAX_ENRICH_ITEMS))
    problems = []
    if texts:
        problems.append(f"{texts} text item(s) still lack ML results")
    if media:
        problems.append(f"{media} media item(s) still lack image recognition")
    return problems


def summarize(network_name: str) -> dict[str, Any]:
    """The run's outcome where operators look: its note, the last lines of this log, and its state.

    Jobs a batch could not close (its ``load`` never ran) are closed ``failed`` and every lease the
    run holds is released. The run fails when more of its jobs failed than ``max_failed_percent``.
    """
    context = get_current_context()
    run_id, params, _ = _run()
    if context["ti"].xcom_pull(task_ids="plan") is None:
        raise AirflowFailException("plan did not finish (a refused conf, or the warehouse was unreachable): "
                                   "this run synced nothing; see the plan task's log")
    with warehouse().begin() as conn:
        leftover = bookkeeping.close_unfinished_jobs(conn, network_name, run_id, _now())
        bookkeeping.release_run_leases(conn, network_name, run_id)
        statuses = bookkeeping.run_statuses(conn, network_name, run_id)
        skipped = bookkeeping.skipped_parts(conn, network_name, run_id)
    ti = context["ti"]
    extracted = [_xcom_sum(ti, f"{BATCH_GROUP}.{step}", "requests") for step in ("extract_posts", "extract_comments")]
    rows = {key: _xcom_sum(ti, f"{BATCH_GROUP}.normalize", key) for key in ROW_KINDS}
    total = sum(statuses.values())
    summary: dict[str, Any] = {"jobs": statuses, "total_jobs": total, "rows": rows, "requests": sum(extracted),
                               "closed_by_summary": leftover, "skipped": skipped}
    note = run_note(network_name, summary)
    for line in note.splitlines():
        log.info("%s", line)
    publish_run_note(context["dag"].dag_id, run_id, note)
    limit = float(params.get("max_failed_percent", 10.0))
    failed = statuses.get("failed", 0)
    if total and failed * 100 > limit * total:
        raise AirflowFailException(f"{failed} of {total} job(s) failed, more than the "
                                   f"max_failed_percent of {limit:g}%: see sync_jobs.error_message")
    return summary


ROW_KINDS = ("profiles", "posts", "media", "comments", "metrics", "rejects")


def _xcom_sum(ti: Any, task_id: str, key: str) -> int:
    values = ti.xcom_pull(task_ids=task_id)
    if isinstance(values, dict):
        values = [values]
    return sum(int(v.get(key, 0)) for v in (values or []) if isinstance(v, dict))


def run_note(network_name: str, summary: dict[str, Any]) -> str:
    jobs = ", ".join(f"{count} {status}" for status, count in sorted(summary["jobs"].items())) or "no jobs"
    rows = ", ".join(f"{count} {kind}" for kind, count in summary["rows"].items() if count) or "no rows"
    return (f"socialsync {network_name}: {summary['total_jobs']} job(s): {jobs}\n"
            f"rows loaded: {rows}\n"
            f"API requests: {summary['requests']}"
            + (f"\n{summary['closed_by_summary']} job(s) closed failed by the summary (their batch never loaded)"
               if summary["closed_by_summary"] else "")
            + "".join(f"\nnot synced: {kind} on {count} job(s): {reason}"
                      for kind, (count, reason) in sorted(summary.get("skipped", {}).items())))


def plan_rebuild(network_name: str) -> list[int]:
    """Take the network from its syncs, clear its derived tables, deal its normalized jobs into batches.

    Refused (and retried) while a sync holds leases of the network; while the rebuild holds it, the
    network's sync plans wait in turn, so the two never write the same tables at once.
    """
    run_id, params, _ = _run()
    with warehouse().begin() as conn:
        try:
            locks.begin_rebuild(conn, network_name, run_id, _now())
        except locks.NetworkBusy as exc:
            raise AirflowException(str(exc)) from None  # retried: the sync will be done by then
        jobs = bookkeeping.normalized_jobs(conn, network_name)
        entities = len({entity for _, entity in jobs})
        batches = _batches(entities, int(params.get("batch_size") or 0))
        cleared = clear_derived(conn, network_name)
        if batches:
            bookkeeping.assign_rebuild_batches(conn, network_name, run_id, jobs, batches)
    log.info("rebuilding %s from the raw pages of %s job(s) of %s entities in %s batch(es); cleared %s",
             network_name, len(jobs), entities, batches, cleared)
    return list(range(batches))


def rebuild_batch(network_name: str, batch: int) -> dict[str, int]:
    """Normalize again every job of the batch, entity by entity in job order: no network request."""
    _, _, _, jobs = _batch_jobs(network_name, batch)
    return normalize_jobs(warehouse(), get_network(network_name), [job.id for job in jobs], _now).as_xcom()


def finish_rebuild(network_name: str) -> None:
    """Give the network back to its syncs, however the rebuild ended."""
    run_id, _, _ = _run()
    with warehouse().begin() as conn:
        locks.end_rebuild(conn, network_name, run_id)
