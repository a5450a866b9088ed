"""The sandbox speaks the Graph API protocol, and the Instagram client reads it right."""

from __future__ import annotations

import httpx
import pytest

from socialsync.networks.base import ApiCredentials, AuthError, NotFoundError
from socialsync.networks.instagram.client import InstagramClient
from socialsync.sandbox.dataset import Dataset
from socialsync.sandbox.server import SandboxServer

AUTH = {"Authorization": "Bearer sandbox-token"}


def _client(sandbox: SandboxServer, **options: object) -> InstagramClient:
    return InstagramClient(ApiCredentials(f"{sandbox.url}/v21.0", "sandbox-token", dict(options)))


def _biggest_profile(dataset: Dataset) -> int:
    return max(range(dataset.spec.profiles), key=dataset.post_count)


def test_media_pages_walk_every_post_newest_first(sandbox: SandboxServer) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    p = _biggest_profile(dataset)
    client = _client(sandbox, page_size=7)
    pages = list(client.post_pages(dataset.profile_id(p), None))
    ids = [item["id"] for page in pages for item in page.payload["data"]]
    assert ids == [dataset.post_id(p, j) for j in range(dataset.post_count(p) - 1, -1, -1)]
    assert all(page.item_count <= 7 for page in pages)
    assert any(page.item_count < 7 for page in pages[:-1]), "some pages must come back short"
    assert pages[-1].next_cursor is None and all(page.next_cursor for page in pages[:-1])
    assert pages[0].cursor is None and pages[1].cursor == pages[0].next_cursor
    assert "access_token" not in str([page.request for page in pages])  # the token stays in a header


def test_resuming_from_a_cursor_continues_exactly(sandbox: SandboxServer) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    p = _biggest_profile(dataset)
    client = _client(sandbox, page_size=5)
    first = list(client.post_pages(dataset.profile_id(p), None))
    resumed = list(client.post_pages(dataset.profile_id(p), first[1].next_cursor))
    assert [pg.payload["data"] for pg in resumed] == [pg.payload["data"] for pg in first[2:]]


def test_limit_is_capped_and_comments_come_newest_first(sandbox: SandboxServer) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    p = _biggest_profile(dataset)
    body = httpx.get(f"{sandbox.url}/v21.0/{dataset.profile_id(p)}/media", params={"limit": 500},
                     headers=AUTH).json()
    assert len(body["data"]) <= 100
    j = max(range(dataset.post_count(p)), key=lambda j: dataset.comment_count(p, j))
    client = _client(sandbox, comments_page_size=500)
    pages = list(client.comment_pages(dataset.post_id(p, j), None))
    assert all(page.item_count <= 50 for page in pages)
    ids = [c["id"] for page in pages for c in page.payload["data"]]
    assert ids == [dataset.comment_id(p, j, k) for k in range(dataset.comment_count(p, j) - 1, -1, -1)]


def test_fields_select_what_comes_back_including_carousel_children(sandbox: SandboxServer) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    p, j = next((p, j) for p in range(dataset.spec.profiles) for j in range(dataset.post_count(p))
                if dataset.post(p, j).children)
    body = httpx.get(f"{sandbox.url}/v21.0/{dataset.post_id(p, j)}",
                     params={"fields": "id,media_type,children{id,media_type}"}, headers=AUTH).json()
    assert body["media_type"] == "CAROUSEL_ALBUM" and set(body) == {"id", "media_type", "children"}
    assert body["children"]["data"][0] == {"id": dataset.child_id(p, j, 0),
                                           "media_type": dataset.post(p, j).children[0].media_type}


def test_errors_are_graph_errors_with_usage_headers(sandbox: SandboxServer) -> None:
    missing = httpx.get(f"{sandbox.url}/v21.0/17840000000000999999", headers=AUTH)
    assert missing.status_code == 400 and missing.json()["error"]["code"] == 100
    assert "call_count" in missing.headers["x-app-usage"]
    with pytest.raises(NotFoundError):
        _client(sandbox).fetch_profile("17840000000000999999")
    bad = InstagramClient(ApiCredentials(f"{sandbox.url}/v21.0", "wrong-token"))
    with pytest.raises(AuthError):
        bad.fetch_profile(Dataset.profile_id(0))


def test_job_services_go_pending_processing_done(sandbox: SandboxServer) -> None:
    import time

    key = {"X-Api-Key": "sandbox-key"}
    assert httpx.post(f"{sandbox.url}/ml/v1/jobs", json={"items": []}, headers=key).status_code == 422
    assert httpx.post(f"{sandbox.url}/ml/v1/jobs", json={"items": [{"id": "a", "text": "x"}]}).status_code == 401
    job = httpx.post(f"{sandbox.url}/vision/v1/jobs", headers=key, json={"items": [
        {"id": "media:1", "type": "image", "url": "https://cdn/1.jpg"}]}).json()["job_id"]
    seen = []
    while not seen or seen[-1] not in ("done", "failed"):
        seen.append(httpx.get(f"{sandbox.url}/vision/v1/jobs/{job}", headers=key).json()["status"])
        time.sleep(0.05)
    assert seen[0] == "pending" and "processing" in seen and seen[-1] == "done"
