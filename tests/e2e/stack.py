"""Shared by the e2e tests: a free loopback port, and waiting on a condition with the components' log tails."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(what: str, check: Any, logs: Path, timeout: float = 240) -> Any:
    """``check()``'s first truthy value; on timeout, fails with the tail of every ``logs/*.log``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1)
    tails = {p.name: p.read_text(errors="replace")[-3000:] for p in sorted(logs.glob("*.log"))}
    raise AssertionError(f"timed out waiting for {what}; logs:\n" + "\n".join(f"== {k}\n{v}" for k, v in tails.items()))
