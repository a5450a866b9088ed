"""A real PostgreSQL server for the suite: initdb + pg_ctl on 127.0.0.1, as the postgres user if root."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def _bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    return Path(candidates[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresInstance:
    """A running throwaway server: its ``warehouse`` database's URL, and pg_ctl on its data directory."""

    url: str
    _pg_ctl: Callable[..., subprocess.CompletedProcess[str]]

    def restart(self, mode: str = "immediate") -> None:
        """``pg_ctl restart -m <mode>``: ``immediate`` drops every connection without a checkpoint, as a crash
        or a failover does; returns once the server accepts connections again."""
        self._pg_ctl("-m", mode, "-w", "-t", "60", "restart")


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throwaway server; yields a SQLAlchemy URL of its ``warehouse`` database."""
    with postgres_instance() as server:
        yield server.url


@contextmanager
def postgres_instance() -> Iterator[PostgresInstance]:
    """Start a throwaway server (its ``warehouse`` database made); stopped when the block ends."""
    bindir = _bindir()
    as_root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="socialsync-pg-"))
    prefix: list[str] = []
    if as_root:  # initdb refuses to run as root
        user = pwd.getpwnam("postgres")
        os.chown(base, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", _free_port()
    run = lambda *cmd: subprocess.run([*prefix, *cmd], check=True, capture_output=True, text=True)  # noqa: E731
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off -c full_page_writes=off"
    pg_ctl = lambda *args: run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options,  # noqa: E731
                               "-l", str(base / "server.log"), *args)
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        pg_ctl("-w", "-t", "60", "start")
        try:
            run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "warehouse")
            yield PostgresInstance(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/warehouse", pg_ctl)
        finally:
            pg_ctl("-m", "fast", "-w", "stop")
    except subprocess.CalledProcessError as exc:
        log = (base / "server.log").read_text() if (base / "server.log").exists() else ""
        raise RuntimeError(f"{exc.cmd[len(prefix)]} failed: {exc.stderr}\n{log[-2000:]}") from exc
    finally:
        time.sleep(0.1)
        shutil.rmtree(base, ignore_errors=True)
