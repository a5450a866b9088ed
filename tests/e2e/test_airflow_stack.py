"""Real Airflow 3 components on loopback, one stack for the module, the tests in order:

1. the daily run, a clear through REST, a conf-triggered run, a downstream DAG on an Asset;
2. the sync API (the plugin's app on the api-server): 401 / 403, a sync started through it, its jobs
   followed to the end and what it loaded read back, equal to the sandbox's truth;
3. the plugin's page in Airflow's UI, in headless Chromium, with a screenshot kept.

Real logins (Airflow's simple auth manager with a passwords file): an admin, and an analyst who
may only read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from sqlalchemy import Engine, func, select

from socialsync.local.airflow import api_env, local_airflow, prepare_metadata
from socialsync.local.settings import Pool, airflow_env
from socialsync.sandbox.dataset import Dataset
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.storage import schema
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.planning import track_entities
from tests.conftest import ROOT
from tests.e2e.stack import free_port, wait
from tests.integration.conftest import SMALL
from tests.integration.sync_helpers import checksums, clock, tracked_ids
from tests.integration.truth import assert_warehouse_matches, expected
from tests.sandbox_connections import sandbox_connections

DAG = "instagram_sync"
DOWNSTREAM = "fresh_instagram_comments"
API = "/socialsync/v1"
SECRETS = ("sandbox-token", "sandbox-key", "sandbox-secret")
# Where the UI test leaves its screenshot (CI keeps the folder as the run's artifact).
ARTIFACTS = Path(os.environ.get("SOCIALSYNC_ARTIFACTS", ROOT / "test-artifacts"))

# A team's own DAG, scheduled on a socialsync Asset: it runs when a sync has loaded comments.
DOWNSTREAM_DAG = """
from datetime import datetime

from airflow.sdk import DAG, Asset, task

with DAG("fresh_instagram_comments", schedule=[Asset("socialsync://instagram/comments")],
         start_date=datetime(2026, 1, 1), catchup=False):

    @task
    def report(*, triggering_asset_events=None):
        rows = [event.extra["rows"] for events in triggering_asset_events.values() for event in events]
        print(f"fresh comments: {sum(rows)} row(s) in {len(rows)} event(s)")
        return sum(rows)

    report()
