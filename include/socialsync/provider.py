"""socialsync as Airflow finds a provider: its ``apache_airflow_provider`` entry point's provider info.

``airflow providers list`` shows the package, ``airflow providers hooks`` its hooks, and the UI's
connection form offers its connection types with their fields. The plugin (the sync API and the jobs
page) has an ``airflow.plugins`` entry point of its own: Airflow loads entry-point plugins whatever
its ``lazy_load_providers`` setting says, and a plugin named in both places would be registered twice.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from socialsync.connection_types import INSTAGRAM, ML, TIKTOK, VISION, YOUTUBE

_HOOKS = "socialsync.airflow.hooks"
_INTEGRATION = "socialsync"


def _version() -> str:
    try:
        return version("socialsync")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from socialsync import __version__

        return __version__


def get_provider_info() -> dict[str, Any]:
    hooks = ((INSTAGRAM, "InstagramApiHook"), (YOUTUBE, "YouTubeApiHook"), (TIKTOK, "TikTokApiHook"),
             (ML, "MlJobsHook"), (VISION, "VisionJobsHook"))
    return {
        "package-name": "socialsync",
        "name": "socialsync",
        "description": "Daily, resumable sync of Instagram, YouTube and TikTok data into PostgreSQL.",
        "versions": [_version()],
        "integrations": [{"integration-name": _INTEGRATION, "tags": ["service"]}],
        "hooks": [{"integration-name": _INTEGRATION, "python-modules": [_HOOKS]}],
        "triggers": [{"integration-name": _INTEGRATION, "python-modules": ["socialsync.airflow.triggers"]}],
        "sensors": [{"integration-name": _INTEGRATION, "python-modules": ["socialsync.airflow.sensors"]}],
        "connection-types": [kind.provider_info(f"{_HOOKS}.{name}") for kind, name in hooks],
    }
