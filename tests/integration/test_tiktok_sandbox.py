"""The sandbox speaks the TikTok Research API protocol over the same dataset as Instagram's and YouTube's."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from socialsync.sandbox.dataset import Dataset
from socialsync.sandbox.faults import FAULT_KINDS, FaultPlan
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.sandbox.tiktok_dataset import COMMENT_CAP, FILTERED_BLOCK, TikTokDataset
from tests.integration.conftest import SMALL

CLIENT = {"client_key": "sandbox-client", "client_secret": "sandbox-secret", "grant_type": "client_credentials"}
VIDEO_FIELDS = "id,video_description,create_time,username,region_code,view_count,like_count,comment_count," \
               "share_count,hashtag_names,music_id"
COMMENT_FIELDS = "id,video_id,text,like_count,reply_count,parent_comment_id,create_time"
USER_FIELDS = "display_name,bio_description,avatar_url,is_verified,follower_count,following_count,likes_count," \
              "video_count,bio_url"
_HTTP = httpx.Client(timeout=5)  # one client: a fresh one per call costs more than the call


@pytest.fixture(scope="module", autouse=True)
def _close_client() -> Iterator[None]:
    yield
    _HTTP.close()


def _tt(sandbox: SandboxServer) -> TikTokDataset:
    data: TikTokDataset = sandbox.app.state.tiktok.data
    return data


def _token(sandbox: SandboxServer) -> str:
    answer = _HTTP.post(f"{sandbox.url}/tiktok/v2/oauth/token/", data=CLIENT, timeout=5)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def _post(sandbox: SandboxServer, path: str, fields: str, body: dict[str, Any], token: str | None,
          timeout: float = 5) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return _HTTP.post(f"{sandbox.url}/tiktok/v2/research/{path}/", params={"fields": fields}, json=body,
                      headers=headers, timeout=timeout)


def _query(usernames: list[str], start: date, end: date, max_count: int = 100, **more: Any) -> dict[str, Any]:
    return {"query": {"and": [{"operation": "IN", "field_name": "username", "field_values": usernames}]},
            "start_date": start.strftime("%Y%m%d"), "end_date": end.strftime("%Y%m%d"), "max_count": max_count,
            **more}


def _error(answer: httpx.Response) -> tuple[int, str]:
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "log_id"} and len(error["log_id"]) == 34
    return answer.status_code, error["code"]


def _walk_query(sandbox: SandboxServer, token: str, usernames: list[str], start: date, end: date,
                max_count: int) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    more: dict[str, Any] = {}
    while not pages or pages[-1]["has_more"]:
        answer = _post(sandbox, "video/query", VIDEO_FIELDS, _query(usernames, start, end, max_count, **more), token)
        assert answer.status_code == 200 and answer.json()["error"]["code"] == "ok", answer.text
        pages.append(answer.json()["data"])
        more = {"cursor": pages[-1]["cursor"], "search_id": pages[-1]["search_id"]}
    return pages


def _walk_comments(sandbox: SandboxServer, token: str, video_id: str, max_count: int) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    while not pages or pages[-1]["has_more"]:
        cursor = pages[-1]["cursor"] if pages else 0
        body = {"video_id": int(video_id), "max_count": min(max_count, COMMENT_CAP - cursor), "cursor": cursor}
        answer = _post(sandbox, "video/comment/list", COMMENT_FIELDS, body, token)
        assert answer.status_code == 200, answer.text
        pages.append(answer.json()["data"])
    return pages


def _day(timestamp: int) -> date:
    return datetime.fromtimestamp(timestamp, UTC).date()


def test_ids_usernames_and_the_shape_of_the_dataset() -> None:
    data = TikTokDataset(Dataset(SMALL))
    p, j = data.busiest_video() or (0, 0)
    video, comment, reply = data.video_id(p, j), data.comment_id(p, j, 1), data.comment_id(p, j, 0, 5)
    assert all(len(i) == 19 and i.isdigit() and int(i) < 2**63 for i in (video, comment, reply))
    assert data.parse_video_id(video) == data.parse_video_id(int(video)) == (p, j)
    assert data.parse_comment_id(comment) == (p, j, 1, None) and data.parse_comment_id(reply) == (p, j, 0, 5)
    assert data.parse_video_id(str(int(video) + 1)) is None and data.parse_video_id(comment) is None
    assert data.parse_video_id("12345") is None and data.parse_comment_id(data.comment_id(p, j, 0, 9000)) is None
    assert data.parse_username(data.dataset.username(3)) == 3 and data.parse_username("nobody_here_1") is None
    today = data.today()
    firsts = {q: data.first_video_day(q) for q in range(SMALL.profiles)}
    assert firsts[5] is None and data.video_count(5) == 0  # an account that never posted
    history = {q: (today - first).days for q, first in firsts.items() if first}
    assert max(history.values()) > 2 * 365 and sum(days > 365 for days in history.values()) >= 2
    assert sorted(len(data.covering_windows(first, today)) for first in firsts.values() if first)[1] >= 3
    videos = [(q, i) for q in range(SMALL.profiles) for i in data.videos_newest_first(q)]
    assert any(data.comment_count(*v) == 0 for v in videos)
    assert data.comment_count(p, j) > COMMENT_CAP == len(data.reachable_comments(p, j))
    assert all(data.comment_count(*v) < COMMENT_CAP for v in videos if v != (p, j))
    assert [data.create_time(0, i) for i in range(24)] == sorted({data.create_time(0, i) for i in range(24)})


def test_a_client_token_is_granted_for_the_right_key_and_secret_only(sandbox: SandboxServer) -> None:
    url = f"{sandbox.url}/tiktok/v2/oauth/token/"
    granted = _HTTP.post(url, data=CLIENT).json()
    assert granted["access_token"].startswith("clt.") and granted["expires_in"] == 7200
    assert granted["token_type"] == "Bearer" and granted["access_token"] != _token(sandbox)
    refused = _HTTP.post(url, data=CLIENT | {"client_secret": "wrong"})
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert set(refused.json()) == {"error", "error_description", "log_id"}
    assert _HTTP.post(url, data=CLIENT | {"grant_type": "password"}).status_code == 400
    body = {"username": _tt(sandbox).dataset.username(0)}
    for token in (None, "clt.forged"):
        answer = _post(sandbox, "user/info", "display_name", body, token)
        assert _error(answer) == (401, "access_token_invalid")
    assert "clt.forged" in answer.json()["error"]["message"]  # echoed: clients must scrub it
    assert _post(sandbox, "user/info", "display_name", body, granted["access_token"]).status_code == 200
    assert sandbox.counters["tiktok:token"] == 2 and sandbox.counters["tiktok:token_refused"] == 2
    assert sandbox.counters["tiktok:unauthorized"] == 2 and sandbox.counters["tiktok:requests"] == 1


def test_tokens_expire_by_the_clock_and_the_echo_can_be_turned_off() -> None:
    with SandboxServer(SandboxConfig(spec=SMALL, tiktok_token_ttl_s=1, tiktok_echo_token=False)) as sandbox:
        token = _token(sandbox)
        body = {"username": _tt(sandbox).dataset.username(0)}
        assert _post(sandbox, "user/info", "video_count", body, token).status_code == 200
        time.sleep(1.1)
        expired = _post(sandbox, "user/info", "video_count", body, token)
        assert _error(expired) == (401, "access_token_invalid") and token not in expired.text
        assert sandbox.counters["tiktok:token_expired"] == 1 and sandbox.counters["tiktok:requests"] == 1
        assert _post(sandbox, "user/info", "video_count", body, _token(sandbox)).status_code == 200
        _HTTP.post(f"{sandbox.url}/_sandbox/control", json={"tiktok_research_scope": False})
        unscoped = _post(sandbox, "user/info", "video_count", body, _token(sandbox))
        assert _error(unscoped) == (401, "scope_not_authorized")


def test_user_info_answers_the_requested_fields_and_refuses_unknown_users(sandbox: SandboxServer) -> None:
    data, token = _tt(sandbox), _token(sandbox)
    for p in range(SMALL.profiles):
        answer = _post(sandbox, "user/info", USER_FIELDS, {"username": data.dataset.username(p)}, token).json()
        truth = data.user(p)
        assert answer["error"] == {"code": "ok", "message": "", "log_id": answer["error"]["log_id"]}
        assert answer["data"] == {field: getattr(truth, field) for field in USER_FIELDS.split(",")}
        assert answer["data"]["video_count"] == len(list(data.videos_newest_first(p)))
    some = _post(sandbox, "user/info", "video_count,is_verified", {"username": data.dataset.username(0)}, token)
    assert set(some.json()["data"]) == {"video_count", "is_verified"}
    unknown = _post(sandbox, "user/info", "display_name", {"username": "nobody_here_1"}, token)
    assert _error(unknown) == (400, "invalid_params")
    assert unknown.json()["error"]["message"] == "The username nobody_here_1 is invalid: cannot find the user"
    assert _error(_post(sandbox, "user/info", "display_name,open_sesame", {"username": "x"}, token))[0] == 400
    assert _error(_post(sandbox, "user/info", "", {"username": data.dataset.username(0)}, token))[0] == 400
    assert sandbox.counters["tiktok:user_info"] == 10 == sandbox.counters["tiktok:requests"]
    assert sandbox.counters["tiktok:invalid_params"] == 3 and sandbox.counters["tiktok:records"] == 0


def test_video_query_windows_are_inclusive_utc_days_of_at_most_thirty_days(sandbox: SandboxServer) -> None:
    data, token = _tt(sandbox), _token(sandbox)
    name = data.dataset.username(0)
    j = next(data.videos_newest_first(0))
    day = _day(data.create_time(0, j))

    def ids(start: date, end: date) -> list[int]:
        answer = _post(sandbox, "video/query", "id", _query([name], start, end), token)
        assert answer.status_code == 200, answer.text
        return [v["id"] for v in answer.json()["data"]["videos"]]

    assert int(data.video_id(0, j)) in ids(day, day) and int(data.video_id(0, j)) in ids(day - timedelta(30), day)
    assert int(data.video_id(0, j)) not in ids(day + timedelta(1), day + timedelta(30))
    assert int(data.video_id(0, j)) not in ids(day - timedelta(30), day - timedelta(1))
    refused = [
        _query([name], day, day + timedelta(31)), _query([name], day, day - timedelta(1)),
        _query([name], day, day, max_count=101), _query([name], day, day, max_count=0),
        _query([f"user_{n}" for n in range(101)], day, day), _query([], day, day),
        _query([name], day, day) | {"start_date": "2026-10-01"}, _query([name], day, day) | {"end_date": 20261001},
        {"query": {"or": [{"operation": "IN", "field_name": "username", "field_values": [name]}]},
         "start_date": "20261001", "end_date": "20261002"},
        {"query": {"and": [{"operation": "IN", "field_name": "region_code", "field_values": ["US"]}]},
         "start_date": "20261001", "end_date": "20261002"},
    ]
    for body in refused:
        assert _error(_post(sandbox, "video/query", "id", body, token)) == (400, "invalid_params"), body
    garbage = _HTTP.post(f"{sandbox.url}/tiktok/v2/research/video/query/", params={"fields": "id"},
                         content=b"{not json", headers={"Authorization": f"Bearer {token}"})
    assert _error(garbage) == (400, "invalid_params")
    hundred = [data.dataset.username(p) for p in range(SMALL.profiles)] + [f"user_{n}" for n in range(94)]
    assert _post(sandbox, "video/query", "id", _query(hundred, day, day), token).status_code == 200
    assert sandbox.counters["tiktok:invalid_params"] == len(refused) + 1


def test_following_cursor_and_search_id_yields_every_video_once_despite_short_and_empty_pages(
        sandbox: SandboxServer) -> None:
    data, token = _tt(sandbox), _token(sandbox)
    p = 4  # about 2.5 years of videos, two of them behind a block of filtered entries
    assert sum(data.filtered_before(p, j) == FILTERED_BLOCK for j in data.videos_newest_first(p)) == 2
    name, first = data.dataset.username(p), data.first_video_day(p)
    assert first is not None
    windows = data.covering_windows(first, data.today())
    assert len(windows) >= 25
    seen: list[int] = []
    requests = 0
    short = empty = 0
    for start, end in windows:
        pages = _walk_query(sandbox, token, [name], start, end, max_count=7)
        expected = data.query_pages([p], start, end, 7)
        assert [[v["id"] for v in page["videos"]] for page in pages] == [
            [int(data.video_id(*key)) for key in page] for page in expected]
        assert len({page["search_id"] for page in pages}) == 1
        assert [page["cursor"] for page in pages] == sorted(page["cursor"] for page in pages)
        for page in pages:
            short += page["has_more"] and 0 < len(page["videos"]) < 7
            empty += page["has_more"] and not page["videos"]
            assert all(_day(v["create_time"]) >= start and _day(v["create_time"]) <= end for v in page["videos"])
        seen += [v["id"] for page in pages for v in page["videos"]]
        requests += len(pages)
    assert seen == [int(data.video_id(p, j)) for j in data.videos_newest_first(p)]  # once each, newest first
    assert short and empty >= 2 * (FILTERED_BLOCK // 7 - 1)
    assert sandbox.counters["tiktok:video_query"] == requests == sandbox.counters["tiktok:requests"]
    assert sandbox.counters["tiktok:records"] == len(seen) and sandbox.counters["tiktok:short_pages"] >= short + empty


def test_a_query_over_many_accounts_runs_newest_first_and_fields_match_the_truth(sandbox: SandboxServer) -> None:
    data, token = _tt(sandbox), _token(sandbox)
    names = [data.dataset.username(p) for p in range(SMALL.profiles)]
    end = data.today()
    start = end - timedelta(days=30)
    pages = _walk_query(sandbox, token, names, start, end, max_count=100)
    videos = [v for page in pages for v in page["videos"]]
    truth = data.videos_in_window(range(SMALL.profiles), start, end)
    assert len(videos) == len(truth) >= 8 and len({v["username"] for v in videos}) >= 4
    assert [v["create_time"] for v in videos] == sorted((v["create_time"] for v in videos), reverse=True)
    for (p, j), item in zip(truth, videos, strict=True):
        video = data.video(p, j)
        assert item == {"id": int(video.id), "video_description": video.video_description,
                        "create_time": video.create_time, "username": video.username,
                        "region_code": video.region_code, "view_count": video.view_count,
                        "like_count": video.like_count, "comment_count": video.comment_count,
                        "share_count": video.share_count, "hashtag_names": list(video.hashtag_names),
                        "music_id": int(video.music_id)}
    nothing = _walk_query(sandbox, token, ["nobody_here_1"], start, end, 100)
    assert len(nothing) == 1 and nothing[0]["videos"] == [] and not nothing[0]["has_more"]


def test_a_wrong_search_id_or_a_cursor_past_the_search_is_invalid(sandbox: SandboxServer) -> None:
    data, token = _tt(sandbox), _token(sandbox)
    names, end = [data.dataset.username(p) for p in range(SMALL.profiles)], data.today()
    start = end - timedelta(days=30)
    first = _post(sandbox, "video/query", "id", _query(names, start, end, 10), token).json()["data"]
    other = _post(sandbox, "video/query", "id", _query(names[:2], start, end, 10), token).json()["data"]
    assert other["search_id"] != first["search_id"] and first["search_id"].isdigit()
    again = _post(sandbox, "video/query", "id", _query(names, start, end, 10), token).json()["data"]
    assert again["search_id"] == first["search_id"]  # stable for the query: no server state to lose
    resume = {"cursor": first["cursor"], "search_id": first["search_id"]}
    assert _post(sandbox, "video/query", "id", _query(names, start, end, 10, **resume), token).status_code == 200
    wrong = _post(sandbox, "video/query", "id", _query(names, start, end, 10, cursor=10,
                                                       search_id=other["search_id"]), token)
    assert _error(wrong) == (400, "invalid_params")
    assert wrong.json()["error"]["message"] == f"Search Id {other['search_id']} is invalid or expired"
    past = _post(sandbox, "video/query", "id", _query(names, start, end, 10, cursor=10**6,
                                                      search_id=first["search_id"]), token)
    assert _error(past) == (400, "invalid_params") and past.json()["error"]["message"] == "Invalid count or cursor"
    _HTTP.post(f"{sandbox.url}/_sandbox/control", json={"epoch": 1})
    expired = _post(sandbox, "video/query", "id", _query(names, start, end, 10, **resume), token)
    assert _error(expired) == (400, "invalid_params")  # a search does not outlive its day


def test_comments_and_replies_come_in_one_list_newest_first(sandbox: SandboxServer) -> None:
    data, token = _tt(sandbox), _token(sandbox)
    busiest = data.busiest_video()
    p, j = max(((q, i) for q in range(SMALL.profiles) for i in data.videos_newest_first(q) if (q, i) != busiest),
               key=lambda v: data.comment_count(*v))
    pages = _walk_comments(sandbox, token, data.video_id(p, j), max_count=30)
    items = [c for page in pages for c in page["comments"]]
    truth = data.comments_in_list_order(p, j)
    assert [c["id"] for c in items] == [int(data.comment_id(p, j, k, r)) for k, r in truth]
    assert len(items) == data.comment_count(p, j) == data.video(p, j).comment_count
    assert [c["create_time"] for c in items] == sorted((c["create_time"] for c in items), reverse=True)
    tops = {c["id"]: c for c in items if c["parent_comment_id"] == int(data.video_id(p, j))}
    replies = [c for c in items if c["id"] not in tops]
    assert tops and replies and all(c["video_id"] == int(data.video_id(p, j)) for c in items)
    for reply in replies:
        parent = tops[reply["parent_comment_id"]]
        assert reply["reply_count"] == 0 and reply["create_time"] > parent["create_time"]
    for top_id, top in tops.items():
        assert top["reply_count"] == sum(r["parent_comment_id"] == top_id for r in replies)
    (k, r), item = truth[0], items[0]
    assert item == {field: (int(v) if field.endswith("id") else v)
                    for field, v in vars(data.comment(p, j, k, r)).items()}
    assert [len(page["comments"]) for page in pages[:-1]] == [30] * (len(pages) - 1)
    assert len(pages) == len(data.comment_pages(p, j, 30)) == sandbox.counters["tiktok:comment_list"]
    quiet = next((q, i) for q in range(SMALL.profiles) for i in data.videos_newest_first(q)
                 if not data.comment_count(q, i))
    empty = _walk_comments(sandbox, token, data.video_id(*quiet), 100)
    assert empty == [{"comments": [], "cursor": 0, "has_more": False}]


def test_only_the_newest_thousand_comments_are_reachable(sandbox: SandboxServer) -> None:
    data, token = _tt(sandbox), _token(sandbox)
    p, j = data.busiest_video() or (0, 0)
    video_id = data.video_id(p, j)
    assert data.comment_count(p, j) > 1100
    pages = _walk_comments(sandbox, token, video_id, max_count=100)
    assert len(pages) == 10 and pages[-1]["cursor"] == COMMENT_CAP and not pages[-1]["has_more"]
    items = [c["id"] for page in pages for c in page["comments"]]
    assert items == [int(data.comment_id(p, j, k, r)) for k, r in data.reachable_comments(p, j)]
    assert len(items) == COMMENT_CAP == sandbox.counters["tiktok:records"]
    for cursor, max_count in ((901, 100), (1000, 1), (0, 101)):
        body = {"video_id": video_id, "cursor": cursor, "max_count": max_count}  # a string id is taken too
        answer = _post(sandbox, "video/comment/list", "id", body, token)
        assert _error(answer) == (400, "invalid_params")
    assert answer.json()["error"]["message"].startswith("Invalid parameter max_count")
    last = _post(sandbox, "video/comment/list", "id", {"video_id": video_id, "cursor": 990, "max_count": 10}, token)
    assert last.json()["data"]["cursor"] == COMMENT_CAP and last.json()["data"]["has_more"] is False
    assert [c["id"] for c in last.json()["data"]["comments"]] == items[990:]
    # A client asking for 30 at a time must shrink its last request to what is left before the cap.
    assert len(data.comment_pages(p, j, 30)) == 34 and len(_walk_comments(sandbox, token, video_id, 30)) == 34


def test_unknown_and_deleted_videos_have_no_comment_list(sandbox: SandboxServer) -> None:
    data, token = _tt(sandbox), _token(sandbox)
    gone = next((p, j) for p in range(SMALL.profiles) for j in range(data.dataset.post_count(p))
                if j in TikTokDataset(Dataset(SMALL, epoch=3)).dataset.deleted_posts(p))
    assert _post(sandbox, "video/comment/list", "id", {"video_id": int(data.video_id(*gone))}, token).status_code == 200
    _HTTP.post(f"{sandbox.url}/_sandbox/control", json={"epoch": 3})
    for video_id in (int(data.video_id(*gone)), 7_000_000_000_000_000_001, "not-a-number"):
        answer = _post(sandbox, "video/comment/list", "id", {"video_id": video_id}, token)
        assert _error(answer) == (400, "invalid_params"), video_id


def test_the_daily_request_quota_refuses_until_the_next_day() -> None:
    with SandboxServer(SandboxConfig(spec=SMALL, tiktok_requests_per_day=3)) as sandbox:
        data, token = _tt(sandbox), _token(sandbox)
        body = {"username": data.dataset.username(0)}
        assert _post(sandbox, "user/info", "video_count", body, token).status_code == 200
        assert _post(sandbox, "user/info", "video_count", {"username": "nobody_1"}, token).status_code == 400
        assert _post(sandbox, "video/comment/list", "id", {"video_id": 1}, token).status_code == 400  # charged too
        refused = _post(sandbox, "user/info", "video_count", body, token)
        assert _error(refused) == (429, "daily_quota_limit_exceeded")
        assert _token(sandbox)  # token calls are not research calls
        assert sandbox.counters["tiktok:requests"] == 3 and sandbox.counters["tiktok:quota_refused"] == 1
        _HTTP.post(f"{sandbox.url}/_sandbox/control", json={"epoch": 1})  # a new day
        assert _post(sandbox, "user/info", "video_count", body, token).status_code == 200
        control = _HTTP.post(f"{sandbox.url}/_sandbox/control", json={"tiktok_requests_per_day": 1}).json()
        assert control["tiktok_requests_per_day"] == 1
        assert _post(sandbox, "user/info", "video_count", body, token).status_code == 200
        assert _error(_post(sandbox, "user/info", "video_count", body, token))[1] == "daily_quota_limit_exceeded"
        assert sandbox.counters["tiktok:requests"] == 5 and sandbox.counters["tiktok:quota_refused"] == 2


def test_the_daily_record_quota_counts_videos_and_comments_returned() -> None:
    with SandboxServer(SandboxConfig(spec=SMALL, tiktok_records_per_day=20)) as sandbox:
        data, token = _tt(sandbox), _token(sandbox)
        video_id = data.video_id(*(data.busiest_video() or (0, 0)))
        for cursor in (0, 8):  # 8 records, then 16: still under 20
            body = {"video_id": video_id, "max_count": 8, "cursor": cursor}
            assert len(_post(sandbox, "video/comment/list", "id", body, token).json()["data"]["comments"]) == 8
        crossing = _post(sandbox, "video/comment/list", "id", {"video_id": video_id, "max_count": 9, "cursor": 16},
                         token)
        assert len(crossing.json()["data"]["comments"]) == 9  # the call crossing the allowance is served in full
        body = {"username": data.dataset.username(0)}
        assert _error(_post(sandbox, "user/info", "video_count", body, token)) == (429, "daily_quota_limit_exceeded")
        assert sandbox.counters["tiktok:records"] == 25 and sandbox.counters["tiktok:requests"] == 3
        _HTTP.post(f"{sandbox.url}/_sandbox/control", json={"tiktok_records_per_day": 100})
        assert _post(sandbox, "user/info", "video_count", body, token).status_code == 200


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_kind_answers_the_tiktok_way(kind: str) -> None:
    faults = FaultPlan(rate=1.0, kinds=(kind,), seed=5, timeout_s=0.3)
    with SandboxServer(SandboxConfig(spec=SMALL, faults=faults)) as sandbox:
        data, token = _tt(sandbox), _token(sandbox)  # token calls see no faults
        video_id = data.video_id(*(data.busiest_video() or (0, 0)))
        body: dict[str, Any] = {"video_id": video_id, "max_count": 5}
        if kind in ("throttle_429", "throttle_graph", "server_error"):
            answers = [_post(sandbox, "video/comment/list", "id", body, token) for _ in range(2)]
            expected = (500, "internal_error") if kind == "server_error" else (429, "rate_limit_exceeded")
            assert {_error(a) for a in answers} == {expected} and sandbox.counters["tiktok:requests"] == 0
        elif kind == "timeout":
            with pytest.raises(httpx.TimeoutException):
                _post(sandbox, "video/comment/list", "id", body, token, timeout=0.1)
            deadline = time.monotonic() + 2
            while not sandbox.counters["tiktok:requests"] and time.monotonic() < deadline:
                time.sleep(0.02)
            assert sandbox.counters["tiktok:requests"] == 1  # served late, and charged
        elif kind == "truncated":
            with pytest.raises(json.JSONDecodeError):
                json.loads(_post(sandbox, "video/comment/list", "id", body, token).content)
        elif kind == "reset":
            with pytest.raises(httpx.TransportError):
                _post(sandbox, "video/comment/list", "id", body, token)
        else:  # repeat: the last item before the cursor comes again at the top of the page
            first = _post(sandbox, "video/comment/list", "id", body, token).json()["data"]
            second = _post(sandbox, "video/comment/list", "id", body | {"cursor": first["cursor"]}, token).json()
            assert second["data"]["comments"][0] == first["comments"][-1]
            assert len(second["data"]["comments"]) == 6
        assert sandbox.counters[f"tiktok:fault:{kind}"] >= 1 and faults.injected[kind] >= 1


def test_a_new_epoch_adds_and_deletes_videos_and_comments(sandbox: SandboxServer) -> None:
    before, after = TikTokDataset(Dataset(SMALL, epoch=0)), TikTokDataset(Dataset(SMALL, epoch=3))
    p = next(p for p in range(SMALL.profiles) if after.dataset.deleted_posts(p))
    gone = min(after.dataset.deleted_posts(p))
    video = next((q, j) for q in range(SMALL.profiles) for j in before.videos_newest_first(q)
                 if after.dataset.deleted_comments(q, j) and after.comment_count(q, j) > before.comment_count(q, j))
    names = [before.dataset.username(q) for q in range(SMALL.profiles)]
    day = _day(before.create_time(p, gone))
    recent = (after.today() - timedelta(days=30), after.today())

    def state(token: str) -> tuple[list[int], list[int], list[int]]:
        window = _walk_query(sandbox, token, [names[p]], day, day, 100)
        latest = _walk_query(sandbox, token, names, *recent, 100)
        comments = _walk_comments(sandbox, token, before.video_id(*video), 100)
        return ([v["id"] for page in window for v in page["videos"]],
                [v["id"] for page in latest for v in page["videos"]],
                [c["id"] for page in comments for c in page["comments"]])

    token = _token(sandbox)
    window0, latest0, comments0 = state(token)
    assert _HTTP.post(f"{sandbox.url}/_sandbox/control", json={"epoch": 3}).json()["epoch"] == 3
    window3, latest3, comments3 = state(token)
    assert int(before.video_id(p, gone)) in window0 and int(before.video_id(p, gone)) not in window3
    assert latest3 == [int(after.video_id(*key)) for key in after.videos_in_window(range(SMALL.profiles), *recent)]
    assert set(latest3) - set(latest0) and all(_day(after.create_time(*after.parse_video_id(i) or (0, 0))) >
                                               before.today() for i in set(latest3) - set(latest0))
    assert comments3 == [int(after.comment_id(*video, k, r)) for k, r in after.comments_in_list_order(*video)]
    assert set(comments0) - set(comments3) and set(comments3) - set(comments0)  # deleted ones and new ones
    stats = _HTTP.get(f"{sandbox.url}/_sandbox/stats").json()
    assert stats["tiktok_totals"] == after.totals() != before.totals()
