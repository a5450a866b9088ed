"""The sandbox server: the Graph API, the YouTube Data API, the TikTok Research API and both job services."""

from __future__ import annotations

import argparse
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from socialsync.sandbox.dataset import Dataset, DatasetSpec
from socialsync.sandbox.faults import FAULT_KINDS, FaultPlan
from socialsync.sandbox.graph_api import GraphApi, UsageMeter
from socialsync.sandbox.instagram_dataset import InstagramDataset
from socialsync.sandbox.jobs_api import JobService
from socialsync.sandbox.tiktok_api import TikTokApi
from socialsync.sandbox.tiktok_dataset import TikTokDataset
from socialsync.sandbox.youtube_api import YouTubeApi
from socialsync.sandbox.youtube_dataset import YouTubeDataset

DEFAULT_PORT = 8090


@dataclass
class SandboxConfig:
    """What the sandbox serves and how it behaves. Tokens here are the sandbox's own, not secrets."""

    spec: DatasetSpec = field(default_factory=DatasetSpec)
    access_token: str = "sandbox-token"
    api_key: str = "sandbox-key"
    latency_ms: float = 0.0
    job_seconds: float = 2.0
    job_failure_rate: float = 0.0
    calls_per_hour: int = 1_000_000
    youtube_units_per_day: int = 1_000_000
    tiktok_client_key: str = "sandbox-client"
    tiktok_client_secret: str = "sandbox-secret"
    tiktok_token_ttl_s: int = 7200
    tiktok_requests_per_day: int = 1_000_000  # TikTok grants 1,000
    tiktok_records_per_day: int = 100_000_000  # TikTok grants 100,000
    tiktok_echo_token: bool = True  # repeat the bad token in 401 messages, so clients must scrub them
    faults: FaultPlan = field(default_factory=FaultPlan)
    epoch: int = 0
    # Graph token -> the profile indexes it manages (the first is its app user). None: ``access_token``
    # manages every profile but the public-only ones.
    instagram_tokens: dict[str, list[int]] | None = None


def build_app(config: SandboxConfig) -> Starlette:
    counters: Counter[str] = Counter()
    dataset = Dataset(config.spec, epoch=config.epoch)
    instagram = InstagramDataset(dataset)
    latency = config.latency_ms / 1000
    graph = GraphApi(dataset, config.access_token, UsageMeter(config.calls_per_hour), counters, latency,
                     config.faults, instagram=instagram, tokens=config.instagram_tokens)
    services = {kind: JobService(kind, config.api_key, config.job_seconds, config.job_failure_rate,
                                 counters, seed=config.spec.seed, latency_s=latency)
                for kind in ("ml", "vision")}
    youtube = YouTubeApi(YouTubeDataset(dataset), config.api_key, counters, config.youtube_units_per_day, latency,
                         config.faults)
    tiktok = TikTokApi(TikTokDataset(dataset), config.tiktok_client_key, config.tiktok_client_secret, counters,
                       token_ttl_s=config.tiktok_token_ttl_s, requests_per_day=config.tiktok_requests_per_day,
                       records_per_day=config.tiktok_records_per_day, latency_s=latency, faults=config.faults,
                       echo_token=config.tiktok_echo_token)

    async def stats(_: Request) -> JSONResponse:
        return JSONResponse({"requests": dict(counters), "epoch": dataset.epoch, "totals": dataset.totals(),
                             "youtube_totals": youtube.data.totals(), "tiktok_totals": tiktok.data.totals()})

    async def control(request: Request) -> JSONResponse:
        """Test and demo controls: the dataset's day, the quotas, the fault rate, the latency, the jobs' length."""
        body = await request.json()
        if "epoch" in body and int(body["epoch"]) != dataset.epoch:
            dataset.epoch = int(body["epoch"])
            youtube.reset_day()  # a new day of the dataset is a new quota day
            tiktok.reset_day()
        if "youtube_units_per_day" in body:
            youtube.reset_day(int(body["youtube_units_per_day"]))
        if "tiktok_requests_per_day" in body or "tiktok_records_per_day" in body:
            allowances = [body.get(name) for name in ("tiktok_requests_per_day", "tiktok_records_per_day")]
            tiktok.reset_day(*(None if value is None else int(value) for value in allowances))
        if "tiktok_research_scope" in body:
            tiktok.research_scope = bool(body["tiktok_research_scope"])
        if "calls_per_hour" in body:
            graph.usage.reset(int(body["calls_per_hour"]))
        if "fault_rate" in body:
            graph.faults.rate = float(body["fault_rate"])
        if "latency_ms" in body:  # every API's answers, the job services' included
            latency_s = float(body["latency_ms"]) / 1000
            graph.latency_s = youtube.latency_s = tiktok.latency_s = latency_s
            for service in services.values():
                service.latency_s = latency_s
        if "job_seconds" in body:
            for service in services.values():
                service.job_seconds = float(body["job_seconds"])
        return JSONResponse({"epoch": dataset.epoch, "calls_per_hour": graph.usage.calls_per_hour,
                             "fault_rate": graph.faults.rate, "latency_ms": graph.latency_s * 1000,
                             "job_seconds": services["ml"].job_seconds, "youtube_units_per_day": youtube.units_per_day,
                             "tiktok_requests_per_day": tiktok.requests_per_day,
                             "tiktok_records_per_day": tiktok.records_per_day})

    app = Starlette(routes=[
        Route("/_sandbox/stats", stats),
        Route("/_sandbox/control", control, methods=["POST"]),
        Mount("/ml/v1", routes=services["ml"].routes()),
        Mount("/vision/v1", routes=services["vision"].routes()),
        Mount("/youtube/v3", routes=youtube.routes()),  # before the catch-all Graph route
        Mount("/tiktok/v2", routes=tiktok.routes()),
        Route("/{path:path}", graph.handle, methods=["GET"]),
    ])
    app.state.counters = counters
    app.state.dataset = dataset
    app.state.graph = graph
    app.state.instagram = instagram
    app.state.youtube = youtube
    app.state.tiktok = tiktok
    return app


