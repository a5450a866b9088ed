"""The YouTube sandbox serves subscriptions.list by channelId: orders, page tokens, private lists, epochs, quota."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest

from socialsync.sandbox.dataset import REFERENCE_NOW, Dataset, DatasetSpec
from socialsync.sandbox.faults import FaultPlan
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.sandbox.youtube_dataset import YouTubeDataset, youtube_time
from tests.integration.conftest import SMALL

KEY = {"X-Goog-Api-Key": "sandbox-key"}
_CHANNEL = re.compile(r"^UC[A-Za-z0-9_-]{22}$")


def _yt(sandbox: SandboxServer) -> YouTubeDataset:
    data: YouTubeDataset = sandbox.app.state.youtube.data
    return data


def _get(sandbox: SandboxServer, **params: Any) -> httpx.Response:
    return httpx.get(f"{sandbox.url}/youtube/v3/subscriptions", params=params, headers=KEY, timeout=5)


def _walk(sandbox: SandboxServer, **params: Any) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    token = None
    while not pages or token:
        answer = _get(sandbox, **params, **({"pageToken": token} if token else {}))
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        token = pages[-1].get("nextPageToken")
    return pages


def _reason(answer: httpx.Response) -> tuple[int, str, str]:
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "errors", "status"} and error["code"] == answer.status_code
    return answer.status_code, error["errors"][0]["reason"], error["errors"][0]["domain"]


def _public(data: YouTubeDataset) -> list[int]:
    return [p for p in range(data.dataset.spec.profiles) if not data.subscriptions_private(p)]


def test_subscriptions_are_long_tailed_mixed_and_some_private() -> None:
    data = YouTubeDataset(Dataset(DatasetSpec(seed=7, profiles=600, posts_median=2, posts_max=5)))
    counts = sorted(data.subscription_count(p) for p in range(600))
    assert counts[300] <= 40 and counts[-1] > 100 and counts[0] == 0
    assert 0.08 < sum(map(data.subscriptions_private, range(600))) / 600 < 0.22
    subs = [data.subscription(p, s) for p in range(40) for s in data.subscriptions(p)]
    own, outside = [t for t in subs if t.channel_index is not None], [t for t in subs if t.channel_index is None]
    assert own and len(outside) > len(own)
    assert all(t.channel_id == data.channel_id(t.channel_index) != data.channel_id(t.subscriber_index) for t in own)
    assert all(_CHANNEL.match(t.channel_id) and data.parse_channel_id(t.channel_id) is None for t in outside)
    for p in range(40):
        targets = [data.subscription(p, s).channel_id for s in data.subscriptions(p)]
        assert len(set(targets)) == len(targets)  # a channel is subscribed to once


def test_subscriptions_page_through_the_relevance_order(sandbox: SandboxServer) -> None:
    data = _yt(sandbox)
    public = [p for p in _public(data) if data.subscription_count(p) > 10]
    assert len(public) >= 2
    calls = 0
    for p in public:
        channel = data.channel_id(p)
        pages = _walk(sandbox, part="snippet,contentDetails", channelId=channel, maxResults=4)
        items = [item for page in pages for item in page["items"]]
        truth = [data.subscription(p, s) for s in data.subscriptions(p)]
        assert [item["id"] for item in items] == [t.id for t in truth] and len(truth) == data.subscription_count(p)
        for item, sub in zip(items, truth, strict=True):
            assert item["kind"] == "youtube#subscription" and item["etag"]
            assert item["snippet"] == {
                "publishedAt": youtube_time(sub.published_at), "title": sub.title, "description": "",
                "resourceId": {"kind": "youtube#channel", "channelId": sub.channel_id}, "channelId": channel,
                "thumbnails": {t.name: {"url": t.url, "width": t.width, "height": t.height} for t in sub.thumbnails}}
            assert item["contentDetails"]["totalItemCount"] == sub.video_count
        published = [item["snippet"]["publishedAt"] for item in items]
        assert published != sorted(published) and published != sorted(published, reverse=True)  # no time order
        assert all(page["pageInfo"] == {"totalResults": len(truth), "resultsPerPage": 4} for page in pages)
        assert all(page["kind"] == "youtube#subscriptionListResponse" for page in pages)
        assert all("nextPageToken" in page for page in pages[:-1]) and "nextPageToken" not in pages[-1]
        assert len(pages) == data.subscription_pages(p, 4)
        calls += len(pages)
        default = _walk(sandbox, part="id", channelId=channel)  # maxResults 5 by default
        assert [i["id"] for page in default for i in page["items"]] == [t.id for t in truth]
        assert all(len(page["items"]) <= 5 for page in default) and len(default) == data.subscription_pages(p, 5)
        calls += len(default)
    assert sandbox.counters["youtube:subscriptions"] == calls == sandbox.counters["youtube:units"]
    clamped = _get(sandbox, part="id", channelId=data.channel_id(public[0]), maxResults=500).json()
    assert clamped["pageInfo"]["resultsPerPage"] == 50 and "nextPageToken" not in clamped
    empty = next((p for p in _public(data) if not data.subscription_count(p)), None)
    if empty is not None:
        assert _get(sandbox, part="id", channelId=data.channel_id(empty)).json()["items"] == []


def test_alphabetical_and_unread_orders_and_tokens_bound_to_their_order(sandbox: SandboxServer) -> None:
    data = _yt(sandbox)
    p = max(_public(data), key=data.subscription_count)
    channel = data.channel_id(p)
    by_title = [i for page in _walk(sandbox, part="snippet", channelId=channel, order="alphabetical", maxResults=6)
                for i in page["items"]]
    titles = [i["snippet"]["title"] for i in by_title]
    assert titles == sorted(titles, key=str.casefold)
    assert [i["id"] for i in by_title] == [data.subscription(p, s).id for s in data.subscriptions(p, "alphabetical")]
    unread = [i["id"] for page in _walk(sandbox, part="id", channelId=channel, order="unread", maxResults=6)
              for i in page["items"]]
    relevance = [data.subscription(p, s).id for s in data.subscriptions(p)]
    assert sorted(unread) == sorted(relevance) and unread != relevance
    token = _get(sandbox, part="id", channelId=channel, maxResults=3).json()["nextPageToken"]
    crossed = _get(sandbox, part="id", channelId=channel, order="alphabetical", pageToken=token)
    assert _reason(crossed)[:2] == (400, "invalidPageToken")
    other = data.channel_id(next(q for q in _public(data) if q != p))
    assert _reason(_get(sandbox, part="id", channelId=other, pageToken=token))[:2] == (400, "invalidPageToken")
    assert _reason(_get(sandbox, part="id", channelId=channel, order="time"))[:2] == (400, "invalidParameter")
    assert _reason(_get(sandbox, part="id", channelId=channel, maxResults=0))[:2] == (400, "invalidParameter")
    assert _reason(_get(sandbox, part="id,statistics", channelId=channel))[:2] == (400, "unknownPart")
    assert _reason(_get(sandbox, part="id", mine="true"))[:2] == (400, "invalidFilters")
    assert _reason(_get(sandbox, part="id", channelId=channel, mine="true"))[:2] == (400, "incompatibleParameters")


def test_private_and_unknown_channels_are_refused_and_charged(sandbox: SandboxServer) -> None:
    data = _yt(sandbox)
    hidden = [p for p in range(SMALL.profiles) if data.subscriptions_private(p)]
    assert hidden and data.subscriptions(hidden[0])  # the truth knows them; the API does not tell
    refused = _get(sandbox, part="snippet", channelId=data.channel_id(hidden[0]))
    assert _reason(refused) == (403, "subscriptionForbidden", "youtube.subscription")
    assert refused.json()["error"]["message"] == "The requester is not allowed to access the requested subscriptions."
    assert refused.json()["error"]["status"] == "PERMISSION_DENIED" and data.subscription_pages(hidden[0], 5) == 1
    for unknown in (data.fan_channel_id(3), "UCnope", data.uploads_playlist_id(0)):
        assert _reason(_get(sandbox, part="id", channelId=unknown)) == (404, "subscriberNotFound",
                                                                        "youtube.subscription")
    assert sandbox.counters["youtube:units"] == 4 == sandbox.counters["youtube:subscriptions"]


def test_a_new_epoch_adds_and_removes_subscriptions_and_expires_tokens(sandbox: SandboxServer) -> None:
    before, after = YouTubeDataset(Dataset(SMALL, epoch=0)), YouTubeDataset(Dataset(SMALL, epoch=3))
    public = _public(before)
    grown = next(p for p in public if set(after.subscriptions(p)) - set(before.subscriptions(p)))
    lost = next(p for p in public if set(before.subscriptions(p)) - set(after.subscriptions(p)))

    def ids(p: int) -> list[str]:
        pages = _walk(sandbox, part="snippet", channelId=before.channel_id(p), maxResults=50)
        return [i["id"] for page in pages for i in page["items"]]

    start = {p: ids(p) for p in (grown, lost)}
    token = _get(sandbox, part="id", channelId=before.channel_id(grown), maxResults=1).json()["nextPageToken"]
    assert httpx.post(f"{sandbox.url}/_sandbox/control", json={"epoch": 3}).json()["epoch"] == 3
    expired = _get(sandbox, part="id", channelId=before.channel_id(grown), pageToken=token)
    assert _reason(expired)[:2] == (400, "invalidPageToken")
    for p in (grown, lost):
        assert ids(p) == [after.subscription(p, s).id for s in after.subscriptions(p)]
    new = set(after.subscriptions(grown)) - set(before.subscriptions(grown))
    assert min(new) > max(before.subscriptions(grown), default=-1)  # indexes only grow
    for s in new:
        made = after.subscription(grown, s).published_at
        assert REFERENCE_NOW < made < REFERENCE_NOW + timedelta(days=3)
        assert after.subscription(grown, s).id in ids(grown) and after.subscription(grown, s).id not in start[grown]
    gone = set(before.subscriptions(lost)) - set(after.subscriptions(lost))
    assert {before.subscription(lost, s).id for s in gone} <= set(start[lost]) - set(ids(lost))
    for p, s in ((q, s) for q in public for s in before.subscriptions(q) if s in after.subscriptions(q)):
        old, now = before.subscription(p, s), after.subscription(p, s)
        assert (old.id, old.channel_id, old.title, old.published_at) == (now.id, now.channel_id, now.title,
                                                                          now.published_at)


def test_subscriptions_count_against_the_daily_units_and_see_faults() -> None:
    with SandboxServer(SandboxConfig(spec=SMALL, youtube_units_per_day=2)) as sandbox:
        data = _yt(sandbox)
        channel = data.channel_id(_public(data)[0])
        assert _get(sandbox, part="id", channelId=channel).status_code == 200
        assert _get(sandbox, part="id", channelId="UCnope").status_code == 404
        assert _reason(_get(sandbox, part="id", channelId=channel))[:2] == (403, "quotaExceeded")
        assert sandbox.counters["youtube:subscriptions"] == 2 and sandbox.counters["youtube:quota_refused"] == 1
    faults = FaultPlan(rate=1.0, kinds=("repeat",), seed=5)
    with SandboxServer(SandboxConfig(spec=SMALL, faults=faults)) as sandbox:
        data = _yt(sandbox)
        channel = data.channel_id(max(_public(data), key=data.subscription_count))
        first = _get(sandbox, part="id", channelId=channel, maxResults=5).json()
        second = _get(sandbox, part="id", channelId=channel, maxResults=5, pageToken=first["nextPageToken"]).json()
        assert second["items"][0]["id"] == first["items"][-1]["id"] and sandbox.counters["youtube:fault:repeat"] == 2


@pytest.mark.parametrize("kind", ["throttle_429", "server_error"])
def test_injected_failures_on_subscriptions_are_not_charged(kind: str) -> None:
    with SandboxServer(SandboxConfig(spec=SMALL, faults=FaultPlan(rate=1.0, kinds=(kind,), seed=5))) as sandbox:
        answer = _get(sandbox, part="id", channelId=_yt(sandbox).channel_id(0))
        assert answer.status_code in (403, 500, 503) and sandbox.counters["youtube:units"] == 0
        assert sandbox.counters[f"youtube:fault:{kind}"] == 1
