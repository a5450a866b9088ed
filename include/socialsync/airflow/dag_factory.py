"""Builds one daily sync DAG per registered network: wiring only, no I/O at parse time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from airflow.sdk import DAG, TriggerRule, task, task_group
from airflow.sdk.configuration import conf
from airflow.sdk.definitions.xcom_arg import PlainXComArg

from socialsync.airflow import tasks
from socialsync.airflow.params import rebuild_params, sync_params
from socialsync.airflow.sensors import JobStatusSensor
from socialsync.networks.base import NetworkSpec

START_DATE = datetime(2026, 1, 1)
# [socialsync] options of the Airflow config (or AIRFLOW__SOCIALSYNC__* variables): in-memory reads.
ENRICH_POLL_SECONDS = conf.getfloat("socialsync", "enrich_poll_seconds", fallback=30.0)
ENRICH_TIMEOUT = timedelta(seconds=conf.getfloat("socialsync", "enrich_timeout_seconds", fallback=7200.0))
# A mapped task of a batch shows "batch 3: 100 profile(s)" in the UI, not its map index.
BATCH_LABEL = "{{ " + tasks.BATCH_LABEL + " }}"

DOC = """
### {name}: daily sync

`plan` picks the due profiles (or `conf.entity_ids`) and opens a `sync_jobs` row each, cut into
batches; each batch then runs its own chain in the mapped group `batch`: `extract_posts` (profile +
post pages into `raw_pages`, cursor checkpointed per page) -> `extract_comments` (each post's comment
pages) -> `normalize` (validate, map, upsert, deletions and watermarks in one transaction per job;
bad records to `quarantine`) -> `submit_enrichment` (one ML and one image job per batch) ->
`wait_ml` / `wait_vision` (deferred polling) -> `load` (enrichments, job statuses). `summarize`
closes what no batch closed, sets the run's note and fails the run when more jobs failed than
`max_failed_percent`. {description}
"""


PLAN_DOC = """Picks the due profiles (or `conf.entity_ids`), admits what today's API quota allows (the rest
are deferred, said in this log and the `quota` XCom), opens a `sync_jobs` row each and cuts them into
batches. A bad `conf` is refused here, before anything is written."""
EXTRACT_POSTS_DOC = """Profile pages, then post pages of each profile of the batch into `raw_pages`, the cursor
committed with every page: a retry or a cleared run goes on from the last page. Its log says how many
profiles are done of the batch's."""
EXTRACT_COMMENTS_DOC = """The comment pages of each post that needs them (new, recent, or whose count moved), each
post's pass its own `sync_tasks` row; a pass that cannot be proven complete ends `partial`."""
NORMALIZE_DOC = """Validates and maps the batch's raw pages, upserts the normalized tables, quarantines bad records,
marks what complete passes proved deleted and moves watermarks, one transaction per job."""
SUBMIT_DOC = """Submits one ML job (texts) and one image-recognition job (media) for what lacks enrichment."""
WAIT_DOC = """Waits, deferred on the triggerer, for the enrichment job to finish (its status read from the body)."""
LOAD_DOC = """Stores the enrichments, closes the batch's jobs with what their sub-syncs did, and emits an Asset
event (`socialsync://<network>/<table>`, rows in `extra`) for each table the batch changed."""
SUMMARIZE_DOC = """Closes what no batch closed, writes the run's note (jobs per status, rows, requests) and fails
the run when more jobs failed than `max_failed_percent`."""


def _timeout(option: str, minutes: float) -> timedelta:
    return timedelta(minutes=conf.getfloat("socialsync", option, fallback=minutes))


# Every task has a deadline (``[socialsync] *_timeout_minutes``): an upstream that trickles or stalls
# under the per-request deadlines still cannot hold a worker slot for ever.
PLAN_TIMEOUT = _timeout("plan_timeout_minutes", 30)
EXTRACT_TIMEOUT = _timeout("extract_timeout_minutes", 180)
NORMALIZE_TIMEOUT = _timeout("normalize_timeout_minutes", 60)
LOAD_TIMEOUT = _timeout("load_timeout_minutes", 30)
RETRY_DELAY = timedelta(seconds=conf.getfloat("socialsync", "retry_delay_seconds", fallback=30.0))


