"""What the APIs' quotas allow: units spent per network and quota period, and what plan may admit.

Every extract task adds what its client spent (retries and refused calls included: the API charges
them) to the network's current quota period. ``plan`` reads what is left of the day's budget and
admits the most overdue profiles whose estimated cost fits; the rest stay due and, being more
overdue tomorrow, come first then.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, select, update

from socialsync.networks.base import ApiError, NetworkSpec, Quota, QuotaExhaustedError
from socialsync.storage.schema import api_usage, profiles, raw_pages, sync_jobs, tracked_entities
from socialsync.storage.upserts import dialect_insert

DAY = timedelta(days=1)
NEVER = datetime.min.replace(tzinfo=UTC)


def _seconds_to_next_day(quota: Quota, moment: datetime) -> float:
    return (_start_of(quota.timezone, DAY, moment) + DAY - moment).total_seconds()


def period_start(quota: Quota, moment: datetime) -> datetime:
    """The start of the quota period ``moment`` falls in (a day from midnight in the quota's zone, or an hour)."""
    return _start_of(quota.timezone, quota.per, moment)


def _start_of(timezone: str, per: timedelta, moment: datetime) -> datetime:
    local = moment.astimezone(ZoneInfo(timezone))
    if per >= DAY:
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        start = local.replace(minute=0, second=0, microsecond=0)
    return start.astimezone(moment.tzinfo)


def daily_budget(quota: Quota, units: float | None = None) -> float:
    """Units a day: an hourly quota gives a day 24 of its periods."""
    return (units if units is not None else quota.units) * (DAY / quota.per)


def record_spent(conn: Connection, network: str, quota: Quota, moment: datetime, units: float,
                 records: float = 0.0) -> None:
    """Add ``units`` (and ``records``) to the network's current period (one statement, safe against
    concurrent tasks); a negative amount gives back what a task reserved and did not use."""
    if not units and not records:
        return
    row = {"network": network, "period_start": period_start(quota, moment), "units": float(units),
           "records": float(records), "updated_at": moment}
    statement = dialect_insert(conn, api_usage).values(**row)
    conn.execute(statement.on_conflict_do_update(
        index_elements=[api_usage.c.network, api_usage.c.period_start],
        set_={"units": api_usage.c.units + statement.excluded.units,
              "records": api_usage.c.records + statement.excluded.records,
              "updated_at": statement.excluded.updated_at}))


def spent_today(conn: Connection, network: str, quota: Quota, moment: datetime) -> float:
    """Units spent since the start of the quota's day (its periods since then, for an hourly quota)."""
    return _today(conn, network, quota, moment)[0]


def _today(conn: Connection, network: str, quota: Quota, moment: datetime) -> tuple[float, float]:
    day = _start_of(quota.timezone, DAY, moment)
    units, records = conn.execute(select(func.coalesce(func.sum(api_usage.c.units), 0.0),
                                         func.coalesce(func.sum(api_usage.c.records), 0.0)).where(
        api_usage.c.network == network, api_usage.c.period_start >= day)).one()
    return float(units or 0.0), float(records or 0.0)


class DailyAllowance:
    """A task's share of today's quota, taken from ``api_usage`` a few units at a time.

    Every request takes one unit (each call these APIs charge costs one); when the task's reserve is
    used up it reserves more in one transaction that locks the period's row, so tasks running at the
    same time never hand out the same units twice. ``settle`` records what the task really spent
    (refused calls included) and gives back the rest. Past the day's units, or its records for an API
    that counts those, every request is refused with ``QuotaExhaustedError``: jobs end ``partial``.
    """

    CHUNK = 10.0  # the first reservation; later ones grow with what the task has taken (a quarter of it)
    MAX_CHUNK = 100.0  # and never past this, nor past a twentieth of the day: a busy task holds little spare

    def __init__(self, engine: Engine, network: NetworkSpec, units: float | None = None,
                 records_seen: Callable[[], float] = lambda: 0.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), records: float | None = None) -> None:
        assert network.quota is not None
        self._engine, self._network, self._quota = engine, network.name, network.quota
        self._limit = daily_budget(network.quota, units)
        per_period = records if records is not None else network.quota.records
        self._records_limit = per_period * (DAY / network.quota.per) if per_period else None
        self._records_seen, self._clock = records_seen, clock
        self._lock = threading.Lock()
        self.reserved = 0.0
        self.taken = 0.0
        self._records_before: float | None = None

    def take(self) -> ApiError | None:
        with self._lock:
            if self.taken >= self.reserved and not self._reserve():
                return QuotaExhaustedError(
                    f"today's {self._network} budget of {self._limit:g} units is spent"
                    + (f" (or its {self._records_limit:g} records)" if self._records_limit else ""),
                    code="budget_spent", retry_after=_seconds_to_next_day(self._quota, self._clock()))
            self.taken += 1
            return None

    def _reserve(self) -> bool:
        moment = self._clock()
        with self._engine.begin() as conn:
            start = period_start(self._quota, moment)
            conn.execute(dialect_insert(conn, api_usage).values(
                network=self._network, period_start=start, units=0.0, records=0.0, updated_at=moment)
                .on_conflict_do_nothing(index_elements=[api_usage.c.network, api_usage.c.period_start]))
            row = (select(api_usage.c.units).where(api_usage.c.network == self._network,
                                                   api_usage.c.period_start == start)
                   .with_for_update())
            conn.execute(row)  # held to the commit: reservations of concurrent tasks take turns
            units, records = _today(conn, self._network, self._quota, moment)
            if self._records_before is None:
                self._records_before = records
            if self._records_limit is not None and self._records_before + self._records_seen() >= self._records_limit:
                return False
            grant = min(max(self.CHUNK, min(self.taken / 4, self.MAX_CHUNK, self._limit / 20)), self._limit - units)
            if grant < 1:
                return False
            record_spent(conn, self._network, self._quota, moment, grant)
        self.reserved += grant
        return True

    def left(self) -> float:
        """Units of today's budget not yet spent or reserved, by any task."""
        with self._engine.connect() as conn:
            return self._limit - spent_today(conn, self._network, self._quota, self._clock())

    def settle(self, spent: float, records: float) -> None:
        """What the task spent (and the items it got), the unused reservation given back."""
        with self._engine.begin() as conn:
            record_spent(conn, self._network, self._quota, self._clock(), spent - self.reserved, records)


