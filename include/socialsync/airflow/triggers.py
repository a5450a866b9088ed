"""The trigger that waits for an external job: polls ``GET jobs/{id}`` until its body says it ended.

Airflow's ``HttpSensorTrigger`` only keeps waiting while the answer is 404; job APIs answer 200
with the status in the body, so this trigger reads the body. It runs in the triggerer, off any
worker slot, and takes only JSON-serializable arguments.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.http.hooks.http import HttpAsyncHook
from airflow.triggers.base import BaseTrigger, TriggerEvent

from socialsync.airflow.connections import aconnection_secrets
from socialsync.enrich.client import JobApiError, parse_job_state
from socialsync.extract.secrets import SecretScrubber, redirect_origin


class JobStatusTrigger(BaseTrigger):
    """Yields one event: ``{"status": done|failed|timeout|error, "job_id", "message"}``."""

    def __init__(self, http_conn_id: str, job_id: str, poll_interval: float = 30.0,
                 deadline: float | None = None, max_consecutive_errors: int = 5) -> None:
        super().__init__()
        self.http_conn_id = http_conn_id
        self.job_id = job_id
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.max_consecutive_errors = max_consecutive_errors

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"http_conn_id": self.http_conn_id, "job_id": self.job_id, "poll_interval": self.poll_interval,
             "deadline": self.deadline, "max_consecutive_errors": self.max_consecutive_errors},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = HttpAsyncHook(method="GET", http_conn_id=self.http_conn_id, retry_limit=1)
        scrub: SecretScrubber | None = None
        errors = 0
        while True:
            try:
                if scrub is None:
                    # The triggerer is a process of its own: its masker (and its supervisor's) learns
                    # the key here, once, before a request could fail with it in the message.
                    scrub = SecretScrubber(await aconnection_secrets(self.http_conn_id))
                status = await self._poll(hook)
                errors = 0
            except (JobApiError, OSError, ValueError, Exception) as exc:
                errors += 1
                # An upstream's error can quote the key it was sent; the event lands in the metadata DB.
                failure = (scrub or SecretScrubber()).text(str(exc) or type(exc).__name__)
                self.log.warning("polling job %s failed (%s in a row): %s", self.job_id, errors, failure)
                if errors >= self.max_consecutive_errors:
                    yield TriggerEvent({"status": "error", "job_id": self.job_id,
                                        "message": f"{errors} failed polls in a row, last: {failure}"})
                    return
                status = None
            if status in ("done", "failed"):
                yield TriggerEvent({"status": status, "job_id": self.job_id, "message": f"job {status}"})
                return
            if self.deadline is not None and time.time() >= self.deadline:
                yield TriggerEvent({"status": "timeout", "job_id": self.job_id,
                                    "message": f"job still {status or 'unknown'} at the deadline"})
                return
            await asyncio.sleep(self.poll_interval)

    async def _poll(self, hook: HttpAsyncHook) -> str:
        async with hook.session() as http:
            # Never follow a redirect: aiohttp would resend the connection's headers (the API key) to
            # wherever it points. This overrides an ``allow_redirects`` in the connection's extras.
            response = await http.run(endpoint=f"jobs/{self.job_id}", extra_options={"allow_redirects": False})
            if 300 <= response.status < 400:
                where = redirect_origin(str(response.url), response.headers.get("Location"))
                raise JobApiError(f"GET jobs/{self.job_id}: HTTP {response.status} redirected to {where}, "
                                  "not followed")
            body = await response.json(content_type=None)
        state = parse_job_state(body)
        self.log.info("job %s is %s", self.job_id, state.status)
        return state.status
