"""One rate budget per network and credential, shared by every request a task has in flight."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate

from socialsync.networks.base import ApiError

log = logging.getLogger(__name__)

HEADROOM = 0.05  # share of a per-second budget left unspent, for the jitter between start and arrival
WAIT_STEP_S = 0.05  # how often a waiting worker looks again, so a stop is noticed promptly


class Allowance(Protocol):
    """How many more requests today's API quota leaves this task (shared with the other tasks)."""

    def take(self) -> ApiError | None:
        """One request's worth, or the error saying the day's budget is spent."""
        ...


class RateBudget:
    """What every worker of a task asks before each request, and tells after each answer.

    - at most ``max_in_flight`` requests at once, and at most ``max_per_second`` started per second;
    - the API's own usage report (``observe_usage``): past ``slow_down_at`` percent, request starts
      are spaced for the whole task (growing to ``max_pause_s`` apart at 100%), not per worker;
    - a throttle answer (``hold``) pauses every worker until the API said to come back, so one 429
      does not let the other workers keep hammering;
    - a spent quota or refused credentials (``stop``) make every later request fail at once with
      that error: the batch stops, cursors kept, instead of each worker finding out by itself.
    """

    def __init__(self, max_in_flight: int = 16, max_per_second: float | None = None, slow_down_at: int = 80,
                 max_pause_s: float = 30.0, headroom: float = HEADROOM, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.max_in_flight = max(1, max_in_flight)
        self.slow_down_at = slow_down_at
        self.max_pause_s = max_pause_s
        self._slots = threading.BoundedSemaphore(self.max_in_flight)
        self._limiter = (Limiter(InMemoryBucket([Rate(max(1, round(max_per_second)), Duration.SECOND)]))
                         if max_per_second else None)
        # Starts are also spaced evenly: a per-second window alone lets a whole second's allowance go at
        # once, which an API counting any sliding second refuses. The spacing keeps ``headroom`` of the
        # budget spare: requests reach the API a little later or earlier than they start (a thread
        # scheduled late, a connection opened), and a start exactly 1/rate apart would be counted in
        # the same second as the one ``rate`` before it.
        self._min_spacing = 1.0 / (max_per_second * (1 - headroom)) if max_per_second else 0.0
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep
        self._paused_until = 0.0
        self._next_start = 0.0
        self._stopped: ApiError | None = None
        self.allowance: Allowance | None = None  # the day's quota, when the task has one to keep to
        self.usage_percent = 0
        self.paused_s = 0.0  # time workers spent held by throttling or usage, summed over workers
        self.holds = 0

    @classmethod
    def from_options(cls, options: Mapping[str, Any], default_in_flight: int) -> RateBudget:
        """The budget a connection's extras describe: ``max_in_flight``, ``max_requests_per_second``,
        ``slow_down_at_percent``, ``max_pause_s``."""
        per_second = options.get("max_requests_per_second")
        return cls(max_in_flight=int(options.get("max_in_flight", default_in_flight)),
                   max_per_second=float(per_second) if per_second else None,
                   slow_down_at=int(options.get("slow_down_at_percent", 80)),
                   max_pause_s=float(options.get("max_pause_s", 30.0)))

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one request slot while a request is in flight."""
        self._wait_turn()
        self._slots.acquire()
        try:
            self._raise_if_stopped()
            spent = self.allowance.take() if self.allowance is not None else None
            if spent is not None:  # no request past the day's budget: the jobs stop partial, to resume
                self.stop(spent)
                raise spent
            yield
        finally:
            self._slots.release()

    def _wait_turn(self) -> None:
        self._raise_if_stopped()
        with self._lock:
            start = self._reserve()
        while True:
            with self._lock:
                if self._paused_until > start:
                    # Held after this turn was given: take a new one after the hold, in line with the
                    # others, so the held workers do not all start together the moment it ends.
                    start = self._reserve()
            left = start - self._clock()
            if left <= 0:
                break
            self.paused_s += min(left, WAIT_STEP_S)
            self._sleep(min(left, WAIT_STEP_S))
            self._raise_if_stopped()
        if self._limiter is not None:
            self._limiter.try_acquire("requests")

    def _reserve(self) -> float:
        """The next start time (under the lock): usage spacing applies to the task, not to each worker."""
        now = self._clock()
        spacing = max(self.spacing_for(self.usage_percent), self._min_spacing)
        start = max(now, self._paused_until, self._next_start if spacing else now)
        self._next_start = start + spacing
        return start

    def _raise_if_stopped(self) -> None:
        if self._stopped is not None:
            raise self._stopped

    def spacing_for(self, usage_percent: int) -> float:
        if usage_percent < self.slow_down_at:
            return 0.0
        share = (min(usage_percent, 100) - self.slow_down_at) / max(1, 100 - self.slow_down_at)
        return self.max_pause_s * max(share, 0.05)

    def observe_usage(self, usage_percent: int) -> None:
        if usage_percent >= self.slow_down_at and usage_percent != self.usage_percent:
            log.info("API usage at %s%% of quota: requests now start %.2fs apart", usage_percent,
                     self.spacing_for(usage_percent))
        self.usage_percent = usage_percent

    def hold(self, seconds: float, reason: str) -> None:
        """The API asked to slow down: no worker starts a request for ``seconds``."""
        with self._lock:
            until = self._clock() + max(0.0, seconds)
            if until > self._paused_until:
                self._paused_until = until
                self.holds += 1
                log.warning("throttled (%s): every request of this task waits %.1fs", reason, seconds)

    def stop(self, error: ApiError) -> None:
        """Every later request fails with ``error`` (a spent quota, refused credentials)."""
        with self._lock:
            if self._stopped is None:
                self._stopped = error

    @property
    def stopped(self) -> ApiError | None:
        return self._stopped
