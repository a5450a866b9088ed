"""Builds one daily sync DAG per registered network: wiring only, no I/O at parse time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, TriggerRule, task
from airflow.sdk.configuration import conf

from socialsync.airflow import tasks
from socialsync.airflow.params import rebuild_params, sync_params
from socialsync.airflow.sensors import JobStatusSensor
from socialsync.networks.base import NetworkSpec

START_DATE = datetime(2026, 1, 1)
# [socialsync] options of the Airflow config (or AIRFLOW__SOCIALSYNC__* variables): in-memory reads.
ENRICH_POLL_SECONDS = conf.getfloat("socialsync", "enrich_poll_seconds", fallback=30.0)
ENRICH_TIMEOUT = timedelta(seconds=conf.getfloat("socialsync", "enrich_timeout_seconds", fallback=7200.0))

DOC = """
### {name}: daily sync

`plan` picks the due profiles (or `conf.entity_ids`) and opens a `sync_jobs` row each, cut into
batches; every later step is mapped over those batches: `extract_posts` (profile + post pages into
`raw_pages`, cursor checkpointed per page) -> `extract_comments` (each post's comment pages) ->
`normalize` (validate, map, upsert; bad records to `quarantine`) -> `submit_enrichment` (one ML and
one image job per batch) -> `wait_ml` / `wait_vision` (deferred polling) -> `load` (enrichments,
job statuses, watermarks). {description}
"""


def _ml_job(submitted: dict[str, Any]) -> str | None:
    return submitted["ml_job_id"]


def _vision_job(submitted: dict[str, Any]) -> str | None:
    return submitted["vision_job_id"]


def build_sync_dag(network: NetworkSpec) -> DAG:
    name = network.name
    default_args = {
        "owner": "socialsync",
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
    }
    with DAG(
        dag_id=network.dag_id,
        schedule=network.schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=default_args,
        params=sync_params(),
        tags=["socialsync", name],
        doc_md=DOC.format(name=name, description=network.description),
    ) as dag:

        @task(task_id="plan")
        def plan() -> list[int]:
            return tasks.plan(name)

        @task(task_id="extract_posts", pool=network.pool_name)
        def extract_posts(batch: int) -> dict[str, int]:
            return tasks.extract_posts(name, batch)

        @task(task_id="extract_comments", pool=network.pool_name)
        def extract_comments(batch: int) -> dict[str, int]:
            return tasks.extract_comments(name, batch)

        @task(task_id="normalize")
        def normalize(batch: int) -> dict[str, int]:
            return tasks.normalize(name, batch)

        @task(task_id=tasks.SUBMIT_TASK_ID)
        def submit_enrichment(batch: int) -> dict[str, Any]:
            return tasks.submit_enrichment(name, batch)

        # ALL_DONE: the batch's jobs get closed (and the run shows why) even when a stage failed.
        @task(task_id="load", trigger_rule=TriggerRule.ALL_DONE)
        def load(batch: int) -> dict[str, int]:
            return tasks.load(name, batch)

        batches = plan()
        posts = extract_posts.expand(batch=batches)
        comments = extract_comments.expand(batch=batches)
        normalized = normalize.expand(batch=batches)
        submitted = submit_enrichment.expand(batch=batches)
        waits = [
            JobStatusSensor.partial(task_id=task_id, http_conn_id=conn_id, poke_interval=ENRICH_POLL_SECONDS,
                                    timeout=ENRICH_TIMEOUT.total_seconds(), mode="reschedule",
                                    deferrable=True, retries=1)
            .expand(job_id=submitted.map(pick))
            for task_id, conn_id, pick in (("wait_ml", tasks.ML_CONN_ID, _ml_job),
                                           ("wait_vision", tasks.VISION_CONN_ID, _vision_job))
        ]
        closed = load.expand(batch=batches)
        posts >> comments >> normalized >> submitted
        waits >> closed
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
        default_args={"owner": "socialsync", "retries": 1, "retry_delay": timedelta(seconds=30)},
        params=rebuild_params(),
        tags=["socialsync", name, "rebuild"],
        doc_md=REBUILD_DOC.format(name=name),
    ) as dag:

        @task(task_id="plan")
        def plan() -> list[int]:
            return tasks.plan_rebuild(name)

        @task(task_id="rebuild")
        def rebuild(batch: int) -> dict[str, int]:
            return tasks.rebuild_batch(name, batch)

        rebuild.expand(batch=plan())
    return dag
