"""The sandbox's Instagram side: tokens, business discovery, comment replies and stories, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import httpx
import pytest

from socialsync.sandbox.dataset import Dataset, DatasetSpec, graph_time
from socialsync.sandbox.faults import FaultPlan
from socialsync.sandbox.fields import parse_fields
from socialsync.sandbox.graph_api import GraphApi, discovery_pages, reply_pages
from socialsync.sandbox.instagram_dataset import InstagramDataset
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from tests.integration.conftest import SMALL

TOKEN = "sandbox-token"
PROFILE = "id,username,name,biography,followers_count,follows_count,media_count,profile_picture_url,website"
MEDIA = ("id,caption,media_type,media_product_type,media_url,permalink,timestamp,like_count,comments_count,"
         "children{id,media_type,media_url}")
REPLY = "id,text,timestamp,username,like_count,from,parent_id"
STORY = "id,media_type,media_product_type,media_url,thumbnail_url,permalink,timestamp,caption"
# Eight profiles: profile 7 is public-only and renamed at epoch 2.
RENAMING = DatasetSpec(seed=4242, profiles=8, posts_median=10, comments_median=3, posts_max=100)
TWO_TOKENS = {"token-a": [0, 1], "token-b": [2, 4], "token-none": []}
HTTP = httpx.Client(timeout=10)  # one pool for the module: a fresh client per request costs ~20 ms


@pytest.fixture
def two_tokens() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(spec=SMALL, instagram_tokens=TWO_TOKENS)) as server:
        yield server


def _ig(sandbox: SandboxServer) -> InstagramDataset:
    ig: InstagramDataset = sandbox.app.state.instagram
    return ig


def _graph(sandbox: SandboxServer) -> GraphApi:
    graph: GraphApi = sandbox.app.state.graph
    return graph


def _get(sandbox: SandboxServer, path: str, token: str = TOKEN, **params: Any) -> httpx.Response:
    return HTTP.get(f"{sandbox.url}/v21.0/{path}", params=params, headers={"Authorization": f"Bearer {token}"})


def _epoch(sandbox: SandboxServer, epoch: int) -> None:
    assert HTTP.post(f"{sandbox.url}/_sandbox/control", json={"epoch": epoch}).json()["epoch"] == epoch


def _discover(sandbox: SandboxServer, username: str, media: str = "media.limit(25)", token: str = TOKEN,
              profile: str = PROFILE) -> httpx.Response:
    app_user = _graph(sandbox).app_user_id(token)
    fields = f"business_discovery.username({username}){{{profile},{media}{{{MEDIA}}}}}"
    return _get(sandbox, app_user, token, fields=fields)


def _walk_discovery(sandbox: SandboxServer, username: str, limit: int) -> list[dict[str, Any]]:
    """Every media page of a discovery walk, each page's ``media`` object."""
    pages, after = [], None
    while True:
        media = f"media.after({after}).limit({limit})" if after else f"media.limit({limit})"
        body = _discover(sandbox, username, media).json()["business_discovery"]["media"]
        pages.append(body)
        after = body.get("paging", {}).get("cursors", {}).get("after")
        if after is None:
            return pages


def _missing(response: httpx.Response) -> bool:
    error = response.json().get("error", {})
    return response.status_code == 400 and error.get("code") == 100 and error.get("error_subcode") == 33


def _no_such_user(response: httpx.Response, username: str, what: str = "cannot be found") -> None:
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["error_subcode"], error["type"]) == (110, 2207013, "OAuthException")
    assert error["message"] == "Invalid user id" and error["error_user_title"] == "Cannot find User"
    assert error["error_user_msg"] == f"The user with username: {username} {what}." and error["fbtrace_id"]


def _biggest(ig: InstagramDataset, profiles: list[int]) -> int:
    return max(profiles, key=lambda p: len(list(ig.posts_newest_first(p))))


def _walk_edge(sandbox: SandboxServer, path: str, token: str = TOKEN, **params: Any) -> list[dict[str, Any]]:
    """Every page of an owned edge, following ``paging.next`` links (they carry the token)."""
    pages = [_get(sandbox, path, token, **params).json()]
    while "next" in pages[-1].get("paging", {}):
        pages.append(HTTP.get(pages[-1]["paging"]["next"]).json())
    return pages


