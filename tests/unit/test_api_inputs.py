"""The sync API against inputs nobody planned for: each gets a clear 4xx its OpenAPI entry lists, never a 500.

The app runs as the API server mounts it, on the embedded SQLite warehouse, with Airflow's user dependency
and DAG permission replaced by a logged-in user allowed everything (the e2e stack tests the real auth).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from airflow.api_fastapi.core_api.security import get_user
from fastapi.testclient import TestClient

from socialsync.api import app as api
from socialsync.api import queries
from socialsync.storage import schema
from socialsync.storage.engine import warehouse_engine

NOW = datetime(2026, 11, 1, tzinfo=UTC)
BASE = "/v1/networks/instagram"


@pytest.fixture
def client(tmp_path, monkeypatch) -> Any:  # type: ignore[no-untyped-def]
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'w.db'}")
    post = {"network": "instagram", "kind": "image", "deleted": False, "synced_at": NOW, "created_at": NOW}
    with engine.begin() as conn:
        conn.execute(schema.posts.insert(), [{**post, "profile_id": owner, "post_id": f"{owner}_{i}"}
                                             for owner in ("17841400000000001", "17841400000000002")
                                             for i in range(3)])
        conn.execute(schema.sync_jobs.insert(), [{"network": "instagram", "entity_id": "17841400000000001",
                                                  "cursor": {}, "status": "succeeded", "run_id": "r1"}] * 3)
    monkeypatch.setattr(api, "_allowed", lambda user, network, method: True)
    # Airflow's own record of the run (its metadata database is not here): run r1 exists
    monkeypatch.setattr(api, "_run_state", lambda dag_id, run_id: "success" if run_id == "r1" else None)
    api.app.dependency_overrides[get_user] = lambda: object()
    api.app.dependency_overrides[api.warehouse] = lambda: engine
    try:
        yield TestClient(api.app, raise_server_exceptions=False)
    finally:
        api.app.dependency_overrides.clear()
        engine.dispose()


def test_a_posts_cursor_pages_its_own_profile_only(client: TestClient) -> None:
    first = client.get(f"{BASE}/profiles/17841400000000001/posts", params={"limit": 1}).json()
    cursor = first["next_cursor"]
    assert client.get(f"{BASE}/profiles/17841400000000001/posts",
                      params={"limit": 5, "cursor": cursor}).json()["items"]
    other = client.get(f"{BASE}/profiles/17841400000000002/posts", params={"cursor": cursor})
    assert other.status_code == 400 and "another profile" in other.json()["detail"]


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize(("path", "params", "status"), [
    # forged and foreign cursors
    (f"{BASE}/profiles/17841400000000001/posts", {"cursor": _b64(["posts", "17841400000000001", 1, 2])}, 400),
    (f"{BASE}/profiles/17841400000000001/posts", {"cursor": _b64(["posts", "17841400000000001",
                                                                   NOW.isoformat(), "x\x00y"])}, 400),
    (f"{BASE}/profiles/17841400000000001/posts", {"cursor": "%%%"}, 400),
    (f"{BASE}/profiles/17841400000000001/posts", {"cursor": "A" * 5000}, 422),
    (f"{BASE}/runs/r1/jobs", {"cursor": _b64(["run_jobs", "r1", 2**70])}, 400),
    (f"{BASE}/runs/r1/jobs", {"cursor": queries.encode_cursor("posts", (NOW, "p"), "17841400000000001")}, 400),
    # ids outside what the column holds, with unicode, path separators or SQL in them
    (f"{BASE}/jobs/{2**63}", {}, 422),
    (f"{BASE}/jobs/-1", {}, 422),
    (f"{BASE}/jobs/99999", {}, 404),
    (f"{BASE}/profiles/1%27%20OR%201=1--/posts", {}, 400),
    (f"{BASE}/profiles/%E2%9C%93/posts", {}, 400),
    (f"{BASE}/profiles/..%2F..%2Fetc/posts", {}, 404),  # no route has a profile id with a slash
    (f"{BASE}/posts/%00/comments", {}, 400),
    (f"{BASE}/runs/r%001/jobs", {}, 422),
    (f"{BASE}/runs/{'r' * 300}/jobs", {}, 422),
    ("/v1/networks/myspace/jobs", {}, 404),
])
def test_bad_input_gets_a_clear_4xx(client: TestClient, path: str, params: dict[str, str], status: int) -> None:
    answer = client.get(path, params=params)
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]


def test_a_start_with_malformed_or_oversized_json_is_refused(client: TestClient) -> None:
    bad = client.post(f"{BASE}/syncs", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 422
    huge = client.post(f"{BASE}/syncs", json={"entity_ids": [str(10**16 + i) for i in range(100_000)]})
    assert huge.status_code == 400 and "at most 1000" in huge.json()["detail"]


def test_every_operation_documents_the_refusals_it_can_answer() -> None:
    spec = api.app.openapi()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            listed = set(operation["responses"])
            assert "401" in listed, (method, path)
            if path.startswith("/v1/networks/{network}"):
                assert {"403", "404"} <= listed, (method, path)
            if "cursor" in {p["name"] for p in operation.get("parameters", [])} or "_id}" in path:
                assert "400" in listed or path.endswith("/jobs/{job_id}"), (method, path)
