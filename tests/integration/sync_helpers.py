"""Test shorthands over ``socialsync.local.inline`` (a whole sync without Airflow)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
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
__all__ = ["INSTAGRAM", "SCOPE", "app_user", "checksums", "client_for", "clock", "day", "graph_entity", "kill_when",
           "open_batch", "sync", "tracked_ids"]


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
