"""A day's API budget shared by tasks: never more handed out than the day has, the unused given back."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from socialsync.extract.budget import RateBudget
from socialsync.networks.base import QuotaExhaustedError
from socialsync.networks.youtube import NETWORK as YOUTUBE
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.schema import api_usage
from socialsync.storage.usage import DailyAllowance

NOON = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # noon Pacific: one quota day


def test_tasks_sharing_a_day_never_take_more_than_it_has_and_give_back_what_they_did_not_use(
        tmp_path: Path) -> None:
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'w.db'}")
    allowances = [DailyAllowance(engine, YOUTUBE, 95, clock=lambda: NOON) for _ in range(4)]
    taken = [0] * 4

    def task(n: int) -> None:
        while allowances[n].take() is None:
            taken[n] += 1

    threads = [threading.Thread(target=task, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(taken) == 95  # every unit of the day, and not one more
    error = allowances[0].take()
    assert isinstance(error, QuotaExhaustedError) and "95 units is spent" in str(error)
    assert error.retry_after is not None and 0 < error.retry_after <= 12 * 3600  # midnight Pacific
    for n, allowance in enumerate(allowances):  # each task sent fewer requests than it took
        allowance.settle(max(0, taken[n] - 2), 0.0)
    with engine.connect() as conn:
        assert conn.scalar(select(func.sum(api_usage.c.units))) == sum(max(0, t - 2) for t in taken)
    engine.dispose()


def test_a_budget_with_a_spent_allowance_refuses_the_request_and_stops_the_task(tmp_path: Path) -> None:
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'w.db'}")
    budget = RateBudget(max_in_flight=2)
    budget.allowance = DailyAllowance(engine, YOUTUBE, 3, clock=lambda: NOON)
    sent = 0
    try:
        for _ in range(5):
            with budget.slot():
                sent += 1
    except QuotaExhaustedError:
        pass
    assert sent == 3 and isinstance(budget.stopped, QuotaExhaustedError)
    engine.dispose()


def test_a_records_grant_of_its_own_moves_the_records_limit(tmp_path: Path) -> None:
    """TikTok counts records too (100,000 a day); a connection's ``quota_records`` says what a project's grant
    is. Past it the allowance refuses the next reservation, as it does past the day's records by default."""
    from socialsync.networks.tiktok import NETWORK as TIKTOK

    engine = warehouse_engine(f"sqlite:///{tmp_path / 'w.db'}")
    seen = [150_000.0]
    default = DailyAllowance(engine, TIKTOK, 1_000_000, lambda: seen[0], clock=lambda: NOON)
    assert isinstance(default.take(), QuotaExhaustedError)
    granted = DailyAllowance(engine, TIKTOK, 1_000_000, lambda: seen[0], clock=lambda: NOON, records=200_000)
    assert granted.take() is None
    seen[0] = 200_000.0
    while granted.taken < granted.reserved:
        assert granted.take() is None
    assert isinstance(granted.take(), QuotaExhaustedError)
    engine.dispose()