# --- business discovery ---------------------------------------------------------------------------

def test_discovery_gives_the_profile_and_its_first_media_page_in_one_request(sandbox: SandboxServer) -> None:
    ig, dataset = _ig(sandbox), sandbox.app.state.dataset
    p = 3  # public-only: no token manages it, discovery reads it all the same
    assert ig.public_only(p) and ig.tracked_id(p) == "@" + ig.username(p)
    response = _discover(sandbox, ig.username(p))
    assert response.status_code == 200 and "x-app-usage" in response.headers
    body = response.json()
    assert body["id"] == dataset.profile_id(0) == _graph(sandbox).app_user_id(TOKEN)
    account = body["business_discovery"]
    truth = dataset.profile(p)
    assert {k: account[k] for k in ("id", "username", "media_count", "followers_count")} == {
        "id": truth.id, "username": ig.username(p), "media_count": truth.media_count,
        "followers_count": truth.followers_count}
    first = discovery_pages(ig, p, 25)[0]
    assert [m["id"] for m in account["media"]["data"]] == [dataset.post_id(p, j) for j in first]
    assert sandbox.counters["graph:discovery"] == 1 and sandbox.counters["graph:node"] == 0


def test_walking_discovery_reproduces_every_post_and_hides_hidden_likes(sandbox: SandboxServer) -> None:
    ig, dataset = _ig(sandbox), sandbox.app.state.dataset
    p = _biggest(ig, list(range(dataset.spec.profiles)))
    pages = _walk_discovery(sandbox, ig.username(p), 7)
    items = [m for page in pages for m in page["data"]]
    expected = list(ig.posts_newest_first(p))
    assert [m["id"] for m in items] == [dataset.post_id(p, j) for j in expected]
    assert [[dataset.parse_post_id(m["id"])[1] for m in page["data"]] for page in pages] == discovery_pages(ig, p, 7)
    assert any(len(page["data"]) < 7 for page in pages[:-1]), "discovery pages come back short as owned ones"
    hidden = [ig.likes_hidden(p, j) for j in expected]
    assert any(hidden) and not all(hidden)
    assert [("like_count" not in m) for m in items] == hidden
    assert all(m["like_count"] == dataset.post(p, j).like_count for m, j in zip(items, expected, strict=True)
               if not ig.likes_hidden(p, j))
    assert [m["comments_count"] for m in items] == [ig.comments_count(p, j) for j in expected]
    assert all("next" not in page.get("paging", {}) for page in pages)
    assert all(page["paging"]["cursors"].get("after") for page in pages[:-1])
    assert set(pages[-1]["paging"]["cursors"]) == {"before"}
    assert sandbox.counters["graph:discovery"] == len(pages)


def test_discovery_modifiers_come_in_any_order_and_limits_are_capped(sandbox: SandboxServer) -> None:
    ig = _ig(sandbox)
    p = _biggest(ig, list(range(sandbox.app.state.dataset.spec.profiles)))
    first = _discover(sandbox, ig.username(p), "media.limit(5)").json()["business_discovery"]["media"]
    after = first["paging"]["cursors"]["after"]
    one = _discover(sandbox, ig.username(p), f"media.after({after}).limit(5)").json()
    other = _discover(sandbox, ig.username(p), f"media.limit(5).after({after})").json()
    assert one == other and one["business_discovery"]["media"]["data"]
    capped = _discover(sandbox, ig.username(p), "media.limit(500)").json()["business_discovery"]["media"]
    assert len(capped["data"]) == len(discovery_pages(ig, p, 500)[0]) <= 100
    only = _get(sandbox, _graph(sandbox).app_user_id(TOKEN),
                fields=f"business_discovery.username({ig.username(p)}){{username}}").json()
    assert only == {"business_discovery": {"username": ig.username(p)}, "id": _graph(sandbox).app_user_id(TOKEN)}
    assert parse_fields("id,children{id}") == {"id": None, "children": {"id": None}}
    assert parse_fields("media.after(c).limit(3){id}")["media"] == {"id": None}


