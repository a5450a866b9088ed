"""socialsync's Airflow plugin: the sync API on the API server, and the jobs page in the UI.

The code lives in the installed package (``socialsync.api``); this file only registers it.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from socialsync.api.app import PREFIX, app


class SocialsyncPlugin(AirflowPlugin):
    name = "socialsync"
    # Mounted at /socialsync: the API under /socialsync/v1, its OpenAPI at /socialsync/docs.
    fastapi_apps = [{"app": app, "url_prefix": PREFIX, "name": "socialsync sync API"}]
    # Airflow 3.1+ external view: Browse -> Sync jobs, the page rendered inside the UI.
    external_views = [{
        "name": "Sync jobs",
        "href": f"{PREFIX}/ui/jobs",
        "destination": "nav",
        "category": "browse",
        "url_route": "socialsync-jobs",
    }]
