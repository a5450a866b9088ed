"""Bounded retries with exponential backoff and jitter, honouring a server's Retry-After."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from socialsync.networks.base import ApiError

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_WAIT_S = 60.0


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ApiError) and exc.retryable


def _waiter(max_wait_s: float, backoff_s: float) -> Callable[[RetryCallState], float]:
    backoff = wait_exponential_jitter(initial=backoff_s, max=max_wait_s, jitter=backoff_s)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ApiError) and exc.retry_after is not None:
            return min(exc.retry_after, max_wait_s)  # the server said how long
        return float(backoff(state))

    return wait


def _log_retry(what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s failed (attempt %s): %s; retrying in %.1fs", what, state.attempt_number, exc, wait)

    return before_sleep


def call_with_retries(call: Callable[[], T], attempts: int, what: str, max_wait_s: float = MAX_WAIT_S,
                      backoff_s: float = 0.5) -> T:
    """Run ``call``; retry what the API marked retryable, at most ``attempts`` times in all."""
    retrying = Retrying(retry=retry_if_exception(_retryable), stop=stop_after_attempt(max(1, attempts)),
                        wait=_waiter(max_wait_s, backoff_s), reraise=True, before_sleep=_log_retry(what))
    return retrying(call)