"""


@dataclass
class Stack:
    url: str
    api: httpx.Client  # as the admin
    token: str
    engine: Engine
    dataset: Dataset
    logs: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("stack")
    port, logs = free_port(), tmp / "logs"
    url = f"sqlite:///{tmp / 'warehouse.db'}"
    engine = warehouse_engine(url)
    with SandboxServer(SandboxConfig(spec=SMALL, job_seconds=1.0)) as sandbox:
        dataset: Dataset = sandbox.app.state.dataset
        with engine.begin() as conn:
            track_entities(conn, "instagram", tracked_ids(dataset), clock())
        dags = tmp / "dags"  # the package's DAGs, and a downstream one of the team's own
        dags.mkdir()
        (dags / "socialsync_dags.py").symlink_to(ROOT / "dags" / "socialsync_dags.py")
        (dags / "fresh_instagram_comments.py").write_text(DOWNSTREAM_DAG)
        env = api_env(airflow_env(tmp / "airflow", dags, sandbox_connections(sandbox.url, url)), port)
        env["AIRFLOW__SOCIALSYNC__ENRICH_POLL_SECONDS"] = "2"
        passwords = tmp / "passwords.json"
        passwords.write_text(json.dumps({"admin": "admin", "analyst": "analyst-password"}))
        env.update({"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,analyst:viewer",
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords)})
        prepare_metadata(env, [Pool("instagram_api", 4, "Instagram Graph API work")])
        with local_airflow(env, port, logs):
            base = f"http://127.0.0.1:{port}"
            token = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": "admin"},
                               timeout=30).json()["access_token"]
            with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}) as api:
                yield Stack(base, api, token, engine, dataset, logs)
    engine.dispose()
    # No component's log (api-server, scheduler, dag-processor, triggerer, every task's log) holds a
    # credential, although the sandbox's paging links carry the token as Graph's do.
    files = [p for p in (*logs.rglob("*"), *(tmp / "airflow").rglob("*.log*")) if p.is_file()]
    assert any("extract_posts" in str(p) for p in files), "no task log was found to check"
    for path in files:
        text = path.read_text(errors="replace")
        assert not [s for s in SECRETS if s in text], path


def test_daily_run_clear_and_conf_run_through_the_rest_api(stack: Stack) -> None:
    api, engine, dataset = stack.api, stack.engine, stack.dataset
    wait("the DAG to be parsed", lambda: api.get(f"/api/v2/dags/{DAG}").status_code == 200, stack.logs)
    wait("the downstream DAG to be parsed",
          lambda: api.get(f"/api/v2/dags/{DOWNSTREAM}").status_code == 200, stack.logs)
    assert api.patch(f"/api/v2/dags/{DOWNSTREAM}", json={"is_paused": False}).status_code == 200

    refused = api.post(f"/api/v2/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": {"scope": "nope"}})
    assert refused.status_code == 400 and "is not one of" in refused.text

    # New DAGs start paused; unpausing lets the scheduler create today's daily run.
    assert api.patch(f"/api/v2/dags/{DAG}", json={"is_paused": False}).status_code == 200

    def finished_runs() -> list[dict[str, Any]]:
        runs = api.get(f"/api/v2/dags/{DAG}/dagRuns", params={"order_by": "run_after"}).json()["dag_runs"]
        bad = [r for r in runs if r["state"] == "failed"]
        assert not bad, f"run failed: {bad}; see {stack.logs}"
        return [r for r in runs if r["state"] == "success"]

    daily = wait("the daily run", finished_runs, stack.logs)[0]
    assert daily["run_type"] == "scheduled"
    # The run's outcome is its note: jobs per status, rows loaded, requests.
    note = api.get(f"/api/v2/dags/{DAG}/dagRuns/{daily['dag_run_id']}").json()["note"] or ""
    assert f"socialsync instagram: {SMALL.profiles} job(s): {SMALL.profiles} succeeded" in note, note
    assert "rows loaded: " in note and "API requests: " in note
    assert_warehouse_matches(engine, dataset, enrich=True)
    before = checksums(engine)

    # load emitted socialsync://instagram/comments (rows in extra): the downstream DAG ran on it.
    events = api.get("/api/v2/assets/events", params={"order_by": "timestamp"}).json()["asset_events"]
    comment_events = [e for e in events if e["uri"] == "socialsync://instagram/comments"]
    assert comment_events and sum(e["extra"]["rows"] for e in comment_events) > 0, events
    wait("the downstream DAG's asset-triggered run", lambda: [
        r for r in api.get(f"/api/v2/dags/{DOWNSTREAM}/dagRuns").json()["dag_runs"]
        if r["state"] == "success" and r["run_type"] == "asset_triggered"], stack.logs)

    # Clear the finished run, as from the UI: it runs again and changes nothing.
    cleared = api.post(f"/api/v2/dags/{DAG}/clearTaskInstances", json={
        "dag_run_id": daily["dag_run_id"], "dry_run": False, "only_failed": False, "reset_dag_runs": True})
    assert cleared.status_code == 200, cleared.text
    wait("the cleared run to finish again", lambda: any(
        r["dag_run_id"] == daily["dag_run_id"] and r["end_date"] != daily["end_date"]
        for r in finished_runs()), stack.logs)
    assert checksums(engine) == before
    with engine.connect() as conn:
        relinked = conn.scalar(select(func.count()).where(schema.sync_jobs.c.previous_job_id.is_not(None)))
    assert relinked == SMALL.profiles

    # Another system triggers a run with conf through the REST API.
    one = tracked_ids(dataset)[1]
    triggered = api.post(f"/api/v2/dags/{DAG}/dagRuns", json={
        "logical_date": None, "conf": {"entity_ids": [one], "scope": "posts", "full_refresh": True}})
    assert triggered.status_code == 200, triggered.text
    run_id = triggered.json()["dag_run_id"]
    wait("the conf run", lambda: any(r["dag_run_id"] == run_id for r in finished_runs()), stack.logs)
    with engine.connect() as conn:
        last = conn.execute(select(schema.sync_jobs.c.entity_id, schema.sync_jobs.c.status)
                            .order_by(schema.sync_jobs.c.id.desc()).limit(1)).one()
    assert tuple(last) == (one, "succeeded")


def _all(api: httpx.Client, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Every page of a list, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        answer = api.get(path, params={"limit": limit, **params, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return items


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_unauthenticated_calls_get_401(stack: Stack) -> None:
    for method, path in [("GET", "/networks"), ("POST", "/networks/instagram/syncs"),
                         ("GET", "/networks/instagram/jobs/1"), ("GET", "/networks/instagram/profiles/1/posts")]:
        answer = httpx.request(method, f"{stack.url}{API}{path}", json={}, timeout=30)
        assert answer.status_code == 401, (path, answer.text)
    forged = httpx.get(f"{stack.url}{API}/networks", headers={"Authorization": "Bearer not-a-jwt"}, timeout=30)
    assert forged.status_code in (401, 403)
    page = httpx.get(f"{stack.url}/socialsync/ui/jobs", timeout=30, follow_redirects=False)
    assert page.status_code == 401
    # A viewer reads, but may not start a run.
    token = httpx.post(f"{stack.url}/auth/token", json={"username": "analyst", "password": "analyst-password"},
                       timeout=30).json()["access_token"]
    viewer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{stack.url}{API}/networks", headers=viewer, timeout=30).status_code == 200
    refused = httpx.post(f"{stack.url}{API}/networks/instagram/syncs", json={}, headers=viewer, timeout=30)
    assert refused.status_code == 403, refused.text


def test_a_user_starts_a_sync_follows_its_jobs_and_reads_what_it_loaded(stack: Stack) -> None:
    api, dataset = stack.api, stack.dataset
    answers: list[str] = []

    def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = api.request(method, f"{API}{path}", **kwargs)
        answers.append(response.text)
        return response

    assert [n["name"] for n in call("GET", "/networks").json()] == ["instagram", "youtube", "tiktok"]
    # Bad requests: the DAG's Params and the run's own checks, each a 400 that says what is wrong.
    for conf, words in [({"scope": "nope"}, "scope"), ({"entity_ids": ["a b"]}, "not a valid instagram id"),
                        ({"entity_idz": ["1"]}, "did you mean 'entity_ids'"),
                        ({"lookback_days": 1000}, "lookback_days")]:
        refused = call("POST", "/networks/instagram/syncs", json=conf)
        assert refused.status_code == 400 and words in refused.json()["detail"], (conf, refused.text)
    assert call("POST", "/networks/myspace/syncs", json={}).status_code == 404
    assert call("POST", "/networks/instagram/syncs", content=b"[1, 2", headers={
        "Content-Type": "application/json"}).status_code == 422

    chosen = tracked_ids(dataset)[:2]  # two owned accounts
    started = call("POST", "/networks/instagram/syncs", json={"entity_ids": chosen, "full_refresh": True})
    assert started.status_code == 201, started.text
    run_id = started.json()["run_id"]
    assert started.json()["jobs_url"] == f"{API}/networks/instagram/runs/{run_id}/jobs"

    def finished() -> dict[str, Any] | None:
        body = call("GET", f"/networks/instagram/runs/{run_id}/jobs").json()
        assert body["state"] != "failed", (body, stack.logs)
        return body if body["state"] == "success" else None

    run = wait("the run started through the API", finished, stack.logs)
    assert run["summary"] == {"succeeded": 2}
    assert sorted(j["entity_id"] for j in run["jobs"]) == sorted(chosen)
    assert all(j["counts"]["pages"] > 0 and j["counts"]["items"] > 0 for j in run["jobs"])
    paged = _all_jobs(call, run_id)
    assert [j["id"] for j in paged] == [j["id"] for j in run["jobs"]]

    one = call("GET", f"/networks/instagram/jobs/{run['jobs'][0]['id']}").json()
    assert one["status"] == "succeeded" and one["run_id"] == run_id
    assert one["sync_tasks"] and {t["kind"] for t in one["sync_tasks"]} >= {"comments"}
    statuses = {t["kind"]: t["status"] for t in one["sync_tasks"] if t["kind"] != "comments"}
    assert statuses == {"profile": "succeeded", "posts": "succeeded", "comment_threads": "succeeded",
                        "stories": "succeeded", "normalize": "succeeded", "likes": "skipped",
                        "subscriptions": "skipped", "pinned": "skipped"}, one["sync_tasks"]
    assert {t["status"] for t in one["sync_tasks"] if t["kind"] == "comments"} == {"succeeded"}

    truth = expected(dataset)
    for profile_id in chosen:
        profile = call("GET", f"/networks/instagram/profiles/{profile_id}").json()
        assert profile["last_synced_at"] is not None and profile["last_jobs"][0]["run_id"] == run_id
        want_posts = {k: v for k, v in truth["posts"].items() if v[0] == profile_id}
        assert profile["counts"]["posts"] == len(want_posts)
        assert profile["profile"]["username"] == truth["profiles"][profile_id][0]
        assert profile["metrics"] and all(points for points in profile["metrics"].values())

        posts = _all(api, f"{API}/networks/instagram/profiles/{profile_id}/posts", limit=4)
        assert [p["created_at"] for p in posts] == sorted((p["created_at"] for p in posts), reverse=True)
        assert {p["post_id"]: (p["profile_id"], p["kind"], p["product_type"], p["caption"], p["permalink"],
                               _time(p["created_at"]), p["like_count"], p["comments_count"])
                for p in posts} == want_posts

        busiest = max(want_posts, key=lambda post_id: want_posts[post_id][-1] or 0)  # a story counts none
        comments = _all(api, f"{API}/networks/instagram/posts/{busiest}/comments", limit=3)
        want_comments = {k: v for k, v in truth["comments"].items() if v[0] == busiest}
        assert len(comments) == len(want_comments) > 3  # it took several pages
        assert {c["comment_id"]: (c["post_id"], c["parent_comment_id"], c["author_id"], c["author_username"],
                                  c["content"], _time(c["created_at"]), c["like_count"])
                for c in comments} == want_comments

        results = _all(api, f"{API}/networks/instagram/posts/{busiest}/enrichments", limit=2)
        media = {k for k, v in truth["media"].items() if v[0] == busiest}
        want = {k: v for k, v in truth["enrichments"].items()
                if (k[0] == "post" and k[1] == busiest) or (k[0] == "media" and k[1] in media)}
        assert {(e["item_kind"], e["item_id"], e["service"]): e["result"] for e in results} == want

    # A job of the cleared daily run continues the one the clear superseded: both ends of the link.
    rerun = next(j for j in call("GET", "/networks/instagram/jobs").json()["jobs"] if j["previous_job_id"])
    earlier = call("GET", f"/networks/instagram/jobs/{rerun['previous_job_id']}").json()
    assert earlier["continued_by"] == rerun["id"] and earlier["entity_id"] == rerun["entity_id"]

    # No id of one network reads another's data, whatever it is asked through.
    job_id, post_id = run["jobs"][0]["id"], next(iter(truth["posts"]))
    assert call("GET", f"/networks/youtube/jobs/{job_id}").status_code == 404
    assert call("GET", f"/networks/tiktok/posts/{post_id}/comments").status_code == 404
    assert call("GET", f"/networks/tiktok/profiles/{chosen[0]}/posts").json()["items"] == []
    assert call("GET", f"/networks/tiktok/profiles/{chosen[0]}").status_code == 404
    refused = call("GET", f"/networks/youtube/profiles/{chosen[0]}/posts")
    assert refused.status_code == 404 and "not a youtube id" in refused.json()["detail"]
    assert call("GET", f"/networks/youtube/runs/{run_id}/jobs").status_code == 404
    # Malformed ids and cursors are 400s, not errors.
    assert call("GET", "/networks/instagram/posts/..%2Fx/comments").status_code in (400, 404)
    assert call("GET", f"/networks/instagram/posts/{post_id}/comments", params={"cursor": "bm9wZQ"}).status_code == 400
    assert call("GET", f"/networks/instagram/profiles/{chosen[0]}/posts", params={"limit": 0}).status_code == 422
    # OpenAPI of the plugin's own app.
    schema = api.get("/socialsync/openapi.json").json()
    assert "/v1/networks/{network}/syncs" in schema["paths"]
    assert api.get("/socialsync/docs").status_code == 200
    leaked = [s for s in SECRETS for text in answers if s in text]
    assert not leaked


def _all_jobs(call: Any, run_id: str) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    cursor = None
    while True:
        body = call("GET", f"/networks/instagram/runs/{run_id}/jobs",
                    params={"limit": 1, **({"cursor": cursor} if cursor else {})}).json()
        jobs += body["jobs"]
        cursor = body["next_cursor"]
        if not cursor:
            return jobs


@contextmanager
def logged_in_page(stack: Stack, height: int) -> Iterator[Any]:
    """A page of headless Chromium in a logged-in session (the UI keeps the user's JWT in a cookie)."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            context = browser.new_context(viewport={"width": 1400, "height": height})
            context.add_cookies([{"name": "_token", "value": stack.token, "url": stack.url}])
            yield context.new_page()
        finally:
            browser.close()


def test_the_jobs_page_in_airflows_ui_shows_the_runs_jobs(stack: Stack) -> None:
    jobs = stack.api.get(f"{API}/networks/instagram/jobs", params={"limit": 20}).json()["jobs"]
    assert jobs, "the previous tests' runs left no jobs to show"
    with logged_in_page(stack, height=900) as page:
        page.goto(f"{stack.url}/plugin/socialsync-jobs")
        frame = page.frame_locator("iframe")
        section = frame.locator("section[data-network=instagram]")
        section.locator("tr[data-job]").first.wait_for(timeout=60_000)
        rows = section.locator("tr[data-job]")
        assert rows.count() == len(jobs)
        first = rows.first
        assert first.get_attribute("data-job") == str(jobs[0]["id"])
        assert jobs[0]["entity_id"] in first.inner_text() and "succeeded" in first.inner_text()
        assert first.locator("[data-testid=items]").inner_text() == str(jobs[0]["counts"]["items"])
        link = first.locator("a")
        assert link.get_attribute("href") == f"/dags/instagram_sync/runs/{quote(jobs[0]['run_id'])}"
        latest = section.locator("[data-testid=latest-run]")  # the run the API started: two jobs
        assert latest.locator("a").inner_text() == jobs[0]["run_id"]
        assert " ".join(latest.inner_text().split()).endswith(": 2 succeeded"), latest.inner_text()
        assert frame.locator("section[data-network=youtube]").inner_text().count("No jobs yet") == 1
        page.screenshot(path=str(ARTIFACTS / "sync-jobs-page.png"), full_page=True)

        # The Sync jobs tab of a run's page: the run the API started, its two jobs.
        run_id = jobs[0]["run_id"]
        of_run = [j for j in jobs if j["run_id"] == run_id]
        page.goto(f"{stack.url}/dags/instagram_sync/runs/{quote(run_id, safe='')}/plugin/socialsync-run-jobs")
        tab = page.frame_locator("iframe")
        tab.locator("tr[data-job]").first.wait_for(timeout=60_000)
        assert sorted(tab.locator("tr[data-job]").evaluate_all("rows => rows.map(r => r.dataset.job)")) == sorted(
            str(j["id"]) for j in of_run)
        assert tab.locator("[data-testid=summary]").inner_text().strip() == f"{len(of_run)} succeeded"
        page.screenshot(path=str(ARTIFACTS / "sync-jobs-run-tab.png"), full_page=True)
        # Another DAG's run shows the tab too, and says it holds no sync jobs.
        page.goto(f"{stack.url}/dags/{DOWNSTREAM}/runs/x/plugin/socialsync-run-jobs")
        assert "not a socialsync sync DAG" in page.frame_locator("iframe").locator(
            "[data-testid=not-socialsync]").inner_text(timeout=60_000)
    assert (ARTIFACTS / "sync-jobs-page.png").stat().st_size > 10_000


def test_each_connection_types_form_in_the_ui_shows_its_fields_and_saves_them(stack: Stack) -> None:
    """Admin -> Connections -> Add Connection in headless Chromium, for each socialsync type: the standard
    fields relabelled (the unused ones hidden), every extra the code reads with its description; an Instagram
    connection filled in and saved through the form is one the sync reads (the unset fields saved as null,
    which the sync reads as unset)."""
    from airflow.models.connection import Connection

    from socialsync.airflow.connections import extras
    from socialsync.connection_types import INSTAGRAM, ML, TIKTOK, VISION, YOUTUBE

    with logged_in_page(stack, height=1000) as page:
        for kind in (INSTAGRAM, YOUTUBE, TIKTOK, ML, VISION):
            page.goto(f"{stack.url}/connections")
            page.get_by_role("button", name="Add Connection").click()
            dialog = page.locator("[role=dialog]")
            dialog.get_by_role("combobox").first.fill(kind.hook_name)
            page.keyboard.press("Enter")
            for label in kind.relabeling.values():
                dialog.get_by_text(label, exact=True).wait_for(timeout=30_000)
            for hidden in kind.hidden:
                assert dialog.get_by_label(hidden.capitalize(), exact=True).count() == 0, (kind.conn_type, hidden)
            if kind is INSTAGRAM:
                dialog.get_by_label("Connection ID").fill("instagram_from_the_form")
                dialog.get_by_label(kind.relabeling["host"]).fill("https://graph.facebook.com/v21.0")
                dialog.get_by_label(kind.relabeling["password"]).fill("form-token-0123456789")
            dialog.get_by_role("button", name="Extra Fields", exact=True).click()
            for field in kind.fields:
                dialog.get_by_text(field.label, exact=True).wait_for(timeout=30_000)
                assert field.description in dialog.inner_text(), (kind.conn_type, field.name)
            page.screenshot(path=str(ARTIFACTS / f"connection-form-{kind.conn_type}.png"), full_page=True)
            if kind is INSTAGRAM:
                dialog.get_by_label("Media page size").fill("50")
                dialog.get_by_role("button", name="Save").click()
                dialog.wait_for(state="hidden", timeout=30_000)
    saved = stack.api.get("/api/v2/connections/instagram_from_the_form").json()
    assert saved["conn_type"] == "socialsync_instagram" and saved["host"] == "https://graph.facebook.com/v21.0"
    stored = json.loads(saved["extra"])
    assert stored["page_size"] == 50 and stored["max_in_flight"] is None  # every field saved, unset ones null
    connection = Connection(conn_id=saved["connection_id"], conn_type=saved["conn_type"], extra=saved["extra"])
    assert extras(connection) == {"page_size": 50}  # type: ignore[arg-type]  # what the sync reads of it
    assert (ARTIFACTS / "connection-form-socialsync_instagram.png").stat().st_size > 10_000


# --- the sync API fuzzed from its own OpenAPI schema (Schemathesis), on the live api-server --------------
# Last in the module, so that the warehouse and Airflow hold the runs, jobs, posts and comments the tests
# above made: generated ids and cursors meet real rows as well as missing ones. The user is the analyst, a
# viewer (the admin's starting of syncs is the test above: fuzzing it would queue a run per example).
FUZZ_EXAMPLES = int(os.environ.get("SOCIALSYNC_FUZZ_EXAMPLES", "40"))


def test_the_sync_api_fuzzed_by_a_logged_in_user_answers_as_its_schema_says(stack: Stack, tmp_path: Path) -> None:
    """Schemathesis's own run (its examples, coverage and fuzzing phases, valid and invalid inputs) with
    every check it has: no server error; status codes, content types, headers and bodies as each
    operation documents them; invalid input refused and valid input accepted; the same request without
    its login refused."""
    token = httpx.post(f"{stack.url}/auth/token", json={"username": "analyst", "password": "analyst-password"},
                       timeout=30).json()["access_token"]
    config = tmp_path / "schemathesis.toml"
    config.write_text(_known_ids(stack))
    run = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(config), "run",
         f"{stack.url}/socialsync/openapi.json",
         "--url", f"{stack.url}/socialsync", "--header", f"Authorization: Bearer {token}", "--checks", "all",
         "--phases", "examples,coverage,fuzzing", "--mode", "all", "--max-examples", str(FUZZ_EXAMPLES),
         "--seed", "1", "--generation-database", "none", "--workers", "2", "--request-timeout", "30",
         "--no-color", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=540, cwd=tmp_path)  # its cache and reports stay in tmp_path
    tail = run.stdout[-6000:]
    print(tail)
    assert run.returncode == 0, tail + run.stderr[-2000:]
    assert "sandbox-" not in run.stdout  # no credential the API might have echoed