def test_an_account_without_posts_answers_an_empty_media_page(sandbox: SandboxServer) -> None:
    ig, dataset = _ig(sandbox), sandbox.app.state.dataset
    p = next(p for p in range(dataset.spec.profiles) if dataset.post_count(p) == 0)
    account = _discover(sandbox, ig.username(p)).json()["business_discovery"]
    assert account["media_count"] == 0 and account["media"] == {"data": []}
    assert discovery_pages(ig, p, 25) == [[]]


def test_unknown_personal_and_old_usernames_are_no_business_account() -> None:
    with SandboxServer(SandboxConfig(spec=RENAMING)) as sandbox:
        ig = _ig(sandbox)
        p = 7
        old, new = ig.username(p), ig.dataset.username(p) + "_v2"
        assert ig.public_only(p) and ig.renamed_at(p) == 2 and ig.renamed_at(6) is None and len(new) <= 30
        assert _discover(sandbox, old).status_code == 200
        _no_such_user(_discover(sandbox, new), new)
        _no_such_user(_discover(sandbox, "nobody_at_all"), "nobody_at_all")
        _no_such_user(_discover(sandbox, "personal_jane"), "personal_jane", "is not a business or creator account")
        _epoch(sandbox, 2)
        assert ig.username(p) == new and ig.tracked_id(p) == "@" + new and ig.parse_username(old) is None
        _no_such_user(_discover(sandbox, old), old)
        renamed = _discover(sandbox, new)
        assert renamed.status_code == 200 and renamed.json()["business_discovery"]["username"] == new
        assert _discover(sandbox, ig.username(6)).status_code == 200  # the others keep their names


def test_a_discovery_cursor_from_an_earlier_epoch_has_expired(sandbox: SandboxServer) -> None:
    ig = _ig(sandbox)
    p = _biggest(ig, list(range(sandbox.app.state.dataset.spec.profiles)))
    after = _discover(sandbox, ig.username(p), "media.limit(5)").json()["business_discovery"]["media"][
        "paging"]["cursors"]["after"]
    _epoch(sandbox, 1)
    expired = _discover(sandbox, ig.username(p), f"media.after({after}).limit(5)")
    assert expired.status_code == 400
    assert (expired.json()["error"]["code"], expired.json()["error"]["error_subcode"]) == (100, 2018116)


def test_a_repeat_fault_repeats_the_previous_discovery_page_last_item() -> None:
    faults = FaultPlan(rate=1.0, kinds=("repeat",), seed=1)
    with SandboxServer(SandboxConfig(spec=SMALL, faults=faults)) as sandbox:
        ig = _ig(sandbox)
        p = _biggest(ig, list(range(SMALL.profiles)))
        pages = _walk_discovery(sandbox, ig.username(p), 5)
    assert len(pages) > 2
    for before, page in pairwise(pages):
        assert page["data"][0]["id"] == before["data"][-1]["id"]


def test_discovery_only_on_the_token_app_user(two_tokens: SandboxServer) -> None:
    ig, graph = _ig(two_tokens), _graph(two_tokens)
    assert graph.app_user_id("token-a") == Dataset.profile_id(0)
    assert graph.app_user_id("token-b") == Dataset.profile_id(2)
    assert graph.app_user_id("token-none") == "17841400000000000"
    for token in TWO_TOKENS:  # discovery reads public data: which token asks does not matter
        assert _discover(two_tokens, ig.username(3), token=token).status_code == 200
        assert _discover(two_tokens, ig.username(4), token=token).status_code == 200
    wrong = _get(two_tokens, Dataset.profile_id(2), "token-a",
                 fields=f"business_discovery.username({ig.username(3)}){{id}}")
    assert _missing(wrong)


# --- tokens ---------------------------------------------------------------------------------------