class SandboxServer:
    """Runs the sandbox in a background thread on 127.0.0.1 (tests, the demo, benchmarks)."""

    def __init__(self, config: SandboxConfig | None = None, port: int = 0) -> None:
        self.config = config or SandboxConfig()
        self.app = build_app(self.config)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self.port = self._socket.getsockname()[1]
        # log_config=None: the host process (a test, the demo, the bench) owns logging configuration.
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False,
                                                     log_config=None, timeout_graceful_shutdown=1))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        daemon=True, name="sandbox")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def counters(self) -> Counter[str]:
        counters: Counter[str] = self.app.state.counters
        return counters

    def __enter__(self) -> SandboxServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: Any) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the socialsync sandbox (on 127.0.0.1 unless --host).")
    parser.add_argument("--host", default="127.0.0.1",
                        help="the address to listen on: 0.0.0.0 in a container, for the other services")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--seed", type=int, default=DatasetSpec.seed)
    parser.add_argument("--profiles", type=int, default=DatasetSpec.profiles)
    parser.add_argument("--posts-median", type=int, default=DatasetSpec.posts_median)
    parser.add_argument("--posts-max", type=int, default=DatasetSpec.posts_max)
    parser.add_argument("--comments-median", type=int, default=DatasetSpec.comments_median)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--job-seconds", type=float, default=2.0)
    parser.add_argument("--job-failure-rate", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0, help=f"share of requests failed with {FAULT_KINDS}")
    parser.add_argument("--calls-per-hour", type=int, default=1_000_000, help="the app's Graph quota")
    parser.add_argument("--youtube-units-per-day", type=int, default=1_000_000, help="the YouTube quota")
    parser.add_argument("--tiktok-requests-per-day", type=int, default=1_000_000, help="the TikTok request quota")
    parser.add_argument("--tiktok-records-per-day", type=int, default=100_000_000, help="the TikTok record quota")
    args = parser.parse_args(argv)
    spec = DatasetSpec(seed=args.seed, profiles=args.profiles, posts_median=args.posts_median,
                       posts_max=args.posts_max, comments_median=args.comments_median)
    config = SandboxConfig(spec=spec, latency_ms=args.latency_ms, job_seconds=args.job_seconds,
                           job_failure_rate=args.job_failure_rate, calls_per_hour=args.calls_per_hour,
                           youtube_units_per_day=args.youtube_units_per_day,
                           tiktok_requests_per_day=args.tiktok_requests_per_day,
                           tiktok_records_per_day=args.tiktok_records_per_day,
                           faults=FaultPlan(rate=args.fault_rate, seed=args.seed))
    print(f"socialsync sandbox on http://{args.host}:{args.port} ({spec.profiles} profiles)", flush=True)
    uvicorn.run(build_app(config), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
