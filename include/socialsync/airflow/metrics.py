"""The sync's metrics, through Airflow's own ``Stats``: they reach StatsD or OpenTelemetry as the deployment's
``[metrics]`` settings say (nothing is sent when neither is on).

Every name is ``socialsync.<network>.<metric>`` (StatsD has no tags unless a flavour with them is on), and
every metric also carries the tag ``network`` (and ``table`` or ``status`` where it says so) for the
backends that keep tags. The README lists them.
"""

from __future__ import annotations

from collections.abc import Mapping

from airflow.sdk.observability.stats import Stats

PREFIX = "socialsync"
TABLES = ("profiles", "posts", "media", "comments", "metrics", "follows", "likes")


def _name(network: str, metric: str) -> str:
    return f"{PREFIX}.{network}.{metric}"


def _count(network: str, metric: str, value: float, **tags: str) -> None:
    if value:
        Stats.incr(_name(network, metric), count=round(value), tags={"network": network, **tags})


def requested(network: str, *, requests: int, throttled: int, units: float, units_left: float | None) -> None:
    """What one client of an extract task asked of the API (retries and refused calls included)."""
    _count(network, "requests", requests)
    _count(network, "throttled", throttled)
    _count(network, "quota_units", units)
    if units_left is not None:
        Stats.gauge(_name(network, "quota_units_left"), max(0.0, units_left), tags={"network": network})


def extracted(network: str, report: Mapping[str, int]) -> None:
    """What one extract task stored: raw pages, the items they held, the anomalies that ended a part."""
    _count(network, "pages", report.get("pages", 0))
    _count(network, "items", report.get("items", 0))
    _count(network, "anomalies", report.get("anomalies", 0))


def normalized(network: str, counts: Mapping[str, int]) -> None:
    """Rows a normalize task wrote (per table), rows it marked deleted and records it quarantined."""
    for table in TABLES:
        _count(network, f"rows.{table}", counts.get(table, 0), table=table)
    _count(network, "deleted.posts", counts.get("deleted_posts", 0), table="posts")
    _count(network, "deleted.comments", counts.get("deleted_comments", 0), table="comments")
    _count(network, "quarantined", counts.get("rejects", 0))


def closed(network: str, statuses: Mapping[str, int]) -> None:
    """Jobs a load task closed, by status (succeeded, partial, failed, skipped)."""
    for status, jobs in statuses.items():
        _count(network, f"jobs.{status}", jobs, status=status)
