"""The TikTok sandbox serves an account's followers, following, liked and pinned videos as the Research API does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from socialsync.sandbox.dataset import REFERENCE_NOW, Dataset, DatasetSpec
from socialsync.sandbox.faults import FaultPlan
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.sandbox.tiktok_dataset import TikTokDataset
from socialsync.sandbox.tiktok_lists import LIST_KINDS
from tests.integration.conftest import SMALL

CLIENT = {"client_key": "sandbox-client", "client_secret": "sandbox-secret", "grant_type": "client_credentials"}
VIDEO_FIELDS = "id,video_description,create_time,username,region_code,view_count,like_count,comment_count," \
               "share_count,hashtag_names,music_id"
ITEMS = {"followers": "user_followers", "following": "user_following", "liked_videos": "user_liked_videos"}
FOLLOWS = ("followers", "following")
COUNTS = {"followers": "follower_count", "following": "following_count"}
_REF, _DAY = int(REFERENCE_NOW.timestamp()), 86400
# More accounts than SMALL, so that every kind of list has an account hiding it.
WIDE = DatasetSpec(seed=4242, profiles=40, posts_median=4, posts_max=20, comments_median=1)
_HTTP = httpx.Client(timeout=5)


@pytest.fixture(scope="module", autouse=True)
def _close_client() -> Iterator[None]:
    yield
    _HTTP.close()


def _tt(sandbox: SandboxServer) -> TikTokDataset:
    data: TikTokDataset = sandbox.app.state.tiktok.data
    return data


def _token(sandbox: SandboxServer) -> str:
    token: str = _HTTP.post(f"{sandbox.url}/tiktok/v2/oauth/token/", data=CLIENT).json()["access_token"]
    return token


def _call(sandbox: SandboxServer, token: str, kind: str, body: dict[str, Any],
          fields: str | None = VIDEO_FIELDS) -> httpx.Response:
    params = {"fields": fields} if fields and kind not in FOLLOWS else {}
    return _HTTP.post(f"{sandbox.url}/tiktok/v2/research/user/{kind}/", params=params, json=body,
                      headers={"Authorization": f"Bearer {token}"})


def _walk(sandbox: SandboxServer, token: str, kind: str, username: str, max_count: int,
          fields: str = VIDEO_FIELDS) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    while not pages or pages[-1]["has_more"]:
        body: dict[str, Any] = {"username": username, "max_count": max_count}
        body |= {"cursor": pages[-1]["cursor"]} if pages else {}
        answer = _call(sandbox, token, kind, body, fields)
        assert answer.status_code == 200 and answer.json()["error"]["code"] == "ok", answer.text
        pages.append(answer.json()["data"])
    return pages


def _items(pages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [item for page in pages for item in page[ITEMS[kind]]]


def _error(answer: httpx.Response) -> tuple[int, str, str]:
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "log_id"} and "data" not in answer.json()
    return answer.status_code, error["code"], error["message"]


def _video(data: TikTokDataset, p: int, j: int) -> dict[str, Any]:
    video = data.video(p, j)
    return {"id": int(video.id), "video_description": video.video_description, "create_time": video.create_time,
            "username": video.username, "region_code": video.region_code, "view_count": video.view_count,
            "like_count": video.like_count, "comment_count": video.comment_count, "share_count": video.share_count,
            "hashtag_names": list(video.hashtag_names), "music_id": int(video.music_id)}


def test_the_lists_have_the_shape_a_sync_meets() -> None:
    data = TikTokDataset(Dataset(WIDE, epoch=2))
    for kind in LIST_KINDS:
        hidden = sum(data.list_private(p, kind) for p in range(WIDE.profiles))
        assert 1 <= hidden <= 14, kind  # about 15%, drawn per kind
    counts = [data.user(p).follower_count for p in range(WIDE.profiles)]
    assert max(counts) > 5000 and min(counts) < 300  # TikTok-wide: see the report on the count distribution
    for p in range(12):
        followers, following = data.followers(p), data.following(p)
        assert len(followers) == data.user(p).follower_count and len(following) == data.user(p).following_count
        for follows in (followers, following):
            times = [f.followed_at for f in follows]
            assert times == sorted(set(times), reverse=True) and len({f.username for f in follows}) == len(follows)
        for follower in (f for f in followers if f.account_index is not None):  # both sides of one follow agree
            assert (data.dataset.username(p), follower.followed_at) in {
                (f.username, f.followed_at) for f in data.following(follower.account_index)}
        assert all(data.video_visible(q, j) for q, j, _ in data.liked_videos(p))
        assert len(data.pinned_videos(p)) <= 3 and all(data.video_visible(p, j) for j in data.pinned_videos(p))
    assert any(f.account_index is not None for p in range(12) for f in data.followers(p))
    assert any(data.pinned_videos(p) for p in range(12)) and any(data.liked_videos(p) for p in range(12))


def test_follow_lists_walk_newest_first_and_match_user_info(sandbox: SandboxServer) -> None:
    data, token = _tt(sandbox), _token(sandbox)
    requests = records = short = 0
    served: dict[tuple[int, str], list[str]] = {}
    for p in range(SMALL.profiles):
        user = _HTTP.post(f"{sandbox.url}/tiktok/v2/research/user/info/", params={"fields": "follower_count,"
                          "following_count"}, json={"username": data.dataset.username(p)},
                          headers={"Authorization": f"Bearer {token}"}).json()["data"]
        for kind in FOLLOWS:
            assert not data.list_private(p, kind)
            pages = _walk(sandbox, token, kind, data.dataset.username(p), 100)
            items, truth = _items(pages, kind), data.followers(p) if kind == "followers" else data.following(p)
            assert items == [{"username": f.username, "display_name": f.display_name} for f in truth]
            assert len(items) == user[COUNTS[kind]]
            when = {f.username: f.followed_at for f in truth}
            for page, previous in zip(pages[1:], pages, strict=False):
                assert all(when[i["username"]] < previous["cursor"] for i in page[ITEMS[kind]])
            for page in pages:
                assert all(when[i["username"]] >= page["cursor"] for i in page[ITEMS[kind]])
                short += page["has_more"] and len(page[ITEMS[kind]]) < 100
            assert [page["cursor"] for page in pages] == sorted({page["cursor"] for page in pages}, reverse=True)
            assert len(pages) == data.list_pages(p, kind, 100)
            requests, records = requests + len(pages), records + len(items)
            served[p, kind] = [i["username"] for i in items]
    assert short and sandbox.counters["tiktok:short_pages"] == short
    assert sandbox.counters["tiktok:followers"] + sandbox.counters["tiktok:following"] == requests
    assert sandbox.counters["tiktok:records"] == records and sandbox.counters["tiktok:requests"] == requests + 6
    accounts = {data.dataset.username(q): q for q in range(SMALL.profiles)}
    own = [(p, accounts[name]) for (p, kind), names in served.items() if kind == "followers"
           for name in names if name in accounts]
    assert own and all(data.dataset.username(p) in served[q, "following"] for p, q in own)


def test_a_cursor_is_a_unix_time_and_bad_requests_are_refused(sandbox: SandboxServer) -> None:
    data, token = _tt(sandbox), _token(sandbox)
    p = min(range(SMALL.profiles), key=lambda q: data.user(q).follower_count)
    name, truth = data.dataset.username(p), data.followers(p)
    first = _call(sandbox, token, "followers", {"username": name}).json()["data"]  # max_count 20 by default
    shown = [i["username"] for i in first["user_followers"]]
    assert shown == [f.username for f in truth[: len(shown)]] and 0 < len(shown) <= 20 and first["has_more"]
    assert first["cursor"] <= truth[len(shown) - 1].followed_at
    top = _call(sandbox, token, "followers", {"username": name, "cursor": 0, "max_count": 20}).json()["data"]
    assert top == first  # 0 is no cursor
    middle = truth[50]
    after = _call(sandbox, token, "followers", {"username": name, "cursor": middle.followed_at, "max_count": 5})
    assert after.json()["data"]["user_followers"][0]["username"] == truth[51].username  # strictly older
    assert all(f.followed_at < _REF for f in truth)  # epoch 0: every follow before the sandbox's now
    for body in ({"username": name, "max_count": 0}, {"username": name, "max_count": 101},
                 {"username": name, "cursor": -1}, {"username": name, "cursor": "soon"}, {"max_count": 5}):
        assert _error(_call(sandbox, token, "following", body))[:2] == (400, "invalid_params"), body
    unknown = _error(_call(sandbox, token, "followers", {"username": "nobody_here_1"}))
    assert unknown == (400, "invalid_params", "The username nobody_here_1 is invalid: cannot find the user")
    assert _error(_call(sandbox, token, "liked_videos", {"username": name}, fields=""))[:2] == (400, "invalid_params")
    assert _error(_call(sandbox, token, "pinned_videos", {"username": name}, fields="id,bogus"))[:2] == (
        400, "invalid_params")
    assert sandbox.counters["tiktok:invalid_params"] == 8 and sandbox.counters["tiktok:requests"] == 11


def test_liked_and_pinned_videos_render_as_video_query_does(sandbox: SandboxServer) -> None:
    data, token = _tt(sandbox), _token(sandbox)
    records = requests = 0
    for p in range(SMALL.profiles):
        name = data.dataset.username(p)
        pages = _walk(sandbox, token, "liked_videos", name, 7)
        liked = data.liked_videos(p)
        assert _items(pages, "liked_videos") == [_video(data, q, j) for q, j, _ in liked]
        assert len(pages) == data.list_pages(p, "liked_videos", 7)
        if not liked:
            assert pages == [{"user_liked_videos": [], "cursor": 0, "has_more": False}]
        for n, page in enumerate(pages[:-1]):  # nothing hidden at epoch 0: the cursor is the last item's time
            assert page["cursor"] == liked[7 * n + 6][2] and len(page["user_liked_videos"]) == 7
        pinned = _call(sandbox, token, "pinned_videos", {"username": name}, fields="id,create_time").json()["data"]
        assert pinned == {"pinned_videos_list": [{"id": int(data.video_id(p, j)), "create_time":
                                                  data.create_time(p, j)} for j in data.pinned_videos(p)]}
        records += sum(len(page["user_liked_videos"]) for page in pages) + len(pinned["pinned_videos_list"])
        requests += len(pages) + 1
    assert sandbox.counters["tiktok:records"] == records and sandbox.counters["tiktok:requests"] == requests
    assert sandbox.counters["tiktok:pinned_videos"] == SMALL.profiles == requests - sandbox.counters[
        "tiktok:liked_videos"]


def test_hidden_lists_are_refused_per_kind_and_still_counted() -> None:
    with SandboxServer(SandboxConfig(spec=WIDE)) as sandbox:
        data, token = _tt(sandbox), _token(sandbox)
        names = {"followers": "followers", "following": "following", "liked_videos": "liked videos",
                 "pinned_videos": "pinned videos"}
        for kind in LIST_KINDS:
            p = next(q for q in range(WIDE.profiles) if data.list_private(q, kind))
            refused = _error(_call(sandbox, token, kind, {"username": data.dataset.username(p)}))
            assert refused == (400, "invalid_params", f"The user has made their {names[kind]} list private")
            assert data.list_pages(p, kind, 20) == 1 == data.list_pages_until(p, kind, 20, set())
            public = next(q for q in range(WIDE.profiles) if not data.list_private(q, kind))
            assert _call(sandbox, token, kind, {"username": data.dataset.username(public)}).status_code == 200
            assert sandbox.counters[f"tiktok:{kind}"] == 2
        assert sandbox.counters["tiktok:requests"] == 8 and sandbox.counters["tiktok:invalid_params"] == 4


def test_a_new_epoch_adds_and_takes_back_follows_and_likes(sandbox: SandboxServer) -> None:
    before, after = TikTokDataset(Dataset(SMALL, epoch=0)), TikTokDataset(Dataset(SMALL, epoch=3))
    token = _token(sandbox)
    p = min(range(SMALL.profiles), key=lambda q: before.user(q).follower_count)
    liker = next(q for q in range(SMALL.profiles) if {v[:2] for v in before.liked_videos(q)} - {
        v[:2] for v in after.liked_videos(q)} and len(after.liked_videos(q)) > 10)

    def state() -> dict[str, list[Any]]:
        lists = {kind: [i["username"] for i in _items(_walk(sandbox, token, kind, before.dataset.username(p), 50),
                                                      kind)] for kind in FOLLOWS}
        walked = _walk(sandbox, token, "liked_videos", before.dataset.username(liker), 10, fields="id")
        return lists | {"liked_videos": [i["id"] for i in _items(walked, "liked_videos")]}

    start = state()
    assert _HTTP.post(f"{sandbox.url}/_sandbox/control", json={"epoch": 3}).json()["epoch"] == 3
    now = state()
    for kind in FOLLOWS:
        truth = after.followers(p) if kind == "followers" else after.following(p)
        assert now[kind] == [f.username for f in truth]
        new = [f for f in truth if f.username not in start[kind]]
        assert new and truth[: len(new)] == new  # the newest follows are this epoch's
        assert all(_REF < f.followed_at < _REF + 3 * _DAY for f in new)
        assert set(start[kind]) - set(now[kind])  # some unfollowed
    assert len(now["followers"]) == after.user(p).follower_count > before.user(p).follower_count
    assert len(now["following"]) == after.user(p).following_count
    assert now["liked_videos"] == [int(after.video_id(q, j)) for q, j, _ in after.liked_videos(liker)]
    assert set(start["liked_videos"]) - set(now["liked_videos"])
    for q in range(SMALL.profiles):
        assert len(after.followers(q)) == after.user(q).follower_count
        assert len(after.following(q)) == after.user(q).following_count
        liked = [like for like in after.liked_videos(q) if like not in before.liked_videos(q)]
        assert after.liked_videos(q)[: len(liked)] == liked and all(_REF < at < _REF + 3 * _DAY for *_, at in liked)
    pins = [TikTokDataset(Dataset(SMALL, epoch=e)).pinned_videos(q) for e in (0, 30) for q in range(SMALL.profiles)]
    assert pins[: SMALL.profiles] != pins[SMALL.profiles :]  # pinned videos change now and then


def test_an_incremental_walk_stops_at_the_first_page_it_knows() -> None:
    with SandboxServer(SandboxConfig(spec=SMALL)) as sandbox:
        data, token = _tt(sandbox), _token(sandbox)
        p = max(range(SMALL.profiles), key=lambda q: len(data.liked_videos(q)))
        name = data.dataset.username(p)
        known: dict[str, set[str]] = {
            kind: {str(i["username"] if kind in FOLLOWS else i["id"])
                   for i in _items(_walk(sandbox, token, kind, name, 20, fields="id"), kind)}
            for kind in ITEMS}
        _HTTP.post(f"{sandbox.url}/_sandbox/control", json={"epoch": 4})
        for kind, seen in known.items():
            pages: list[dict[str, Any]] = []
            while not pages or (pages[-1]["has_more"] and not {
                    str(i["username"] if kind in FOLLOWS else i["id"]) for i in pages[-1][ITEMS[kind]]} & seen):
                body = {"username": name, "max_count": 20} | ({"cursor": pages[-1]["cursor"]} if pages else {})
                pages.append(_call(sandbox, token, kind, body, fields="id").json()["data"])
            assert len(pages) == data.list_pages_until(p, kind, 20, seen) < data.list_pages(p, kind, 20), kind
            fresh = {str(i["username"] if kind in FOLLOWS else i["id"]) for i in _items(pages, kind)} - seen
            everything = data.lists.follows(p, kind) if kind in FOLLOWS else data.liked_videos(p)
            names = {f.username for f in everything} if kind in FOLLOWS else {
                data.video_id(q, j) for q, j, _ in data.liked_videos(p)}
            assert fresh == names - seen  # the incremental walk saw every new entry


def test_the_daily_budget_counts_list_calls_and_their_items() -> None:
    with SandboxServer(SandboxConfig(spec=SMALL, tiktok_records_per_day=30)) as sandbox:
        data, token = _tt(sandbox), _token(sandbox)
        name = data.dataset.username(0)
        first = _call(sandbox, token, "followers", {"username": name, "max_count": 20}).json()["data"]
        crossing = _call(sandbox, token, "following", {"username": name, "max_count": 20}).json()["data"]
        assert len(first["user_followers"]) + len(crossing["user_following"]) > 30  # served in full
        refused = _error(_call(sandbox, token, "pinned_videos", {"username": name}))
        assert refused[:2] == (429, "daily_quota_limit_exceeded")
        assert sandbox.counters["tiktok:requests"] == 2 and sandbox.counters["tiktok:quota_refused"] == 1


@pytest.mark.parametrize("kind", ["repeat", "throttle_429"])
def test_faults_hit_the_list_calls_too(kind: str) -> None:
    with SandboxServer(SandboxConfig(spec=SMALL, faults=FaultPlan(rate=1.0, kinds=(kind,), seed=5))) as sandbox:
        data, token = _tt(sandbox), _token(sandbox)
        body = {"username": data.dataset.username(0), "max_count": 10}
        if kind == "throttle_429":
            assert _error(_call(sandbox, token, "followers", body))[:2] == (429, "rate_limit_exceeded")
            assert sandbox.counters["tiktok:requests"] == 0
            return
        for listed in ("followers", "liked_videos"):
            first = _call(sandbox, token, listed, body, fields="id").json()["data"]
            second = _call(sandbox, token, listed, body | {"cursor": first["cursor"]}, fields="id").json()["data"]
            assert second[ITEMS[listed]][0] == first[ITEMS[listed]][-1]