def build_sync_dag(network: NetworkSpec) -> DAG:
    name = network.name
    default_args = {
        "owner": "socialsync",
        "retries": 2,
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": True,
        "execution_timeout": LOAD_TIMEOUT,
    }
    with DAG(
        dag_id=network.dag_id,
        schedule=network.schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=default_args,
        params=sync_params(network.entity_id_pattern),
        tags=["socialsync", name],
        description=f"Daily {name} sync: profiles, posts, comments, metrics and enrichment into the warehouse",
        doc_md=DOC.format(name=name, description=network.description),
    ) as dag:

        @task(task_id="plan", execution_timeout=PLAN_TIMEOUT, doc_md=PLAN_DOC)
        def plan() -> list[int]:
            return tasks.plan(name)

        @task(task_id="extract_posts", pool=network.pool_name, execution_timeout=EXTRACT_TIMEOUT,
              map_index_template=BATCH_LABEL, doc_md=EXTRACT_POSTS_DOC)
        def extract_posts(batch: int) -> dict[str, int]:
            return tasks.extract_posts(name, batch)

        @task(task_id="extract_comments", pool=network.pool_name, execution_timeout=EXTRACT_TIMEOUT,
              map_index_template=BATCH_LABEL, doc_md=EXTRACT_COMMENTS_DOC)
        def extract_comments(batch: int) -> dict[str, int]:
            return tasks.extract_comments(name, batch)

        # ALL_DONE: what the extract steps fetched before one of them failed still loads.
        @task(task_id="normalize", trigger_rule=TriggerRule.ALL_DONE, execution_timeout=NORMALIZE_TIMEOUT,
              map_index_template=BATCH_LABEL, doc_md=NORMALIZE_DOC)
        def normalize(batch: int) -> dict[str, int]:
            return tasks.normalize(name, batch)

        @task(task_id=tasks.SUBMIT_TASK_ID, multiple_outputs=True, map_index_template=BATCH_LABEL,
              doc_md=SUBMIT_DOC)
        def submit_enrichment(batch: int) -> dict[str, Any]:
            return tasks.submit_enrichment(name, batch)

        # ALL_DONE: the batch's jobs get closed (and the run shows why) even when a stage failed. It emits
        # an Asset event (``socialsync://<network>/<table>``, row counts in extra) per table it changed.
        @task(task_id="load", trigger_rule=TriggerRule.ALL_DONE, outlets=[tasks.tables_alias(name)],
              map_index_template=BATCH_LABEL, doc_md=LOAD_DOC)
        def load(batch: int) -> dict[str, int]:
            return tasks.load(name, batch)

        # Each batch runs its own chain: one batch's failure never holds back another's data.
        @task_group(group_id=tasks.BATCH_GROUP)
        def sync_batch(batch: int) -> None:
            normalized = normalize(batch)
            extract_posts(batch) >> extract_comments(batch) >> normalized
            submitted = cast(PlainXComArg, submit_enrichment(batch))  # multiple_outputs: one XCom per key
            waits = [
                JobStatusSensor(task_id=task_id, http_conn_id=conn_id, job_id=cast(str, submitted[key]),
                                poke_interval=ENRICH_POLL_SECONDS, timeout=ENRICH_TIMEOUT.total_seconds(),
                                mode="reschedule", deferrable=True, retries=1,
                                map_index_template="batch {{ ti.map_index }}", doc_md=WAIT_DOC)
                for task_id, conn_id, key in (("wait_ml", tasks.ML_CONN_ID, "ml_job_id"),
                                              ("wait_vision", tasks.VISION_CONN_ID, "vision_job_id"))
            ]
            normalized >> submitted
            waits >> load(batch)

        # ALL_DONE: the run's outcome is told (and its leftovers closed) whatever its batches did.
        @task(task_id="summarize", trigger_rule=TriggerRule.ALL_DONE, retries=0, doc_md=SUMMARIZE_DOC)
        def summarize() -> dict[str, Any]:
            return tasks.summarize(name)

        sync_batch.expand(batch=plan()) >> summarize()
    return dag


REBUILD_DOC = """
### {name}: rebuild from raw

Re-derives `profiles`, `posts`, `media`, `comments` and `metrics` of {name} from `raw_pages`
alone, with **no request to any network**: `plan` clears those rows and deals every job that was
normalized into batches by entity; `rebuild` normalizes each batch's jobs again in job order.
Enrichments (the external services' answers) are kept. Trigger it by hand after changing a
mapping, or to repair the tables.
"""


def build_rebuild_dag(network: NetworkSpec) -> DAG:
    name = network.name
    with DAG(
        dag_id=f"{name}_rebuild",
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args={"owner": "socialsync", "retries": 1, "retry_delay": timedelta(seconds=30),
                      "execution_timeout": NORMALIZE_TIMEOUT},
        params=rebuild_params(),
        tags=["socialsync", name, "rebuild"],
        description=f"Rebuild {name}'s normalized tables from raw pages, with no request to the network",
        doc_md=REBUILD_DOC.format(name=name),
    ) as dag:

        # While a sync of the network runs, plan is refused and retried until it is done.
        @task(task_id="plan", retries=24, retry_delay=timedelta(minutes=5), execution_timeout=PLAN_TIMEOUT,
              doc_md="Waits for no sync of the network to run, clears the derived tables, deals the jobs into "
                     "batches by profile.")
        def plan() -> list[int]:
            return tasks.plan_rebuild(name)

        @task(task_id="rebuild", map_index_template=BATCH_LABEL,
              doc_md="Normalizes the batch's jobs again from `raw_pages`, oldest job first; no API request.")
        def rebuild(batch: int) -> dict[str, int]:
            return tasks.rebuild_batch(name, batch)

        @task(task_id="finish", trigger_rule=TriggerRule.ALL_DONE, doc_md="Releases the rebuild's lock on the network.")
        def finish() -> None:
            tasks.finish_rebuild(name)

        rebuild.expand(batch=plan()) >> finish()
    return dag
