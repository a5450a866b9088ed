"""socialsync's Airflow plugin: the sync API on the API server, and the jobs page in the UI.

Found through the package's ``airflow.plugins`` entry point: no file goes into a ``plugins/`` folder.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

# The scheduler loads plugins before it forks the LocalExecutor's workers: importing the task code here
# spares every task process importing it again (see socialsync.airflow.preload).
import socialsync.airflow.preload  # noqa: F401
from socialsync.api.app import PREFIX, app


class SocialsyncPlugin(AirflowPlugin):
    name = "socialsync"
    # Mounted at /socialsync: the API under /socialsync/v1, its OpenAPI at /socialsync/docs.
    fastapi_apps = [{"app": app, "url_prefix": PREFIX, "name": "socialsync sync API"}]
    # Airflow 3.1+ external views, rendered inside the UI: Browse -> Sync jobs, and a tab on each DAG run.
    external_views = [{
        "name": "Sync jobs",
        "href": f"{PREFIX}/ui/jobs",
        "destination": "nav",
        "category": "browse",
        "url_route": "socialsync-jobs",
    }, {
        # A tab on every DAG run's page: that run's sync jobs (Airflow fills in {DAG_ID} and {RUN_ID}).
        "name": "Sync jobs",
        "href": f"{PREFIX}/ui/runs/{{DAG_ID}}/{{RUN_ID}}",
        "destination": "dag_run",
        "url_route": "socialsync-run-jobs",
    }]
