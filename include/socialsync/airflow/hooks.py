"""socialsync's hooks: one per connection type (``socialsync.connection_types``), found by Airflow
through the provider info, so that ``airflow providers hooks`` lists them and the UI offers their types."""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.sdk import BaseHook

from socialsync.connection_types import INSTAGRAM, ML, TIKTOK, VISION, YOUTUBE, ConnectionType
from socialsync.networks.base import ApiCredentials


class SocialsyncHook(BaseHook):
    """A socialsync connection: ``get_conn`` gives what a network client is built from. A subclass names its
    ``connection_type``; its ``conn_type``, ``hook_name`` and default conn_id follow from it."""

    connection_type: ClassVar[ConnectionType]
    conn_name_attr = "conn_id"
    conn_type: ClassVar[str]
    hook_name: ClassVar[str]
    default_conn_name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "connection_type" in cls.__dict__:
            kind = cls.connection_type
            cls.conn_type, cls.hook_name, cls.default_conn_name = kind.conn_type, kind.hook_name, kind.default_conn_id

    def __init__(self, conn_id: str | None = None) -> None:
        super().__init__()
        self.conn_id = conn_id or self.default_conn_name

    def get_conn(self) -> ApiCredentials:
        from socialsync.airflow.connections import api_credentials

        return api_credentials(self.conn_id)


class InstagramApiHook(SocialsyncHook):
    """The Instagram Graph API (``instagram_api``)."""

    connection_type = INSTAGRAM


class YouTubeApiHook(SocialsyncHook):
    """The YouTube Data API v3 (``youtube_api``)."""

    connection_type = YOUTUBE


class TikTokApiHook(SocialsyncHook):
    """The TikTok Research API (``tiktok_api``)."""

    connection_type = TIKTOK


class JobServiceHook(SocialsyncHook):
    """An enrichment job service: ``get_conn`` gives its client."""

    def get_conn(self) -> Any:
        from socialsync.airflow.connections import job_api

        return job_api(self.conn_id)


class MlJobsHook(JobServiceHook):
    """The ML (text analysis) job service (``ml_api``)."""

    connection_type = ML


class VisionJobsHook(JobServiceHook):
    """The image recognition job service (``vision_api``)."""

    connection_type = VISION


HOOKS: tuple[type[SocialsyncHook], ...] = (InstagramApiHook, YouTubeApiHook, TikTokApiHook, MlJobsHook,
                                           VisionJobsHook)
