"""What the APIs' quotas allow: units spent per network and quota period, and what plan may admit.

Every extract task adds what its client spent (retries and refused calls included: the API charges
them) to the network's current quota period. ``plan`` reads what is left of the day's budget and
admits the most overdue profiles whose estimated cost fits; the rest stay due and, being more
overdue tomorrow, come first then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select, update

from socialsync.networks.base import NetworkSpec, Quota
from socialsync.storage.schema import api_usage, profiles, raw_pages, sync_jobs, tracked_entities
from socialsync.storage.upserts import dialect_insert

DAY = timedelta(days=1)
NEVER = datetime.min.replace(tzinfo=UTC)


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


def record_spent(conn: Connection, network: str, quota: Quota, moment: datetime, units: float) -> None:
    """Add ``units`` to the network's current period (one statement, safe against concurrent tasks)."""
    if units <= 0:
        return
    row = {"network": network, "period_start": period_start(quota, moment), "units": float(units),
           "updated_at": moment}
    statement = dialect_insert(conn, api_usage).values(**row)
    conn.execute(statement.on_conflict_do_update(
        index_elements=[api_usage.c.network, api_usage.c.period_start],
        set_={"units": api_usage.c.units + statement.excluded.units, "updated_at": statement.excluded.updated_at}))


def spent_today(conn: Connection, network: str, quota: Quota, moment: datetime) -> float:
    """Units spent since the start of the quota's day (its periods since then, for an hourly quota)."""
    day = _start_of(quota.timezone, DAY, moment)
    return float(conn.scalar(select(func.coalesce(func.sum(api_usage.c.units), 0.0)).where(
        api_usage.c.network == network, api_usage.c.period_start >= day)) or 0.0)


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
