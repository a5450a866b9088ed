"""The sync API's answers, as pydantic models: they are its OpenAPI schema at ``/docs``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field


class Network(BaseModel):
    name: str
    dag_id: str
    description: str


class SyncStarted(BaseModel):
    network: str
    dag_id: str
    run_id: str = Field(description="The Airflow DAG run id: follow it at .../runs/{run_id}/jobs")
    state: str
    conf: dict[str, Any]
    jobs_url: str
    airflow_url: str = Field(description="The run in Airflow's UI")


class JobCounts(BaseModel):
    pages: int = Field(description="API pages fetched (raw_pages)")
    items: int = Field(description="Items those pages held")
    sub_syncs: dict[str, int] = Field(description="sync_tasks by status")


class Job(BaseModel):
    id: int
    entity_id: str
    status: str
    run_id: str | None
    previous_job_id: int | None = Field(description="The job this one continues (a cleared or resumed run)")
    started_at: datetime | None
    finished_at: datetime | None
    units: float | None = Field(description="What its calls cost of the API's quota")
    error_type: str | None
    error_message: str | None
    counts: JobCounts


class SyncTask(BaseModel):
    id: int
    kind: str
    external_id: str
    status: str
    attempts: int
    last_error: str | None
    last_synced_at: datetime | None


class JobDetail(Job):
    request: dict[str, Any] = Field(description="What the job was asked to do (its conf and bounds)")
    sync_tasks: list[SyncTask]
    continued_by: int | None = Field(description="The job that continues this one, if any")


class RunJobs(BaseModel):
    network: str
    run_id: str
    state: str | None = Field(description="The Airflow run's state; null when Airflow no longer holds the run")
    summary: dict[str, int] = Field(description="The run's jobs by status")
    jobs: list[Job]
    next_cursor: str | None


class RecentJobs(BaseModel):
    network: str
    jobs: list[Job]


class Tracked(BaseModel):
    active: bool
    added_at: datetime
    last_synced_at: datetime | None
    misses: int
    deactivated_reason: str | None


class ProfileRow(BaseModel):
    username: str
    display_name: str | None
    bio: str | None
    followers_count: int | None
    following_count: int | None
    posts_count: int | None
    website: str | None
    synced_at: datetime


class MetricPoint(BaseModel):
    date: date
    value: float


class Profile(BaseModel):
    network: str
    profile_id: str
    profile: ProfileRow | None = Field(description="The profile as last loaded; null before its first sync")
    tracked: Tracked | None
    last_synced_at: datetime | None
    counts: dict[str, int]
    metrics: dict[str, list[MetricPoint]] = Field(description="Each metric's daily values, oldest first")
    last_jobs: list[Job]


class Post(BaseModel):
    post_id: str
    profile_id: str
    kind: str
    product_type: str | None
    caption: str | None
    permalink: str | None
    created_at: datetime
    like_count: int | None
    comments_count: int | None
    view_count: int | None
    pinned: bool | None = Field(None, description="On the profile's pinned list (TikTok); null: no walk of "
                                                   "that list has said")
    deleted: bool
    synced_at: datetime


class Posts(BaseModel):
    items: list[Post]
    next_cursor: str | None


class Follow(BaseModel):
    follower_id: str
    followee_id: str
    follower_name: str | None
    followee_name: str | None
    first_seen_at: datetime
    removed_at: datetime | None
    synced_at: datetime


class Follows(BaseModel):
    items: list[Follow]
    next_cursor: str | None


class Like(BaseModel):
    post_id: str
    author_id: str  # the profile that liked it
    post_author_id: str | None
    caption: str | None
    first_seen_at: datetime
    removed_at: datetime | None
    synced_at: datetime


class Likes(BaseModel):
    items: list[Like]
    next_cursor: str | None


class Comment(BaseModel):
    comment_id: str
    post_id: str
    parent_comment_id: str | None
    author_id: str | None
    author_username: str | None
    content: str | None
    created_at: datetime
    like_count: int | None
    reply_count: int | None
    deleted: bool
    synced_at: datetime


class Comments(BaseModel):
    items: list[Comment]
    next_cursor: str | None


class Enrichment(BaseModel):
    item_kind: str = Field(description="post, media or comment")
    item_id: str
    service: str
    result: dict[str, Any]
    external_job_id: str
    enriched_at: datetime


class Enrichments(BaseModel):
    items: list[Enrichment]
    next_cursor: str | None


class Error(BaseModel):
    """What every refusal answers (FastAPI's ``HTTPException``): why, in words."""

    detail: str
