"""A deferrable ``HttpSensor`` for external job APIs whose status is in the answer's body."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.http.hooks.http import HttpHook
from airflow.providers.http.sensors.http import HttpSensor
from airflow.sdk import Context, PokeReturnValue
from airflow.sdk.exceptions import AirflowException

from socialsync.airflow.connections import connection_secrets
from socialsync.airflow.triggers import JobStatusTrigger
from socialsync.enrich.client import parse_job_state
from socialsync.extract.secrets import SecretScrubber, redirect_origin


class JobStatusSensor(HttpSensor):
    """Waits until ``GET jobs/{job_id}`` says ``done`` or ``failed``; deferred to the triggerer.

    Either outcome ends the wait successfully: whether the results are usable is ``load``'s call
    (a failed or slow enrichment makes the sync ``partial``, it never blocks the core data). With
    no ``job_id`` (nothing to enrich, or the service refused the job) it returns at once.
    """

    template_fields: Sequence[str] = (*HttpSensor.template_fields, "job_id")

    def __init__(self, *, job_id: str | None, http_conn_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("deferrable", True)
        super().__init__(endpoint="jobs", http_conn_id=http_conn_id, **kwargs)
        self.job_id = job_id

    def execute(self, context: Context) -> Any:
        if not self.job_id:
            self.log.info("no job to wait for")
            return {"status": "not_submitted", "job_id": None}
        self.endpoint = f"jobs/{self.job_id}"
        if not self.deferrable:
            return super(HttpSensor, self).execute(context)
        self.defer(
            trigger=JobStatusTrigger(http_conn_id=self.http_conn_id, job_id=self.job_id,
                                     poll_interval=float(self.poke_interval),
                                     deadline=time.time() + float(self.timeout)),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout) + 2 * float(self.poke_interval) + 60),
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        scrub = SecretScrubber(connection_secrets(self.http_conn_id))
        # Never follow a redirect (requests would resend the API key to wherever it points), and check
        # the status here: the hook's own check logs the whole answer's body, which can quote the key.
        response = HttpHook(method="GET", http_conn_id=self.http_conn_id).run(
            self.endpoint, extra_options={"allow_redirects": False, "check_response": False})
        if 300 <= response.status_code < 400:
            where = redirect_origin(response.url, response.headers.get("Location"))
            raise AirflowException(f"GET {self.endpoint}: HTTP {response.status_code} redirected to {where}, "
                                   "not followed")
        if not response.ok:
            raise AirflowException(f"GET {self.endpoint}: HTTP {response.status_code} "
                                   f"{scrub.text(response.text)[:300]}")
        state = parse_job_state(response.json())
        self.log.info("job %s is %s", self.job_id, state.status)
        return PokeReturnValue(is_done=state.finished, xcom_value={"status": state.status, "job_id": self.job_id})

    # Returns the outcome (to XCom) where HttpSensor returns nothing: load reads the job itself, but
    # the outcome in the UI says at a glance whether the service answered.
    def execute_complete(  # type: ignore[override]
            self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if not event or event.get("status") == "error":
            raise AirflowException(f"waiting for job {self.job_id} failed: {(event or {}).get('message')}")
        self.log.info("job %s: %s", self.job_id, event.get("message"))
        return {"status": event["status"], "job_id": self.job_id}