@dataclass(frozen=True)
class Admission:
    admitted: list[str]  # in the order the caller gave them
    deferred: int
    budget_left: float
    estimated: float  # units the admitted profiles are expected to cost


def admit(conn: Connection, network: str, entity_ids: Sequence[str], left: float, quota: Quota,
          chunk: int = 10_000) -> Admission:
    """The most overdue of ``entity_ids`` (never synced first, then the oldest sync) whose estimated
    costs add up to at most ``left``; ties keep the caller's order.

    A profile's estimate is what its last successful job cost (``tracked_entities.est_units``); one
    never synced is estimated from its post count when a profile page of it was loaded, else with the
    quota's ``first_sync_units``. At least one profile is admitted when anything is left, however
    large its estimate, so that a huge profile is not deferred for ever.
    """
    t, p = tracked_entities.c, profiles.c
    ids = list(entity_ids)
    position = {entity_id: n for n, entity_id in enumerate(ids)}
    with_counts = tracked_entities.outerjoin(profiles, (p.network == t.network) & (p.profile_id == t.entity_id))
    query = (select(t.entity_id, t.last_synced_at, t.est_units, p.posts_count).select_from(with_counts)
             .where(t.network == network))
    # A conf's few ids are looked up; a day's due list (up to every tracked entity) is one scan.
    rows = (conn.execute(query.where(t.entity_id.in_(ids))) if len(ids) <= chunk
            else (r for r in conn.execute(query) if r.entity_id in position))
    known = {entity_id: (synced, estimate if estimate is not None else quota.first_sync(posts))
             for entity_id, synced, estimate, posts in rows}

    def overdue(entity_id: str) -> tuple[datetime, int]:  # never synced sorts first
        synced = known.get(entity_id, (None, None))[0]
        return synced or NEVER, position[entity_id]

    chosen: set[str] = set()
    total = 0.0
    for entity_id in sorted(ids, key=overdue):
        estimate = known.get(entity_id, (None, None))[1]
        cost = float(estimate) if estimate is not None else quota.first_sync_units
        if total + cost > left and (chosen or left <= 0):
            break
        chosen.add(entity_id)
        total += cost
    admitted = [entity_id for entity_id in ids if entity_id in chosen]
    return Admission(admitted, len(ids) - len(admitted), left - total, total)


def admit_within_quota(conn: Connection, network: NetworkSpec, entity_ids: Sequence[str], now: datetime,
                       quota_units: float | None = None) -> Admission:
    """``admit`` against what is left of the network's day (all of ``entity_ids`` when it has no quota).

    ``quota_units`` is a deployment's own allowance per period (the connection's ``quota_units``).
    """
    quota = network.quota
    if quota is None:
        return Admission(list(entity_ids), 0, float("inf"), 0.0)
    left = daily_budget(quota, quota_units) - spent_today(conn, network.name, quota, now)
    return admit(conn, network.name, entity_ids, left, quota)


def remember_costs(conn: Connection, network: str, job_ids: Sequence[int]) -> None:
    """Each closed job's cost (the units of its raw pages) on the job; a succeeded job's becomes its
    entity's estimate for the next plan. Two statements, whatever the number of jobs."""
    if not job_ids:
        return
    j, t = sync_jobs.c, tracked_entities.c
    ids = list(job_ids)
    cost = select(func.coalesce(func.sum(raw_pages.c.units), 0.0)).where(raw_pages.c.job_id == j.id)
    conn.execute(update(sync_jobs).where(j.id.in_(ids)).values(units=cost.scalar_subquery()))
    succeeded = (select(func.max(j.units)).where(j.id.in_(ids), j.status == "succeeded", j.network == network,
                                                 j.entity_id == t.entity_id).scalar_subquery())
    conn.execute(update(tracked_entities)
                 .where(t.network == network,
                        t.entity_id.in_(select(j.entity_id).where(j.id.in_(ids), j.status == "succeeded")))
                 .values(est_units=succeeded))
