"""A hostile HTTP reverse proxy (and a foreign-origin recorder) that tests put in front of the sandbox."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Self

import httpx

# Never forwarded either way: they describe one hop, and we re-frame every answer ourselves. Host is kept, as a
# reverse proxy preserving the host would, so URLs the upstream builds (paging.next) point back at the proxy.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                         "transfer-encoding", "upgrade", "content-length", "content-encoding"})
_FORWARDING = frozenset({"trickle", "truncate", "rewrite"})
ACTIONS = frozenset({"reset", "stall", "redirect", "status", *_FORWARDING})


@dataclass
class RequestInfo:
    """One request as received; ``action`` is what the proxy did to it (None: forwarded untouched)."""

    method: str
    path: str
    query: str  # raw, still percent-encoded, without the "?"
    headers: httpx.Headers
    action: str | None = None
    body: bytes = b""
    at: float = field(default_factory=time.monotonic)  # when it was received (time.monotonic)


@dataclass
class Rule:
    """What to do to requests whose "METHOD /path?query" matches ``match``; the first rule that applies wins."""

    match: str
    action: str  # "reset" | "stall" | "trickle" | "redirect" | "truncate" | "rewrite" | "status"
    times: int | None = None
    skip: int = 0
    stall_s: float = 60.0
    trickle_every_s: float = 0.5
    trickle_phase: str = "body"  # "headers": the status line trickles too; "body": headers at once
    redirect_to: str = ""
    truncate_at: int = 10
    rewrite: Callable[[Any, RequestInfo], Any] | None = None  # also applied before trickle/truncate when set
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)  # extra headers for "status" and "redirect" answers
    forward: bool = False  # reset/stall: forward upstream first, so the upstream acts but the client never hears
    seen: int = field(default=0, init=False, compare=False)  # matching requests that reached this rule
    applied: int = field(default=0, init=False, compare=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}")


def _frame(status: int, headers: list[tuple[str, str]], body: bytes, *, length: int | None = None,
           close: bool = False) -> tuple[bytes, bytes]:
    """Status line and headers, then the body; ``length`` lets truncate announce more than it sends."""
    reason = next((known.phrase for known in HTTPStatus if known == status), "")
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers if name.lower() not in _HOP_BY_HOP]
    lines += [f"content-length: {len(body) if length is None else length}",
              f"connection: {'close' if close else 'keep-alive'}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), body


async def _read_request(reader: asyncio.StreamReader) -> RequestInfo | None:
    """One hand-parsed HTTP/1.1 request (Content-Length bodies only); None when the client hung up between requests."""
    line = await reader.readline()
    if not line.strip():
        return None
    method, target, _ = line.decode("latin-1").strip().split(" ", 2)
    pairs: list[tuple[str, str]] = []
    while (raw := await reader.readline()).strip():
        name, _, value = raw.decode("latin-1").partition(":")
        pairs.append((name.strip(), value.strip()))
    headers = httpx.Headers(pairs)
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    path, _, query = target.partition("?")
    return RequestInfo(method, path, query, headers, body=body)


class _LoopServer:
    """An asyncio server on 127.0.0.1 in its own thread and loop; subclasses answer one request at a time."""

    def __init__(self) -> None:
        # Bound now so .url is known before the thread starts; asyncio listens on it later.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.requests: list[RequestInfo] = []
        self.connections = 0  # accepted connections: proves keep-alive reuse
        self.errors: list[Exception] = []  # our own bugs (or a rewrite's), which a client only sees as a hang-up
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),), daemon=True,
                                        name=type(self).__name__)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._serve, sock=self._socket)
        self._ready.set()
        await self._stop.wait()
        server.close()
        # Cancelling the connection tasks is what makes exit prompt during a stall or a trickle.
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._aclose()
        await asyncio.wait_for(server.wait_closed(), 2)

    async def _aclose(self) -> None:
        pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            while (request := await _read_request(reader)) is not None:
                self.requests.append(request)
                if not await self._answer(request, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away mid-request
        except asyncio.CancelledError:
            pass  # our own shutdown; re-raised, asyncio's stream callback would log it as an error
        except Exception as exc:
            self.errors.append(exc)
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _answer(self, request: RequestInfo, writer: asyncio.StreamWriter) -> bool:
        """Write the answer; return whether the connection stays open for another request."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    def __exit__(self, *_: Any) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        self._loop.close()