def _owned_paths(ig: InstagramDataset, p: int) -> dict[str, str]:
    """A path of each owned kind of object of profile ``p``: node, media, stories, media node, comments, replies."""
    dataset = ig.dataset
    j, k = next((j, k) for j in dataset.posts_newest_first(p) for k in dataset.comments_newest_first(p, j)
                if next(ig.replies_oldest_first(p, j, k), None) is not None)
    return {"node": dataset.profile_id(p), "media": f"{dataset.profile_id(p)}/media",
            "stories": f"{dataset.profile_id(p)}/stories", "post": dataset.post_id(p, j),
            "comments": f"{dataset.post_id(p, j)}/comments", "replies": f"{dataset.comment_id(p, j, k)}/replies"}


def test_each_token_reads_only_the_profiles_it_manages(two_tokens: SandboxServer) -> None:
    ig = _ig(two_tokens)
    for token, own in (("token-a", [0, 1]), ("token-b", [2, 4]), ("token-none", [])):
        for p in range(SMALL.profiles):
            if ig.dataset.post_count(p) == 0:
                continue  # the empty profile has no post to ask for
            for kind, path in _owned_paths(ig, p).items():
                response = _get(two_tokens, path, token)
                assert (response.status_code == 200) is (p in own), (token, p, kind)
                if p not in own:  # exactly what a missing object answers
                    assert _missing(response), (token, p, kind)
    assert _get(two_tokens, Dataset.profile_id(0), TOKEN).json()["error"]["code"] == 190  # not configured


def test_the_default_token_refuses_public_only_profiles(sandbox: SandboxServer) -> None:
    ig = _ig(sandbox)
    assert ig.managed_profiles() == [0, 1, 2, 4, 5]
    assert _graph(sandbox).tokens == {TOKEN: (0, 1, 2, 4, 5)}
    for kind, path in _owned_paths(ig, 3).items():
        assert _missing(_get(sandbox, path)), kind
    assert ig.tracked_ids() == [Dataset.profile_id(0), Dataset.profile_id(1), Dataset.profile_id(2),
                                "@" + ig.username(3), Dataset.profile_id(4), Dataset.profile_id(5)]


def test_requests_are_logged_with_their_token_and_links_echo_it(two_tokens: SandboxServer) -> None:
    graph = _graph(two_tokens)
    media = f"{Dataset.profile_id(1)}/media"
    page = _get(two_tokens, media, "token-a", limit=3).json()
    assert "access_token=token-a" in page["paging"]["next"]
    HTTP.get(f"{two_tokens.url}/v21.0/{Dataset.profile_id(2)}", params={"access_token": "token-b"})
    _get(two_tokens, Dataset.profile_id(0), "no-such-token")  # refused before the log
    _get(two_tokens, Dataset.profile_id(2), "token-a")  # passed the token check, then refused the object
    assert list(graph.request_log) == [("token-a", f"/v21.0/{media}"),
                                       ("token-b", f"/v21.0/{Dataset.profile_id(2)}"),
                                       ("token-a", f"/v21.0/{Dataset.profile_id(2)}")]
    assert graph.request_log.maxlen == 500_000


# --- replies --------------------------------------------------------------------------------------

def _comments_with_replies(sandbox: SandboxServer, post_id: str, fields: str = f"id,replies{{{REPLY}}}",
                           ) -> list[dict[str, Any]]:
    return [c for page in _walk_edge(sandbox, f"{post_id}/comments", fields=fields, limit=50) for c in page["data"]]


