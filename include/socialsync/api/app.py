"""The sync API: start a sync, follow its jobs, read what it loaded. Mounted on Airflow's API server.

A FastAPI app registered by ``plugins/socialsync_plugin.py`` (``AirflowPlugin.fastapi_apps``).
Airflow mounts a plugin's app without any auth of its own, so every route here asks Airflow's
auth manager itself: the caller must be a logged-in Airflow user (a JWT from ``POST /auth/token``
as a bearer token, or the UI's session cookie) allowed to read, or for a start to run, the
network's DAG. Every warehouse query is bound to the network in the path, so an id of another
network reads nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Body, Depends, FastAPI, HTTPException, Path, Query, status
from fastapi.responses import HTMLResponse
from sqlalchemy import Engine

from socialsync.api import models, queries
from socialsync.api.page import render_jobs_page, render_run_page
from socialsync.extract.request import POST_ID, InvalidConf, parse_sync_conf
from socialsync.networks import REGISTRY, NetworkSpec, get_network

PREFIX = "/socialsync"  # where the plugin mounts the app on the API server
DEFAULT_LIMIT = 100

app = FastAPI(
    title="socialsync sync API",
    version="1",
    description=__doc__,
)


# --- auth: Airflow's own user, and its permission on the network's DAG ----------------------------
def _allowed(user: Any, network: NetworkSpec, method: str) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return bool(get_auth_manager().is_authorized_dag(method=method, access_entity=DagAccessEntity.RUN,  # type: ignore[arg-type]
                                                     details=DagDetails(id=network.dag_id), user=user))


def _check(user: Any, network: NetworkSpec, method: str) -> None:
    if not _allowed(user, network, method):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"not allowed to {'run' if method == 'POST' else 'read'} "
                                                       f"DAG {network.dag_id}")


def _readable_networks(user: Any) -> list[NetworkSpec]:
    return [spec for spec in REGISTRY.values() if _allowed(user, spec, "GET")]


def _spec(network: str) -> NetworkSpec:
    try:
        return get_network(network)
    except KeyError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc.args[0])) from None


# Airflow's own dependency: a bearer JWT from ``POST /auth/token``, or the UI's session cookie; 401 without.
User = GetUserDep


# The schema lists the networks, and the shapes of ids any of them has; an id of no network's shape is a
# 400, one of another network's shape a 404 (no such profile can exist in this one).
NetworkName = Annotated[str, Path(description="The network", json_schema_extra={"enum": sorted(REGISTRY)})]
ANY_PROFILE_ID = "^(?:" + "|".join(sorted({spec.entity_id_pattern.removeprefix("^").removesuffix("$")
                                            for spec in REGISTRY.values()})) + ")$"
ProfileId = Annotated[str, Path(description="The profile's id in its network (as tracked_entities has it)",
                                json_schema_extra={"pattern": ANY_PROFILE_ID, "maxLength": 128})]
PostId = Annotated[str, Path(description="The post's id in its network",
                             json_schema_extra={"pattern": POST_ID, "maxLength": 128})]


def readable(network: NetworkName, user: User) -> NetworkSpec:
    spec = _spec(network)
    _check(user, spec, "GET")
    return spec


def runnable(network: NetworkName, user: User) -> NetworkSpec:
    spec = _spec(network)
    _check(user, spec, "POST")
    return spec


Readable = Annotated[NetworkSpec, Depends(readable)]
Runnable = Annotated[NetworkSpec, Depends(runnable)]


# --- the warehouse, from the Airflow connection the tasks use ------------------------------------
@lru_cache(maxsize=1)
def warehouse() -> Engine:
    """The tasks' ``socialsync_db`` connection, read as airflow-core does (the API server has no task SDK
    context), made into an engine the way the tasks make theirs; one small pool for the API server."""
    from airflow.models.connection import Connection

    from socialsync.airflow.connections import WAREHOUSE_CONN_ID, warehouse_for

    conn = Connection.get_connection_from_secrets(WAREHOUSE_CONN_ID)
    return warehouse_for(conn, WAREHOUSE_CONN_ID, pool_size=4, max_overflow=4)


Warehouse = Annotated[Engine, Depends(warehouse)]


def _profile_id(spec: NetworkSpec, value: str) -> str:
    if not re.fullmatch(ANY_PROFILE_ID, value):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"not a valid profile id of any network: {value[:80]!r}")
    if not re.fullmatch(spec.entity_id_pattern, value):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {spec.name} profile {value[:80]!r}: not a {spec.name} "
                                                       f"id (pattern {spec.entity_id_pattern})")
    return value


def _id(kind: str, pattern: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"not a valid {kind} id: {value[:80]!r} "
                                                             f"(pattern {pattern})")
        return value
    return check


def _page(call: Callable[[], queries.Page]) -> dict[str, Any]:
    try:
        page = call()
    except queries.BadCursor as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    return {"items": page.items, "next_cursor": page.next_cursor}


Limit = Annotated[int, Query(ge=1, le=queries.MAX_LIMIT, description="Items per page")]
Cursor = Annotated[str | None, Query(max_length=4 * queries.MAX_CURSOR_TEXT,
                                     description="next_cursor of the previous page of this same list")]
JobId = Annotated[int, Path(ge=1, le=queries.MAX_ID, description="The job's id (sync_jobs.id)")]
# Airflow's run ids are at most 250 characters (sync_jobs.run_id is as wide); a NUL is in none.
RunId = Annotated[str, Path(max_length=250, pattern=r"^[^\x00]+$", description="The Airflow run's id")]

_WHY = {
    400: "A malformed id, or a cursor this list did not hand out (forged, of another list, or of the same "
         "list under another profile or post)",
    401: "Not logged in to Airflow (no or an expired bearer token or session)",
    403: "The user may not read (or, for a start, run) the network's DAG",
    404: "No such network, or nothing by this id in it",
    409: "The network's DAG has import errors",
}


def answers(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The refusals an operation can answer, for its OpenAPI entry (each with the ``Error`` body)."""
    return {code: {"model": models.Error, "description": _WHY[code]} for code in codes}


