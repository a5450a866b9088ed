"""The run's summary as its note in Airflow's UI, written through Airflow's own REST API."""

from __future__ import annotations

import logging

import httpx
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from socialsync.airflow.connections import _base_url

log = logging.getLogger(__name__)

AIRFLOW_API_CONN_ID = "airflow_api"
NOTE_LIMIT = 1000  # the REST API's own bound on a note


def publish_run_note(dag_id: str, run_id: str, note: str) -> bool:
    """Set the run's note (``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}``) when ``airflow_api`` exists.

    A task cannot write its run's note through the execution API, so the note goes through the
    public API as a user would, with the connection's login (host = the API server's base URL).
    Without the connection the summary stays in this log and the task's XCom. Never fails the task.
    """
    try:
        conn = BaseHook.get_connection(AIRFLOW_API_CONN_ID)
    except AirflowNotFoundException:
        log.info("no %r connection: the run's summary is in this log and this task's XCom, not its note",
                 AIRFLOW_API_CONN_ID)
        return False
    base = _base_url(conn.host, conn.schema, conn.port).rstrip("/")
    try:
        with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as api:
            token = api.post("/auth/token", json={"username": conn.login, "password": conn.password})
            token.raise_for_status()
            answer = api.patch(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", params={"update_mask": "note"},
                               json={"note": note[:NOTE_LIMIT]},
                               headers={"Authorization": f"Bearer {token.json()['access_token']}"})
            answer.raise_for_status()
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        log.warning("could not set the run's note through %s: %s", AIRFLOW_API_CONN_ID, type(exc).__name__)
        return False
    log.info("run note set")
    return True
