"""The rate budget a task's workers share: in flight, spacing from usage, holds and stops."""

from __future__ import annotations

import threading

import pytest

from socialsync.extract.budget import HEADROOM, RateBudget
from socialsync.networks.base import AuthError, QuotaExhaustedError


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _budget(clock: FakeClock, **options: object) -> RateBudget:
    return RateBudget(clock=clock, sleep=clock.sleep, **options)  # type: ignore[arg-type]


def test_below_the_slow_down_mark_requests_start_at_once() -> None:
    clock = FakeClock()
    budget = _budget(clock)
    budget.observe_usage(79)
    for _ in range(5):
        with budget.slot():
            pass
    assert clock.now == 100.0 and budget.paused_s == 0


def test_past_the_mark_starts_are_spaced_for_the_whole_task_growing_to_the_cap() -> None:
    clock = FakeClock()
    budget = _budget(clock, slow_down_at=80, max_pause_s=10.0)
    assert budget.spacing_for(80) == pytest.approx(0.5)  # a floor of 5% of the cap at the mark
    assert budget.spacing_for(90) == pytest.approx(5.0)
    assert budget.spacing_for(100) == budget.spacing_for(150) == pytest.approx(10.0)
    budget.observe_usage(90)
    starts = []
    for _ in range(3):
        with budget.slot():
            starts.append(clock.now)
    assert starts[1] - starts[0] == pytest.approx(5.0) and starts[2] - starts[1] == pytest.approx(5.0)


def test_a_hold_pauses_every_worker_until_the_api_said() -> None:
    clock = FakeClock()
    budget = _budget(clock)
    budget.hold(3.0, "HTTP 429")
    budget.hold(1.0, "an earlier, shorter answer")  # never shortens a longer hold
    with budget.slot():
        assert clock.now == pytest.approx(103.0)
    assert budget.holds == 1


def test_a_stop_fails_every_later_request_with_its_error() -> None:
    budget = RateBudget()
    quota = QuotaExhaustedError("quota spent; access returns in 3600s")
    budget.stop(quota)
    budget.stop(AuthError("ignored: the first stop is the reason"))
    with pytest.raises(QuotaExhaustedError) as raised, budget.slot():
        pass
    assert raised.value is quota and budget.stopped is quota


def test_no_more_than_max_in_flight_at_once() -> None:
    budget = RateBudget(max_in_flight=3)
    inside, most, lock = 0, 0, threading.Lock()
    release = threading.Event()

    def request() -> None:
        nonlocal inside, most
        with budget.slot():
            with lock:
                inside += 1
                most = max(most, inside)
            release.wait(0.2)
            with lock:
                inside -= 1

    workers = [threading.Thread(target=request) for _ in range(10)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert most == 3


def test_a_rate_cap_spaces_starts_per_second() -> None:
    budget = RateBudget(max_per_second=20)
    import time

    started = time.monotonic()
    for _ in range(30):
        with budget.slot():
            pass
    assert time.monotonic() - started >= 0.45  # 20 in the first second's window, 10 more after


def test_turns_given_before_a_hold_are_given_again_after_it_in_line() -> None:
    """Workers already waiting for their turn when a throttle answer comes do not all start the
    moment the hold ends: they take new turns after it, spaced as before."""
    clock = FakeClock()

    def sleep(seconds: float) -> None:  # another worker is answered 429 while this one waits its turn
        if not budget.holds:
            budget.hold(2.0, "HTTP 429")
        clock.sleep(seconds)

    budget = RateBudget(max_per_second=10, clock=clock, sleep=sleep)
    spacing = 1 / (10 * (1 - HEADROOM))
    starts = []
    for _ in range(3):
        with budget.slot():
            starts.append(clock.now)
    assert starts[0] == pytest.approx(100.0)
    assert starts[1] == pytest.approx(102.0)  # its turn (100 + spacing) fell inside the hold
    assert starts[2] - starts[1] == pytest.approx(spacing)  # not at the same instant as the one before


def test_a_rate_cap_keeps_headroom_for_the_jitter_between_start_and_arrival() -> None:
    clock = FakeClock()
    budget = _budget(clock, max_per_second=10)
    starts = []
    for _ in range(11):
        with budget.slot():
            starts.append(clock.now)
    # Eleven starts take more than a second: however late the first arrives, ten fit in any second.
    assert starts[-1] - starts[0] == pytest.approx(10 / (10 * (1 - HEADROOM)))
    assert starts[10] - starts[0] > 1.0 + HEADROOM