NETWORK_READ = (401, 403, 404)  # every route under /v1/networks/{network}


# --- routes -----------------------------------------------------------------------------------------
@app.get("/v1/networks", response_model=list[models.Network], summary="The networks this user may read",
         responses=answers(401))
def list_networks(user: User) -> list[dict[str, Any]]:
    return [{"name": spec.name, "dag_id": spec.dag_id, "description": spec.description}
            for spec in _readable_networks(user)]


@app.post("/v1/networks/{network}/syncs", response_model=models.SyncStarted, status_code=status.HTTP_201_CREATED,
          summary="Start a sync: triggers the network's DAG with this conf",
          responses={**answers(*NETWORK_READ, 409),
                     400: {"model": models.Error,
                           "description": "The conf is refused (the DAG's Params and the run's own checks)"}})
def start_sync(
    spec: Runnable,
    user: User,
    conf: Annotated[dict[str, Any], Body(
        description="The run's conf, as the DAG's Params: entity_ids, scope, since_id, until_id, "
                    "last_synced_at, full_refresh, lookback_days, enrich, batch_size, max_failed_percent",
        openapi_examples={"posts of two profiles": {"value": {"entity_ids": ["1789", "1790"], "scope": "posts"}}},
    )],
) -> dict[str, Any]:
    from airflow.api_fastapi.common.dagbag import get_latest_version_of_dag
    from airflow.api_fastapi.core_api.datamodels.dag_run import TriggerDAGRunPostBody
    from airflow.exceptions import ParamValidationError
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select

    try:
        parse_sync_conf(conf, spec)  # unknown keys and ids of the wrong shape, named all at once
    except InvalidConf as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    with create_session() as session:
        model = session.scalar(select(DagModel).where(~DagModel.is_stale, DagModel.dag_id == spec.dag_id))
        if model is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"DAG {spec.dag_id} is not deployed")
        if model.has_import_errors:
            raise HTTPException(status.HTTP_409_CONFLICT, f"DAG {spec.dag_id} has import errors")
        dag = get_latest_version_of_dag(_dag_bag(), spec.dag_id, session)
        try:  # Airflow's own path for POST /api/v2/dags/{dag_id}/dagRuns: the DAG's Params validate conf
            params = TriggerDAGRunPostBody(logical_date=None, conf=conf).validate_context(dag)
            run = dag.create_dagrun(
                run_id=params["run_id"], logical_date=params["logical_date"], data_interval=params["data_interval"],
                run_after=params["run_after"], conf=params["conf"], run_type=DagRunType.MANUAL,
                triggered_by=DagRunTriggeredByType.REST_API, triggering_user_name=user.get_name(),
                state=DagRunState.QUEUED, partition_key=params["partition_key"],
                partition_date=params["partition_date"], session=session)
        except (ParamValidationError, ValueError) as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        run_id, state = run.run_id, str(run.state)
    return {"network": spec.name, "dag_id": spec.dag_id, "run_id": run_id, "state": state, "conf": conf,
            "jobs_url": f"{PREFIX}/v1/networks/{spec.name}/runs/{run_id}/jobs",
            "airflow_url": f"/dags/{spec.dag_id}/runs/{run_id}"}