def _all_replies(comment: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """A comment's replies, inline then through ``paging.next``, and the ``/replies`` requests it took."""
    edge, replies, calls = comment["replies"], list(comment["replies"]["data"]), 0
    while "next" in edge["paging"]:
        edge = HTTP.get(edge["paging"]["next"]).json()
        replies += edge["data"]
        calls += 1
    return replies, calls


def _busiest_post(ig: InstagramDataset) -> tuple[int, int]:
    return max(((p, j) for p in ig.managed_profiles() for j in ig.posts_newest_first(p)),
               key=lambda pj: max((ig.reply_total(*pj, k) for k in ig.dataset.comments_newest_first(*pj)), default=0))


def test_inline_replies_and_replies_pages_give_every_reply_oldest_first(sandbox: SandboxServer) -> None:
    ig, dataset = _ig(sandbox), sandbox.app.state.dataset
    p, j = _busiest_post(ig)
    comments = _comments_with_replies(sandbox, dataset.post_id(p, j))
    assert [c["id"] for c in comments] == [dataset.comment_id(p, j, k) for k in dataset.comments_newest_first(p, j)]
    total, paged = 0, 0
    for comment, k in zip(comments, dataset.comments_newest_first(p, j), strict=True):
        expected = list(ig.replies_oldest_first(p, j, k))
        total += 1 + len(expected)
        if not expected:
            assert "replies" not in comment
            continue
        assert len(comment["replies"]["data"]) == min(5, len(expected))
        replies, calls = _all_replies(comment)
        assert [r["id"] for r in replies] == [ig.reply_id(p, j, k, r) for r in expected]
        assert calls == reply_pages(ig, p, j, k, inline=5, limit=5)  # the next link keeps the inline limit
        paged += calls > 1
        truth = ig.reply(p, j, k, expected[-1])
        assert replies[-1] == {"id": truth.id, "text": truth.text, "timestamp": graph_time(truth.timestamp),
                               "username": truth.username, "like_count": truth.like_count,
                               "from": {"id": truth.author_id, "username": truth.username},
                               "parent_id": comment["id"]}
        assert all(ig.reply(p, j, k, r).timestamp > dataset.comment(p, j, k).timestamp for r in expected)
        assert ig.parse_reply_id(truth.id) == (p, j, k, expected[-1])
        assert ig.parse_comment_id(comment["id"]) == (p, j, k)
    assert paged, "some comment must need more than one /replies page"
    assert sandbox.counters["graph:replies"] > 0
    node = _get(sandbox, dataset.post_id(p, j), fields="comments_count").json()
    owned = _get(sandbox, f"{dataset.profile_id(p)}/media", fields="id,comments_count", limit=100).json()["data"]
    assert node["comments_count"] == total == ig.comments_count(p, j)
    assert next(m["comments_count"] for m in owned if m["id"] == dataset.post_id(p, j)) == total


def test_the_replies_edge_pages_from_the_inline_cursor_and_the_helper_counts_its_requests(
        sandbox: SandboxServer) -> None:
    ig, dataset = _ig(sandbox), sandbox.app.state.dataset
    p, j = _busiest_post(ig)
    k = max(dataset.comments_newest_first(p, j), key=lambda k: ig.reply_total(p, j, k))
    comment = next(c for c in _comments_with_replies(sandbox, dataset.post_id(p, j))
                   if c["id"] == dataset.comment_id(p, j, k))
    for limit in (4, 50, 500):
        pages = _walk_edge(sandbox, f"{comment['id']}/replies", fields=REPLY, limit=limit,
                           after=comment["replies"]["paging"]["cursors"]["after"])
        ids = [r["id"] for r in comment["replies"]["data"]] + [r["id"] for page in pages for r in page["data"]]
        assert ids == [ig.reply_id(p, j, k, r) for r in ig.replies_oldest_first(p, j, k)]
        assert len(pages) == reply_pages(ig, p, j, k, inline=5, limit=limit)
        assert all(len(page["data"]) <= min(limit, 50) for page in pages)
    wider = next(c for c in _comments_with_replies(sandbox, dataset.post_id(p, j), "id,replies.limit(8){id}")
                 if c["id"] == comment["id"])
    assert [r["id"] for r in wider["replies"]["data"]] == [
        ig.reply_id(p, j, k, r) for r in list(ig.replies_oldest_first(p, j, k))[:8]]
    assert "limit=8" in wider["replies"]["paging"]["next"]


def _reply_ids_over_http(sandbox: SandboxServer, comment: tuple[int, int, int]) -> list[str]:
    p, j, k = comment
    dataset = sandbox.app.state.dataset
    found = next(c for c in _comments_with_replies(sandbox, dataset.post_id(p, j), "id,replies.limit(50){id}")
                 if c["id"] == dataset.comment_id(p, j, k))
    return [r["id"] for r in _all_replies(found)[0]] if "replies" in found else []


def test_replies_are_born_and_deleted_across_epochs(sandbox: SandboxServer) -> None:
    ig, dataset = _ig(sandbox), sandbox.app.state.dataset
    for epoch in (1, 2):
        _epoch(sandbox, epoch - 1)
        before = {(p, j, k): set(ig.replies_oldest_first(p, j, k)) for p in ig.managed_profiles()
                  for j in ig.posts_newest_first(p) for k in dataset.comments_newest_first(p, j)}
        _epoch(sandbox, epoch)
        still = [c for c in before if ig.parse_comment_id(dataset.comment_id(*c)) is not None]
        born = next(c for c in still if set(ig.replies_oldest_first(*c)) - before[c])
        lost = next(c for c in still if before[c] - set(ig.replies_oldest_first(*c)))
        assert before[lost] - set(ig.replies_oldest_first(*lost)) <= ig.deleted_replies(*lost)
        for comment in (born, lost):
            _epoch(sandbox, epoch - 1)
            old = _reply_ids_over_http(sandbox, comment)
            _epoch(sandbox, epoch)
            new = _reply_ids_over_http(sandbox, comment)
            assert new == [ig.reply_id(*comment, r) for r in ig.replies_oldest_first(*comment)]
            assert old == [ig.reply_id(*comment, r) for r in sorted(before[comment])]
            assert (set(new) - set(old)) if comment == born else (set(old) - set(new))
        newest = ig.reply(*born, max(ig.replies_oldest_first(*born)))
        assert newest.timestamp > dataset.comment(*born).timestamp


# --- stories --------------------------------------------------------------------------------------

def test_stories_live_for_their_epoch_day(sandbox: SandboxServer) -> None:
    ig, dataset = _ig(sandbox), sandbox.app.state.dataset
    _epoch(sandbox, 1)
    p = max(ig.managed_profiles(), key=lambda p: len(ig.live_stories(p)))
    stories = ig.stories_of_epoch(p, 1)
    assert len(stories) > 1 and stories == ig.live_stories(p)
    pages = _walk_edge(sandbox, f"{dataset.profile_id(p)}/stories", fields=STORY, limit=1)
    items = [s for page in pages for s in page["data"]]
    assert [s["id"] for s in items] == [s.id for s in stories] and len(pages) == len(stories)
    first = stories[0]
    assert items[0]["media_product_type"] == "STORY" and items[0]["timestamp"] == graph_time(first.timestamp)
    assert items[0]["permalink"] == f"https://www.instagram.com/stories/{ig.username(p)}/{first.id}/"
    assert ("thumbnail_url" in items[0]) is (first.media_type == "VIDEO")
    assert ig.parse_story_id(first.id) is not None and sandbox.counters["graph:stories"] == len(pages)
    _epoch(sandbox, 2)
    now = _get(sandbox, f"{dataset.profile_id(p)}/stories", fields="id", limit=100).json()["data"]
    assert not {s["id"] for s in now} & {s.id for s in stories}
    assert [s["id"] for s in now] == [s.id for s in ig.stories_of_epoch(p, 2)]
    assert ig.stories_of_epoch(p, 1) == stories  # the truth of a past day stays
    quiet = next(q for q in ig.managed_profiles() if not ig.live_stories(q))
    assert _get(sandbox, f"{dataset.profile_id(quiet)}/stories", fields=STORY).json() == {"data": []}
    assert ig.stories_of_epoch(3, 2) == []  # a public-only account has no stories to read


# --- the helpers agree with HTTP ------------------------------------------------------------------

def test_discovery_pages_counts_the_requests_of_every_walk(sandbox: SandboxServer) -> None:
    ig = _ig(sandbox)
    for limit in (6, 25):
        for p in range(SMALL.profiles):
            asked = sandbox.counters["graph:discovery"]
            pages = _walk_discovery(sandbox, ig.username(p), limit)
            assert sandbox.counters["graph:discovery"] - asked == len(pages) == len(discovery_pages(ig, p, limit))