def _known_ids(stack: Stack) -> str:
    """A Schemathesis config whose dictionaries hold ids that exist (the networks, and the profiles, posts,
    jobs and runs of the warehouse): each path parameter takes one of them most of the time, so that
    generated queries and cursors reach rows, and a generated value otherwise."""
    s = schema
    with stack.engine.connect() as conn:
        known: dict[str, list[Any]] = {
            "network": ["instagram", "youtube", "tiktok"],
            "profile_id": list(conn.scalars(select(s.profiles.c.profile_id).limit(20))),
            "post_id": list(conn.scalars(select(s.posts.c.post_id).order_by(s.posts.c.comments_count.desc())
                                         .limit(20))),
            "job_id": list(conn.scalars(select(s.sync_jobs.c.id).limit(20))),
            "run_id": list(conn.scalars(select(s.sync_jobs.c.run_id).distinct().limit(20))),
        }
    lines = ["[parameters]"]
    lines += [f'"path.{name}" = {{ dictionary = "{name}", probability = 0.8 }}' for name, values in known.items()
              if values]
    for name, values in known.items():
        if values:
            lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}"]
    # A list's cursor is opaque: one the API did not hand out is a 400 (documented), and a fuzzer cannot make
    # one that it did, so a schema-valid request of these lists may be refused so (the test above pages
    # each with the cursors it hands out).
    lines += ["[[operations]]", 'include-path-regex = "/(jobs|posts|follows|likes|comments|enrichments)$"',
              'checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404"]']
    return "\n".join(lines) + "\n"


def test_the_sync_api_fuzzed_without_a_login_answers_only_401(stack: Stack) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.url}/socialsync/openapi.json")
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), results  # every operation's schema is valid
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) >= 10
    seen: Counter[int] = Counter()
    for operation in operations:
        @settings(max_examples=FUZZ_EXAMPLES // 4, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())  # schema-valid: a path no route has is a 404 for anyone
        def unauthenticated(case: Any) -> None:
            # A credential generated from the security schemes is a forged one (Airflow answers it 403, as
            # its own REST API does), not the absence of a login.
            (case.headers or {}).pop("Authorization", None)
            (case.cookies or {}).clear()
            answer = case.call(base_url=f"{stack.url}/socialsync", timeout=30)
            seen[answer.status_code] += 1
            assert answer.status_code == 401, (case.method, case.formatted_path, answer.status_code,
                                               answer.text[:300])
        unauthenticated()
    print(f"\nwithout a login, {len(operations)} operations: {dict(seen)}")
