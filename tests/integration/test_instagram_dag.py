"""The whole instagram_sync DAG through ``airflow dags test``: SQLite and a real PostgreSQL."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from socialsync.local.settings import airflow_env
from socialsync.sandbox.dataset import Dataset
from socialsync.sandbox.faults import FaultPlan
from socialsync.sandbox.instagram_dataset import InstagramDataset
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.storage import migrate, schema
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.planning import track_entities
from tests.conftest import ROOT
from tests.hostile import HostileProxy, RequestInfo, Rule
from tests.integration.conftest import SMALL
from tests.integration.instagram_requests import owner_of
from tests.integration.sync_helpers import StatsdListener, checksums, tracked_ids
from tests.integration.truth import actual, assert_warehouse_matches, expected
from tests.sandbox_connections import sandbox_connections

NETWORK = "instagram"
GONE = "178400000009999999"  # a well-formed id the sandbox does not know: a deleted account


# Two businesses, each with a token of its own; account 3 is public (business discovery, no token).
SHOP_B_TOKEN = "sandbox-token-of-shop-b"
TOKENS = {"sandbox-token": [0, 1, 2], SHOP_B_TOKEN: [4, 5]}


@pytest.fixture(scope="module")
def sandbox_for_dags() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(spec=SMALL, job_seconds=1.5, instagram_tokens=TOKENS)) as server:
        yield server


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory, sandbox_for_dags: SandboxServer) -> Path:
    home = tmp_path_factory.mktemp("airflow")
    _airflow(_env(home, sandbox_for_dags, "sqlite:///unused.db"), "db", "migrate")
    return home


def _env(home: Path, sandbox: SandboxServer, warehouse_url: str, **instagram_extra: object) -> dict[str, str]:
    env = airflow_env(home, ROOT / "dags", sandbox_connections(sandbox.url, warehouse_url, **instagram_extra))
    env["AIRFLOW__SOCIALSYNC__ENRICH_POLL_SECONDS"] = "0.5"
    return env


def _airflow(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "airflow", *args], env=env, cwd=ROOT, text=True,
                            capture_output=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"airflow {' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stdout[-8000:]}\n{result.stderr[-4000:]}")
    return result


def _warehouse_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_daily_sync_loads_the_ground_truth(kind: str, airflow_home: Path, sandbox_for_dags: SandboxServer,
                                          tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = _warehouse_url(kind, tmp_path, request)
    engine = warehouse_engine(url)
    dataset: Dataset = sandbox_for_dags.app.state.dataset
    ids = tracked_ids(dataset)
    shop_b = {ids[p]: "instagram_shop_b" for p in TOKENS[SHOP_B_TOKEN]}  # read with their own connection
    env = _env(airflow_home, sandbox_for_dags, url)
    statsd = StatsdListener()  # Airflow's [metrics] StatsD client sends the sync's counters here
    env.update(statsd.env)
    received = sandbox_for_dags.counters["received:graph"]
    env["AIRFLOW_CONN_INSTAGRAM_SHOP_B"] = json.dumps({
        "conn_type": "http", "host": f"{sandbox_for_dags.url}/v21.0", "password": SHOP_B_TOKEN,
        "extra": {"page_size": 10, "ig_user_id": sandbox_for_dags.app.state.graph.app_user_id(SHOP_B_TOKEN)}})
    log = sandbox_for_dags.app.state.graph.request_log
    log.clear()
    try:
        with engine.begin() as conn:
            track_entities(conn, NETWORK, [*ids, GONE], _now(), shop_b)
        result = _airflow(env, "dags", "test", "instagram_sync", "--conf", json.dumps({"batch_size": 2}),
                          check=False)
        output = result.stdout + result.stderr
        assert "sandbox-token" not in output  # neither secret ever reaches a log
        # Each token was sent only for the accounts it manages (shop b's for shop b's two).
        owners = {token: {owner_of(path, dataset) for t, path in log if t == token} for token in TOKENS}
        assert owners[SHOP_B_TOKEN] == set(TOKENS[SHOP_B_TOKEN]), owners
        assert owners["sandbox-token"] - {None} == set(TOKENS["sandbox-token"]), owners  # None: GONE's id
        # One job of seven failed, more than the default max_failed_percent (10): the run fails, and
        # its summary (jobs per status, rows, requests) closes the log.
        assert "1 of 7 job(s) failed, more than the max_failed_percent of 10%" in output, output[-3000:]
        assert "socialsync instagram: 7 job(s): 1 failed, 6 succeeded" in output
        assert "rows loaded: " in output and "API requests: " in output
        # What the network or an account's kind cannot give is named, with the reason, never left silent.
        assert "not synced: likes on 7 job(s): instagram's Graph API gives counts only" in output, output[-3000:]
        assert "not synced: subscriptions on 7 job(s): instagram's Graph API gives counts only" in output
        assert "not synced: comment_threads on 1 job(s): business discovery gives no comments" in output

        assert_warehouse_matches(engine, dataset, enrich=True)
        with engine.connect() as conn:
            statuses = dict(conn.execute(select(schema.sync_jobs.c.status, func.count())
                                         .group_by(schema.sync_jobs.c.status)).all())
            batches = conn.scalar(select(func.count(func.distinct(schema.sync_batches.c.batch_no))))
            unsynced = conn.scalar(select(func.count()).where(schema.tracked_entities.c.last_synced_at.is_(None)))
            comment_tasks = conn.scalar(select(func.count()).where(schema.sync_tasks.c.kind == "comments",
                                                                   schema.sync_tasks.c.status == "succeeded"))
            gone = conn.execute(select(schema.sync_jobs.c.status, schema.sync_jobs.c.error_type)
                                .where(schema.sync_jobs.c.entity_id == GONE)).one()
            run_ids = set(conn.scalars(select(schema.sync_jobs.c.run_id)))
        # A profile that no longer exists fails its own job, not the run.
        assert statuses == {"succeeded": SMALL.profiles, "failed": 1}
        assert tuple(gone) == ("failed", "NotFoundError")
        assert len(run_ids) == 1 and next(iter(run_ids)).startswith("manual__")  # each job names its run
        assert batches == 4 and unsynced == 1  # 7 profiles, 2 a batch
        ig = InstagramDataset(dataset)  # a public account's comments are not read (business discovery)
        posts_with_comments = sum(ig.comments_count(p, j) > 0 for p in ig.managed_profiles()
                                  for j in range(dataset.post_count(p)))
        assert comment_tasks == posts_with_comments
        _assert_xcom_is_small(airflow_home)
        # The metrics say what the sandbox counted and the warehouse holds.
        counters = statsd.counters()
        assert counters["socialsync.instagram.requests"] == sandbox_for_dags.counters["received:graph"] - received
        assert counters["socialsync.instagram.quota_units"] == counters["socialsync.instagram.requests"]
        assert counters["socialsync.instagram.rows.posts"] == len(actual(engine)["posts"])
        assert counters["socialsync.instagram.rows.comments"] == len(actual(engine)["comments"])
        assert (counters["socialsync.instagram.jobs.succeeded"], counters["socialsync.instagram.jobs.failed"]) == (
            SMALL.profiles, 1)
        assert "socialsync.instagram.quota_units_left" in statsd.gauges()
    finally:
        statsd.close()
        migrate.drop_all(engine)
        engine.dispose()


def _assert_xcom_is_small(home: Path) -> None:
    with sqlite3.connect(home / "airflow.db") as db:
        sizes = [(task, len(str(value))) for task, value in db.execute(
            "select task_id, value from xcom where dag_id = 'instagram_sync'")]
    assert sizes, "the run left no XCom at all"
    assert max(size for _, size in sizes) < 2048, sizes


def test_a_bad_conf_is_refused_before_anything_is_written(airflow_home: Path, sandbox_for_dags: SandboxServer,
                                                          tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    env = _env(airflow_home, sandbox_for_dags, url)
    before = sum(sandbox_for_dags.counters.values())
    for conf, message in (({"scope": "everything"}, "is not one of"),
                          ({"entity_ids": "178400000000000000"}, "is not of type 'null', 'array'"),
                          ({"entity_idz": ["178400000000000001"]}, "unknown key(s) 'entity_idz'"),
                          ({"last_synced_at": "2026-13-45T99:99Z"}, "does not match"),
                          ({"entity_ids": [".."]}, "does not match")):
        result = _airflow(env, "dags", "test", "instagram_sync", "--conf", json.dumps(conf), check=False)
        assert result.returncode != 0
        assert message in result.stdout + result.stderr
    assert sum(sandbox_for_dags.counters.values()) == before  # no request went out
    if (tmp_path / "warehouse.db").exists():
        with create_engine(url).connect() as conn:
            assert conn.scalar(select(func.count()).select_from(schema.sync_jobs)) == 0


def test_failing_enrichment_services_leave_jobs_partial_and_core_data_whole(
        airflow_home: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    with SandboxServer(SandboxConfig(spec=SMALL, job_seconds=0.5, job_failure_rate=1.0)) as sandbox:
        dataset: Dataset = sandbox.app.state.dataset
        env = _env(airflow_home, sandbox, url)
        with socket.socket() as s:  # the image service is down: nothing listens on this port
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        env["AIRFLOW_CONN_VISION_API"] = json.dumps({"conn_type": "http", "host": f"http://127.0.0.1:{dead}/v1",
                                                     "extra": {"X-Api-Key": "sandbox-key"}})
        picked = tracked_ids(dataset)[:2]
        _airflow(env, "dags", "test", "instagram_sync", "--conf", json.dumps({"entity_ids": picked}))
        assert sandbox.counters["ml:submit"] == 1 and sandbox.counters["ml:poll"] >= 1
    engine = warehouse_engine(url)
    with engine.connect() as conn:
        jobs = conn.execute(select(schema.sync_jobs.c.status, schema.sync_jobs.c.error_message)).all()
        posts = conn.scalar(select(func.count()).select_from(schema.posts))
        enriched = conn.scalar(select(func.count()).select_from(schema.enrichments))
    engine.dispose()
    assert [status for status, _ in jobs] == ["partial", "partial"]
    assert all("lack ML results" in message and "lack image recognition" in message for _, message in jobs)
    stories = sum(len(InstagramDataset(dataset).live_stories(p)) for p in range(2))
    assert posts == sum(dataset.post_count(p) for p in range(2)) + stories and enriched == 0


def test_faults_then_clear_and_rerun_then_rebuild_from_raw(airflow_home: Path, tmp_path: Path) -> None:
    """10% of Graph requests fail (throttles, 5xx, timeouts, truncated bodies, resets, repeats)."""
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    faults = FaultPlan(rate=0.10, seed=11, retry_after_s=0.2, timeout_s=1.5)
    with SandboxServer(SandboxConfig(spec=SMALL, job_seconds=0.5, faults=faults)) as sandbox:
        dataset: Dataset = sandbox.app.state.dataset
        env = _env(airflow_home, sandbox, url, timeout=0.5, backoff_s=0.05, max_wait_s=2, max_attempts=8,
                   max_pause_s=0.2)
        engine = warehouse_engine(url)
        with engine.begin() as conn:
            track_entities(conn, NETWORK, tracked_ids(dataset), _now())
        run = ["dags", "test", "instagram_sync", "2026-11-02T00:00:00+00:00", "--conf", json.dumps({"batch_size": 3})]

        _airflow(env, *run)
        assert sum(faults.injected.values()) >= 10 and len(faults.injected) >= 5, faults.injected
        assert_warehouse_matches(engine, dataset, enrich=True)  # 0 lost, 0 duplicated, field by field
        with engine.connect() as conn:
            assert dict(conn.execute(select(schema.sync_jobs.c.status, func.count())
                                     .group_by(schema.sync_jobs.c.status)).all()) == {"succeeded": SMALL.profiles}
        first = checksums(engine)

        faults.rate = 0.0
        # The same day again, for the same profiles: every job continues the one before it.
        _airflow(env, *run[:4], "--conf", json.dumps({"batch_size": 3, "entity_ids": tracked_ids(dataset)}))
        assert checksums(engine) == first
        with engine.connect() as conn:
            relinked = conn.scalar(select(func.count()).where(schema.sync_jobs.c.previous_job_id.is_not(None)))
        assert relinked == SMALL.profiles

        requests = sum(sandbox.counters.values())
        _airflow(env, "dags", "test", "instagram_rebuild")
        assert sum(sandbox.counters.values()) == requests  # not one request to any network
        assert checksums(engine) == first
        engine.dispose()


def _now():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_a_failing_batch_leaves_the_others_loaded_and_no_credential_is_kept(airflow_home: Path,
                                                                             tmp_path: Path) -> None:
    """Through a hostile proxy: one batch's comments step fails for good (credentials refused, the
    token quoted back); paging links and the ML service echo the credentials. The other batches load
    whole, the failed batch's posts load, and neither secret is in any log, XCom or table."""
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    with SandboxServer(SandboxConfig(spec=SMALL, job_seconds=0.5)) as sandbox, HostileProxy(sandbox.url) as proxy:
        dataset: Dataset = sandbox.app.state.dataset
        ids = tracked_ids(dataset)
        batches = [ids[i::3] for i in range(3)]  # plan deals profiles round-robin into 3 batches of 2
        refused = batches[1][0]
        refused_posts = {dataset.post_id(ids.index(refused), j) for j in range(dataset.post_count(ids.index(refused)))}
        expired = {"error": {"message": "Error validating access token: sandbox-token has expired",
                             "type": "OAuthException", "code": 190}}

        def echo(body: Any, request: RequestInfo) -> Any:  # as Graph's own paging.next links do
            paging = body.get("paging") if isinstance(body, dict) else None
            if isinstance(paging, dict) and paging.get("next"):
                paging["next"] += "&access_token=sandbox-token"
            return body

        proxy.rules += [
            Rule(match=r"^GET /v21\.0/(" + "|".join(refused_posts) + r")/comments", action="status", status=400,
                 body=expired),
            Rule(match=r"^GET /v21\.0/", action="rewrite", rewrite=echo),
            Rule(match=r"^GET /ml/v1/jobs/", action="rewrite", rewrite=lambda body, _: {
                **body, "status": "failed", "result": None, "error": {"message": "key sandbox-key is over quota"}}),
        ]
        env = _env(airflow_home, sandbox, url)
        env.update(sandbox_connections(proxy.url, url))
        env["AIRFLOW__SOCIALSYNC__RETRY_DELAY_SECONDS"] = "1"
        env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(tmp_path / "logs")
        engine = warehouse_engine(url)
        with engine.begin() as conn:
            track_entities(conn, NETWORK, ids, _now())
        result = _airflow(env, "dags", "test", "instagram_sync", "--conf", json.dumps({"batch_size": 2}),
                          check=False)
        assert proxy.errors == []
    output = result.stdout + result.stderr
    assert "batch.extract_comments" in output

    with engine.connect() as conn:
        jobs = dict(conn.execute(select(schema.sync_jobs.c.entity_id, schema.sync_jobs.c.status)).all())
        loaded = set(conn.scalars(select(schema.posts.c.post_id)))
    # The refused batch's jobs are partial (comments did not finish or start); its posts loaded all the same.
    assert {jobs[e] for e in batches[1]} == {"partial"}, jobs
    assert refused_posts <= loaded
    healthy = [p for p, e in enumerate(ids) if e not in batches[1]]
    want = expected(dataset, enrich=False)
    got = actual(engine)
    for table in ("posts", "comments", "media"):
        owners = {k for k, row in want[table].items() if _profile_of(dataset, table, k, row) in healthy}
        assert owners <= got[table].keys(), f"{table}: {len(owners - got[table].keys())} missing"
        assert all(got[table][k] == want[table][k] for k in owners)

    secrets = ("sandbox-token", "sandbox-key")
    assert not [s for s in secrets if s in output], "a credential reached the task output"
    for path in [*(tmp_path / "logs").rglob("*"), *airflow_home.rglob("*.log")]:
        if path.is_file():
            assert not [s for s in secrets if s in path.read_text(errors="replace")], path
    metadata_db = (airflow_home / "airflow.db").read_bytes()  # XCom, rendered fields, task notes
    assert not [s for s in secrets if s.encode() in metadata_db]
    with engine.connect() as conn:
        for table in schema.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                assert not [s for s in secrets if s in str(tuple(row))], table.name
    engine.dispose()


def _profile_of(dataset: Dataset, table: str, key: str, row: tuple) -> int:
    post_id = key if table == "posts" else row[0]
    return int(post_id[4:11])  # posts and stories alike: a kind prefix, then the profile's index
