"""The bench's reference: the same Instagram Graph extraction as a dlt ``rest_api`` pipeline into PostgreSQL,
configured as dlt's documentation advises for speed (parallelized resources, the largest pages)."""

from __future__ import annotations

import os
import resource
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

# dlt reports usage to its makers unless told not to; the bench's machine reaches no such host.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
# With Airflow installed, dlt reads its secrets from Airflow Variables (the metadata database) first;
# this pipeline runs outside Airflow, like the bench's socialsync sync.
os.environ.setdefault("PROVIDERS__ENABLE_AIRFLOW_SECRETS", "false")

import dlt
from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator
from dlt.sources.rest_api import rest_api_source
from requests import Response
from sqlalchemy import make_url

# The fields socialsync asks for (socialsync.networks.instagram.client), so both read the same bytes.
PROFILE_FIELDS = ("id,username,name,biography,followers_count,follows_count,media_count,"
                  "profile_picture_url,website")
MEDIA_FIELDS = ("id,caption,media_type,media_product_type,media_url,thumbnail_url,permalink,timestamp,"
                "like_count,comments_count,username,children{id,media_type,media_url,thumbnail_url}")
STORY_FIELDS = "id,media_type,media_product_type,media_url,thumbnail_url,permalink,timestamp,caption"
# A comment's replies inline, as many as Graph serves on a page: what a dlt user asks to get the
# replies without a request per comment (no comment of the bench's data has more).
REPLY_FIELDS = "id,text,timestamp,username,like_count,from,parent_id"
COMMENT_FIELDS = f"id,text,timestamp,username,like_count,from,replies.limit(50){{{REPLY_FIELDS}}}"
# Graph's largest pages (the sandbox enforces the same caps): what a user asks for to make fewer requests.
MEDIA_LIMIT, COMMENTS_LIMIT, STORIES_LIMIT = 100, 50, 100


def _params(fields: str, limit: int) -> dict[str, Any]:
    # rest_api reads {...} in params as a placeholder: Graph's nested field selection is doubled.
    return {"fields": fields.replace("{", "{{").replace("}", "}}"), "limit": limit}


class GraphCursorPaginator(JSONResponseCursorPaginator):
    """Graph's paging: ``after=paging.cursors.after``; the last page is the one without ``paging.next``.

    Graph sends an ``after`` cursor on the last page too, so the stock paginator would ask for one
    more (empty) page per edge; Graph's own rule for "more pages follow" is ``paging.next``.
    """

    def __init__(self) -> None:
        super().__init__(cursor_path="paging.cursors.after", cursor_param="after")

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        super().update_state(response, data)
        paging = response.json().get("paging") or {}
        if not paging.get("next"):
            self._has_next_page = False


@dataclass
class ReferenceRun:
    seconds: float
    rows: dict[str, int] = field(default_factory=dict)
    # CPU seconds (user + sys, as the OS counts them for this process) of each step.
    cpu: dict[str, float] = field(default_factory=dict)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far, every thread included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def instagram_source(base_url: str, token: str, profile_ids: Sequence[str]) -> Any:
    """Profiles, their media and live stories, and every media's comments with their replies inline:
    dlt's documented fast settings (``parallelized`` source and child resources, the API's largest
    pages), dlt's defaults otherwise (its extract thread pool, one normalize worker, its load workers)."""

    @dlt.resource(selected=False)
    def tracked_profiles() -> Iterator[list[dict[str, str]]]:
        yield [{"id": profile_id} for profile_id in profile_ids]  # one page: rest_api's children resolve per page

    def child(name: str, path: str, fields: str, limit: int) -> dict[str, Any]:
        return {"name": name, "endpoint": {"path": path, "params": _params(fields, limit),
                                           "paginator": GraphCursorPaginator(), "data_selector": "data"},
                "include_from_parent": ["id"]}

    return rest_api_source({
        "client": {
            "base_url": base_url.rstrip("/") + "/",
            "auth": {"type": "bearer", "token": token},
        },
        "resource_defaults": {
            "primary_key": "id",
            "write_disposition": "merge",  # a daily re-sync updates rows in place, as socialsync's upserts do
            "parallelized": True,  # each parent's child pages fetched in dlt's thread pool
        },
        "resources": [
            tracked_profiles,
            {
                "name": "profiles",
                "endpoint": {
                    "path": "{resources.tracked_profiles.id}",
                    "params": {"fields": PROFILE_FIELDS},
                    "paginator": "single_page",
                    "data_selector": "$",
                },
            },
            child("media", "{resources.tracked_profiles.id}/media", MEDIA_FIELDS, MEDIA_LIMIT),
            child("stories", "{resources.tracked_profiles.id}/stories", STORY_FIELDS, STORIES_LIMIT),
            child("comments", "{resources.media.id}/comments", COMMENT_FIELDS, COMMENTS_LIMIT),
        ],
    }, name="instagram", parallelized=True)


def run_reference(base_url: str, token: str, profile_ids: Sequence[str], postgres_url: str,
                  dataset: str = "dlt_instagram", pipelines_dir: str | None = None) -> ReferenceRun:
    """Extract, normalize and load everything once; seconds from the first request to the last commit."""
    url = make_url(postgres_url)
    # dlt insists on a password; the bench's server trusts loopback connections and ignores it.
    credentials = {"database": url.database, "username": url.username, "password": url.password or "trust",
                   "host": url.host, "port": url.port or 5432}
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{dataset}",
        destination=dlt.destinations.postgres(credentials=credentials),
        dataset_name=dataset,
        pipelines_dir=pipelines_dir or tempfile.mkdtemp(prefix="socialsync-dlt-"),
    )
    started, cpu = time.perf_counter(), cpu_seconds()
    steps: dict[str, float] = {}
    pipeline.extract(instagram_source(base_url, token, profile_ids))
    steps["extract"], cpu = cpu_seconds() - cpu, cpu_seconds()
    pipeline.normalize()
    pipeline.load()
    steps["normalize and load"] = cpu_seconds() - cpu
    seconds = time.perf_counter() - started
    trace = pipeline.last_trace
    normalized = trace.last_normalize_info if trace is not None else None
    rows = dict(normalized.row_counts) if normalized is not None else {}
    return ReferenceRun(seconds, {table: n for table, n in rows.items() if not table.startswith("_dlt")}, steps)
