"""Test shorthands over ``socialsync.local.inline`` (a whole sync without Airflow)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote

from sqlalchemy import Engine

from socialsync.local import inline
from socialsync.local.inline import SCOPE, checksums, clock
from socialsync.networks import get_network
from socialsync.networks.base import ApiCredentials
from socialsync.networks.instagram.client import InstagramClient
from socialsync.sandbox.dataset import REFERENCE_NOW, Dataset
from socialsync.sandbox.instagram_dataset import InstagramDataset
from socialsync.sandbox.server import SandboxServer
from socialsync.storage import jobs as bookkeeping
from tests.hostile import RequestInfo

INSTAGRAM = get_network("instagram")
__all__ = ["INSTAGRAM", "SCOPE", "StatsdListener", "app_user", "checksums", "client_for", "clock", "day",
           "graph_entity", "kill_when", "open_batch", "sync", "tracked_ids"]


def day(n: int) -> datetime:
    """The run time ``n`` days after the sandbox's reference time (its epoch ``n`` starts then)."""
    return REFERENCE_NOW + timedelta(days=n)


def client_for(sandbox: Any, token: str = "sandbox-token", **options: object) -> InstagramClient:
    """A client of ``token`` (the sandbox's default), whose app user (for business discovery) is the
    first account the token manages."""
    # Five replies inline (Graph's own default): threads past them exercise the /replies pages.
    settings: dict[str, object] = {"page_size": 10, "inline_replies": 5, "backoff_s": 0.01, "max_wait_s": 2.0}
    settings.update(options)
    if "ig_user_id" not in settings:
        settings["ig_user_id"] = app_user(sandbox, token)
    return InstagramClient(ApiCredentials(f"{sandbox.url}/v21.0", token, settings))


def app_user(sandbox: SandboxServer, token: str = "sandbox-token") -> str:
    """The IG account id of ``token``'s app user: the first account it manages."""
    return str(sandbox.app.state.graph.app_user_id(token))


def tracked_ids(dataset: Dataset) -> list[str]:
    """Every Instagram account of the dataset as a deployment tracks it: an owned one by id, a public one
    by @username."""
    return InstagramDataset(dataset).tracked_ids()


def open_batch(engine: Engine, entity_ids: list[str], run_id: str, as_of: datetime,
               **cursor: object) -> list[bookkeeping.JobRef]:
    return inline.open_batch(engine, "instagram", entity_ids, run_id, as_of, **cursor)


def sync(engine: Engine, client: InstagramClient, entity_ids: list[str], run_id: str, as_of: datetime,
         **window: Any) -> dict[str, int]:
    return inline.sync(engine, INSTAGRAM, client, entity_ids, run_id, as_of, **window)


def kill_when(script: str, args: list[str], cwd: Any, reached: Callable[[], bool], timeout: float = 60) -> None:
    """Run ``script`` (a task's body) in a child Python and ``kill -9`` it the moment ``reached()`` holds.

    The child must still be running then: one that finished first proves nothing about a kill.
    """
    child = subprocess.Popen([sys.executable, "-c", script, *args], cwd=cwd)
    try:
        deadline = time.monotonic() + timeout
        while not reached():
            assert child.poll() is None, "the child ended before it could be killed"
            assert time.monotonic() < deadline, f"not reached within {timeout:.0f}s"
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def graph_entity(request: RequestInfo) -> str:
    """The tracked entity a request works for: a business discovery names its account's username."""
    found = re.search(r"business_discovery\.username\(([^)]+)\)", unquote(request.query))
    if found:
        return "@" + found.group(1)
    return request.path.removeprefix("/v21.0/").split("/")[0]


class StatsdListener:
    """A StatsD server on loopback (UDP) for Airflow's ``[metrics] statsd_on``: what the components and
    task processes sent, summed by metric name (Airflow's ``airflow.`` prefix left off)."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self._packets: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True, name="statsd")
        self._thread.start()

    @property
    def env(self) -> dict[str, str]:
        return {"AIRFLOW__METRICS__STATSD_ON": "True", "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
                "AIRFLOW__METRICS__STATSD_PORT": str(self._socket.getsockname()[1])}

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                self._packets.append(self._socket.recv(65_535))
            except TimeoutError:
                continue
            except OSError:
                return

    def _lines(self, kind: str) -> Iterator[tuple[str, float]]:
        time.sleep(0.5)  # what was sent last is in
        for packet in list(self._packets):
            for line in packet.decode(errors="replace").splitlines():
                name, _, rest = line.partition(":")
                value, _, rest = rest.partition("|")
                if rest.split("|")[0] == kind:
                    yield name.removeprefix("airflow."), float(value)

    def counters(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for name, value in self._lines("c"):
            totals[name] += int(value)
        return totals

    def gauges(self) -> dict[str, float]:
        return dict(self._lines("g"))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()
