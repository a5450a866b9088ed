"""Request pacing: a fixed rate cap (pyrate-limiter) and a slow-down read from the API's usage headers."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pyrate_limiter import Duration, Limiter, Rate

log = logging.getLogger(__name__)


class RequestPacer:
    """Call ``before_request`` before every call and ``observe`` with the usage each answer reports.

    Past ``slow_down_at`` percent of the quota, pauses grow linearly to ``max_pause_s`` at 100%,
    so a sync backs off before the API starts refusing calls.
    """

    def __init__(self, max_per_second: int | None = None, slow_down_at: int = 80, max_pause_s: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._limiter = Limiter(Rate(max_per_second, Duration.SECOND)) if max_per_second else None
        self.slow_down_at = slow_down_at
        self.max_pause_s = max_pause_s
        self.usage_percent = 0
        self.paused_s = 0.0
        self._sleep = sleep

    def observe(self, usage_percent: int) -> None:
        self.usage_percent = usage_percent

    def pause_for(self, usage_percent: int) -> float:
        if usage_percent < self.slow_down_at:
            return 0.0
        share = (min(usage_percent, 100) - self.slow_down_at) / max(1, 100 - self.slow_down_at)
        return self.max_pause_s * max(share, 0.05)

    def before_request(self) -> None:
        if self._limiter is not None:
            self._limiter.try_acquire("api")
        pause = self.pause_for(self.usage_percent)
        if pause:
            log.info("API usage at %s%% of quota: pausing %.2fs", self.usage_percent, pause)
            self.paused_s += pause
            self._sleep(pause)
