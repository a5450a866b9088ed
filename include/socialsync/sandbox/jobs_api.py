"""The ML and image-recognition services of seed 003: submit items -> job_id, then poll the job."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from socialsync.sandbox.analysis import analyze_text, recognize_media

MAX_ITEMS_PER_JOB = 20_000


@dataclass
class _Job:
    id: str
    items: list[dict[str, Any]]
    submitted: float
    fails: bool
    result: list[dict[str, Any]] | None = field(default=None)


def _text_result(item: dict[str, Any]) -> dict[str, Any]:
    return analyze_text(str(item["id"]), str(item["text"]))


def _media_result(item: dict[str, Any]) -> dict[str, Any]:
    return recognize_media(str(item["id"]), str(item["type"]), str(item["url"]))


class JobService:
    """One async job API (``ml`` analyses texts, ``vision`` recognises photos and videos)."""

    def __init__(self, kind: str, api_key: str, job_seconds: float, failure_rate: float,
                 counters: Counter[str], seed: int = 0, latency_s: float = 0.0) -> None:
        self.kind = kind
        self.api_key = api_key
        self.job_seconds = job_seconds
        self.failure_rate = failure_rate
        self.counters = counters
        self.latency_s = latency_s
        self._seed = seed
        self._jobs: dict[str, _Job] = {}
        self._sequence = itertools.count(1)
        self._required = ("id", "text") if kind == "ml" else ("id", "type", "url")
        self._analyze: Callable[[dict[str, Any]], dict[str, Any]] = (
            _text_result if kind == "ml" else _media_result)

    def routes(self) -> list[Route]:
        return [Route("/jobs", self.submit, methods=["POST"]),
                Route("/jobs/{job_id}", self.status, methods=["GET"])]

    def _refuse(self, request: Request) -> JSONResponse | None:
        if request.headers.get("x-api-key") != self.api_key:
            self.counters[f"{self.kind}:unauthorized"] += 1
            return JSONResponse({"error": {"code": "unauthorized", "message": "missing or invalid X-Api-Key"}},
                                status_code=401)
        return None

    async def submit(self, request: Request) -> JSONResponse:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        refused = self._refuse(request)
        if refused:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return _invalid("body is not JSON")
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            return _invalid("'items' must be a non-empty list")
        if len(items) > MAX_ITEMS_PER_JOB:
            return _invalid(f"at most {MAX_ITEMS_PER_JOB} items a job, got {len(items)}")
        for n, item in enumerate(items):
            if not isinstance(item, dict) or any(not isinstance(item.get(k), str) for k in self._required):
                return _invalid(f"items[{n}] needs string fields {', '.join(self._required)}")
        seq = next(self._sequence)
        fails = random.Random(f"{self._seed}/{self.kind}/{seq}").random() < self.failure_rate
        job = _Job(id=f"{self.kind}-{seq:08d}", items=items, submitted=time.monotonic(), fails=fails)
        self._jobs[job.id] = job
        self.counters[f"{self.kind}:submit"] += 1
        return JSONResponse({"job_id": job.id, "status": "pending", "items": len(items)}, status_code=202)

    async def status(self, request: Request) -> JSONResponse:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        refused = self._refuse(request)
        if refused:
            return refused
        self.counters[f"{self.kind}:poll"] += 1
        job = self._jobs.get(request.path_params["job_id"])
        if job is None:
            return JSONResponse({"error": {"code": "not_found", "message": "no such job"}}, status_code=404)
        elapsed = time.monotonic() - job.submitted
        body: dict[str, Any] = {"job_id": job.id, "items": len(job.items)}
        if elapsed < self.job_seconds / 3:
            body["status"] = "pending"
        elif elapsed < self.job_seconds:
            body["status"] = "processing"
        elif job.fails:
            body.update(status="failed", error={"code": "model_error", "message": "inference backend crashed"})
        else:
            if job.result is None:
                job.result = [self._analyze(item) for item in job.items]
            body.update(status="done", result={"items": job.result})
        return JSONResponse(body)


def _invalid(message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": "invalid_request", "message": message}}, status_code=422)
