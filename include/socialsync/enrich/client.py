"""Client of an async job API (seed 003): submit items -> job_id; GET /jobs/{job_id} -> status."""

from __future__ import annotations

from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from socialsync.extract.secrets import SecretScrubber, redirect_origin

JobStatus = Literal["pending", "processing", "done", "failed"]
FINAL: frozenset[str] = frozenset({"done", "failed"})


class JobApiError(RuntimeError):
    """The job service refused a call or answered something that is not a job."""


class JobResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    items: list[dict[str, Any]]


class JobState(BaseModel):
    model_config = ConfigDict(extra="allow")
    job_id: str
    status: JobStatus
    result: JobResult | None = None
    error: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINAL


def parse_job_state(body: Any) -> JobState:
    try:
        return JobState.model_validate(body)
    except ValidationError as exc:
        raise JobApiError(f"not a job status answer: {exc.errors()[0]['msg']}") from exc


class JobApiClient:
    """Base URL and headers (an API key) come from an Airflow HTTP connection."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        # Never follow a redirect: httpx would resend the API key to wherever the answer points.
        self._http = httpx.Client(base_url=base_url.rstrip("/") + "/", headers=headers, timeout=timeout,
                                  transport=transport, follow_redirects=False)
        self._scrub = SecretScrubber(headers.values())

    def close(self) -> None:
        self._http.close()

    def submit(self, items: list[dict[str, Any]]) -> str:
        response = self._call("POST", "jobs", json={"items": items})
        job_id = response.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise JobApiError("the job service answered a submit without a job_id")
        return job_id

    def state(self, job_id: str) -> JobState:
        return parse_job_state(self._call("GET", f"jobs/{job_id}"))

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            # Not chained: the cause's own text would be printed unscrubbed under the traceback.
            raise JobApiError(self._scrub.text(f"{method} {path}: {type(exc).__name__}: {exc}")) from None
        if 300 <= response.status_code < 400:
            where = redirect_origin(str(response.url), response.headers.get("location"))
            raise JobApiError(f"{method} {path}: HTTP {response.status_code} redirected to {where}, not followed")
        if not response.is_success:
            # Scrubbed before it is cut: a cut through a secret would leave a prefix no pattern matches.
            raise JobApiError(f"{method} {path}: HTTP {response.status_code} {self._scrub.text(response.text)[:300]}")
        try:
            # What the service sends back (a job's error, a result) is scrubbed before anyone logs or stores it.
            return self._scrub.json(response.json())
        except ValueError as exc:
            raise JobApiError(f"{method} {path}: the answer is not JSON") from exc