@lru_cache(maxsize=1)
def _dag_bag() -> Any:
    from airflow.api_fastapi.common.dagbag import create_dag_bag
    return create_dag_bag()


def _run_state(dag_id: str, run_id: str) -> str | None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        state = session.scalar(select(DagRun.state).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    return None if state is None else str(state)


@app.get("/v1/networks/{network}/runs/{run_id}/jobs", response_model=models.RunJobs,
         summary="A run's jobs with their statuses and counts, in the order plan opened them",
         responses=answers(400, *NETWORK_READ))
def run_jobs(spec: Readable, engine: Warehouse, run_id: RunId, cursor: Cursor = None,
             limit: Limit = DEFAULT_LIMIT) -> dict[str, Any]:
    state = _run_state(spec.dag_id, run_id)
    with engine.connect() as conn:
        summary = queries.run_summary(conn, spec.name, run_id)
        page = _page(lambda: queries.run_jobs(conn, spec.name, run_id, cursor, limit))
    if state is None and not summary:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run {run_id!r} of {spec.dag_id}")
    return {"network": spec.name, "run_id": run_id, "state": state, "summary": summary,
            "jobs": page["items"], "next_cursor": page["next_cursor"]}


@app.get("/v1/networks/{network}/jobs", response_model=models.RecentJobs, summary="The network's latest jobs",
         responses=answers(*NETWORK_READ))
def recent_jobs(spec: Readable, engine: Warehouse, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    with engine.connect() as conn:
        return {"network": spec.name, "jobs": queries.recent_jobs(conn, spec.name, limit)}


@app.get("/v1/networks/{network}/jobs/{job_id}", response_model=models.JobDetail,
         summary="One job: its sync_tasks, error, and the job it continues", responses=answers(*NETWORK_READ))
def one_job(spec: Readable, engine: Warehouse, job_id: JobId) -> dict[str, Any]:
    with engine.connect() as conn:
        found = queries.job(conn, spec.name, job_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {spec.name} job {job_id}")
    return found


@app.get("/v1/networks/{network}/profiles/{profile_id}", response_model=models.Profile,
         summary="A profile: last jobs, last_synced_at, counts, metrics over time",
         responses=answers(400, *NETWORK_READ))
def one_profile(spec: Readable, engine: Warehouse, profile_id: ProfileId,
                days: Annotated[int, Query(ge=1, le=3660, description="Metrics of the last days")] = 90,
                jobs: Annotated[int, Query(ge=0, le=100, description="How many of its last jobs")] = 10,
                ) -> dict[str, Any]:
    _profile_id(spec, profile_id)
    with engine.connect() as conn:
        found = queries.profile(conn, spec.name, profile_id, days, datetime.now(UTC).date())
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{spec.name} profile {profile_id!r} is neither "
                                                           "tracked nor loaded")
        found["last_jobs"] = queries.recent_jobs(conn, spec.name, jobs, entity_id=profile_id) if jobs else []
    return found


@app.get("/v1/networks/{network}/profiles/{profile_id}/posts", response_model=models.Posts,
         summary="A profile's posts, newest first",
         responses=answers(400, *NETWORK_READ))
def profile_posts(spec: Readable, engine: Warehouse, profile_id: ProfileId, cursor: Cursor = None,
                  limit: Limit = DEFAULT_LIMIT, include_deleted: bool = False) -> dict[str, Any]:
    _profile_id(spec, profile_id)
    with engine.connect() as conn:
        return _page(lambda: queries.posts(conn, spec.name, profile_id, cursor, limit, include_deleted))


Direction = Annotated[Literal["following", "followers"], Query(
    description="following: the accounts it follows (a channel's subscriptions); followers: those following it")]


@app.get("/v1/networks/{network}/profiles/{profile_id}/follows", response_model=models.Follows,
         summary="Whom a profile follows (its subscriptions) or who follows it, newest first",
         responses=answers(400, *NETWORK_READ))
def profile_follows(spec: Readable, engine: Warehouse, profile_id: ProfileId, direction: Direction = "following",
                    cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT,
                    include_removed: bool = False) -> dict[str, Any]:
    _profile_id(spec, profile_id)
    with engine.connect() as conn:
        return _page(lambda: queries.follows(conn, spec.name, profile_id, direction, cursor, limit, include_removed))


@app.get("/v1/networks/{network}/profiles/{profile_id}/likes", response_model=models.Likes,
         summary="The posts a profile liked, newest first",
         responses=answers(400, *NETWORK_READ))
def profile_likes(spec: Readable, engine: Warehouse, profile_id: ProfileId, cursor: Cursor = None,
                  limit: Limit = DEFAULT_LIMIT, include_removed: bool = False) -> dict[str, Any]:
    _profile_id(spec, profile_id)
    with engine.connect() as conn:
        return _page(lambda: queries.likes(conn, spec.name, profile_id, cursor, limit, include_removed))


def _post(conn: Any, spec: NetworkSpec, post_id: str) -> None:
    _id("post", POST_ID)(post_id)
    if not queries.post_exists(conn, spec.name, post_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {spec.name} post {post_id!r}")


@app.get("/v1/networks/{network}/posts/{post_id}/comments", response_model=models.Comments,
         summary="A post's comments and replies, newest first",
         responses=answers(400, *NETWORK_READ))
def post_comments(spec: Readable, engine: Warehouse, post_id: PostId, cursor: Cursor = None,
                  limit: Limit = DEFAULT_LIMIT, include_deleted: bool = False) -> dict[str, Any]:
    with engine.connect() as conn:
        _post(conn, spec, post_id)
        return _page(lambda: queries.comments(conn, spec.name, post_id, cursor, limit, include_deleted))


@app.get("/v1/networks/{network}/posts/{post_id}/enrichments", response_model=models.Enrichments,
         summary="ML and image-recognition results of a post, its media and its comments, newest first",
         responses=answers(400, *NETWORK_READ))
def post_enrichments(spec: Readable, engine: Warehouse, post_id: PostId, cursor: Cursor = None,
                     limit: Limit = DEFAULT_LIMIT) -> dict[str, Any]:
    with engine.connect() as conn:
        _post(conn, spec, post_id)
        return _page(lambda: queries.enrichments(conn, spec.name, post_id, cursor, limit))


# --- the page in Airflow's UI (an external view: Browse -> Sync jobs) --------------------------
@app.get("/ui/jobs", response_class=HTMLResponse, include_in_schema=False)
def jobs_page(user: User, engine: Warehouse, limit: Annotated[int, Query(ge=1, le=200)] = 20) -> HTMLResponse:
    networks = []
    with engine.connect() as conn:
        for spec in _readable_networks(user):
            latest = queries.latest_run(conn, spec.name)
            networks.append({"name": spec.name, "dag_id": spec.dag_id, "latest_run": latest,
                             "latest": queries.run_summary(conn, spec.name, latest) if latest else {},
                             "jobs": queries.recent_jobs(conn, spec.name, limit)})
    return HTMLResponse(render_jobs_page(networks, datetime.now(UTC)))


# --- a DAG run's tab in Airflow's UI (an external view with destination dag_run) ----------------------
RUN_PAGE_JOBS = 500


@app.get("/ui/runs/{dag_id}/{run_id:path}", response_class=HTMLResponse, include_in_schema=False)
def run_page(user: User, engine: Warehouse, dag_id: str, run_id: str) -> HTMLResponse:
    spec = next((s for s in REGISTRY.values() if s.dag_id == dag_id), None)
    now = datetime.now(UTC)
    if spec is None:  # Airflow shows the tab on every DAG's runs
        return HTMLResponse(render_run_page(dag_id, run_id, None, {}, [], False, now))
    _check(user, spec, "GET")
    with engine.connect() as conn:
        summary = queries.run_summary(conn, spec.name, run_id)
        page = queries.run_jobs(conn, spec.name, run_id, None, RUN_PAGE_JOBS)
    return HTMLResponse(render_run_page(dag_id, run_id, {"name": spec.name, "dag_id": spec.dag_id}, summary,
                                        page.items, page.next_cursor is not None, now))