class HostileProxy(_LoopServer):
    """Forwards to ``upstream_url`` except where a rule in ``.rules`` says to misbehave."""

    def __init__(self, upstream_url: str) -> None:
        super().__init__()
        self.upstream = upstream_url.rstrip("/")
        self.rules: list[Rule] = []
        self._lock = threading.Lock()
        self._client: httpx.AsyncClient | None = None

    def hits(self, rule: Rule) -> int:
        return rule.applied

    def _choose(self, request: RequestInfo) -> Rule | None:
        target = f"{request.method} {request.path}" + (f"?{request.query}" if request.query else "")
        with self._lock:  # the test thread may be appending or clearing rules meanwhile
            for rule in list(self.rules):
                if not re.search(rule.match, target):
                    continue
                rule.seen += 1
                if rule.seen > rule.skip and (rule.times is None or rule.applied < rule.times):
                    rule.applied += 1
                    return rule
        return None

    async def _forward(self, request: RequestInfo) -> tuple[int, list[tuple[str, str]], bytes]:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False, timeout=30)
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() not in _HOP_BY_HOP]
        url = self.upstream + request.path + (f"?{request.query}" if request.query else "")
        try:
            response = await self._client.request(request.method, url, headers=headers, content=request.body)
        except httpx.TransportError as exc:
            return 502, [("content-type", "text/plain")], f"upstream: {exc!r}".encode()
        # .content is already decoded, hence content-encoding is dropped with the hop-by-hop headers.
        return response.status_code, list(response.headers.multi_items()), response.content

    async def _aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def _answer(self, request: RequestInfo, writer: asyncio.StreamWriter) -> bool:
        rule = self._choose(request)
        request.action = rule.action if rule else None
        close = request.headers.get("connection", "").lower() == "close"
        if rule is None or rule.action in _FORWARDING or rule.forward:
            status, headers, body = await self._forward(request)
            if rule is not None and rule.rewrite is not None:
                payload = rule.rewrite(json.loads(body), request)
                body = json.dumps(payload, separators=(",", ":")).encode()
        if rule is None or rule.action == "rewrite":
            await _send(writer, *_frame(status, headers, body, close=close))
        elif rule.action == "reset":
            # With linger 0 the kernel answers the close with a RST: the client sees ECONNRESET, not a clean EOF.
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        elif rule.action == "stall":
            await asyncio.sleep(rule.stall_s)
            return False
        elif rule.action == "trickle":
            head, body = _frame(status, headers, body, close=close)
            if rule.trickle_phase == "body":
                await _send(writer, head)
            data = head + body if rule.trickle_phase == "headers" else body
            for i in range(len(data)):
                await asyncio.sleep(rule.trickle_every_s)
                await _send(writer, data[i:i + 1])
        elif rule.action == "redirect":
            location = rule.redirect_to + request.path + (f"?{request.query}" if request.query else "")
            await _send(writer, *_frame(302, [("location", location), *rule.headers.items()], b"", close=close))
        elif rule.action == "truncate":
            # The real length is announced, then the connection dies mid-body.
            await _send(writer, *_frame(status, headers, body[:rule.truncate_at], length=len(body), close=True))
            return False
        else:  # "status"
            content = b"" if rule.body is None else json.dumps(rule.body).encode()
            extra = [("content-type", "application/json")] if content else []
            await _send(writer, *_frame(rule.status, [*extra, *rule.headers.items()], content, close=close))
        return not close


async def _send(writer: asyncio.StreamWriter, *chunks: bytes) -> None:
    for chunk in chunks:
        writer.write(chunk)
    await writer.drain()


class Recorder(_LoopServer):
    """A foreign origin: records every request and answers 200 with ``.body`` as JSON."""

    def __init__(self) -> None:
        super().__init__()
        self.body: Any = {"data": []}

    async def _answer(self, request: RequestInfo, writer: asyncio.StreamWriter) -> bool:
        content = json.dumps(self.body).encode()
        close = request.headers.get("connection", "").lower() == "close"
        await _send(writer, *_frame(200, [("content-type", "application/json")], content, close=close))
        return not close
