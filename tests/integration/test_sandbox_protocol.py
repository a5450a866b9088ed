"""The sandbox speaks the Graph API protocol, and the Instagram client reads it right."""

from __future__ import annotations

import httpx
import pytest

from socialsync.networks.base import ApiCredentials, AuthError, CursorExpiredError, NotFoundError, QuotaExhaustedError
from socialsync.networks.instagram.client import InstagramClient
from socialsync.sandbox.dataset import Dataset
from socialsync.sandbox.faults import FAULT_KINDS, FaultPlan
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from tests.integration.conftest import SMALL

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
    assert all(len(page.payload["comments"]["data"]) <= 50 for page in pages)  # the replies ride along
    ids = [c["id"] for page in pages for c in page.payload["comments"]["data"]]
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


@pytest.mark.parametrize("kind", [k for k in FAULT_KINDS if k != "repeat"])
def test_the_client_rides_out_every_fault_kind(kind: str) -> None:
    faults = FaultPlan(rate=0.3, kinds=(kind,), seed=3, retry_after_s=0.05, timeout_s=0.5)
    with SandboxServer(SandboxConfig(spec=SMALL, faults=faults)) as sandbox:
        dataset: Dataset = sandbox.app.state.dataset
        p = _biggest_profile(dataset)
        client = _client(sandbox, page_size=7, timeout=0.2, backoff_s=0.01, max_wait_s=1, max_attempts=10,
                         max_pause_s=0.01)
        ids = [i["id"] for page in client.post_pages(dataset.profile_id(p), None) for i in page.payload["data"]]
        client.close()
    assert faults.injected[kind] > 0
    assert ids == [dataset.post_id(p, j) for j in dataset.posts_newest_first(p)]


def test_an_exhausted_quota_stops_at_once_instead_of_retrying() -> None:
    with SandboxServer(SandboxConfig(spec=SMALL, calls_per_hour=2)) as sandbox:
        client = _client(sandbox, max_pause_s=0.01)
        client.fetch_profile(Dataset.profile_id(0))
        client.fetch_profile(Dataset.profile_id(1))
        with pytest.raises(QuotaExhaustedError) as caught:
            client.fetch_profile(Dataset.profile_id(2))
        assert caught.value.retry_after == 3600  # from Graph's estimated_time_to_regain_access
        assert sandbox.counters["graph:quota_refused"] == 1
        assert client.usage_percent() == 100


def test_a_cursor_from_an_earlier_day_has_expired(sandbox: SandboxServer) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    p = _biggest_profile(dataset)
    first = next(_client(sandbox, page_size=5).post_pages(dataset.profile_id(p), None))
    dataset.epoch = 1
    with pytest.raises(CursorExpiredError):
        next(_client(sandbox, page_size=5).post_pages(dataset.profile_id(p), first.next_cursor))


def test_a_repeated_item_across_pages_is_served_as_real_graph_sometimes_does() -> None:
    faults = FaultPlan(rate=1.0, kinds=("repeat",), seed=1)
    with SandboxServer(SandboxConfig(spec=SMALL, faults=faults)) as sandbox:
        dataset: Dataset = sandbox.app.state.dataset
        p = _biggest_profile(dataset)
        pages = list(_client(sandbox, page_size=5).post_pages(dataset.profile_id(p), None))
    ids = [i["id"] for page in pages for i in page.payload["data"]]
    assert len(ids) > len(set(ids)) == dataset.post_count(p)
