"""Instagram as deployments read it: public accounts through business discovery, stories kept after
they expire, a token per account, and what an unknown, personal or renamed username ends as."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from sqlalchemy import Engine, select

from socialsync.networks.base import ApiCredentials
from socialsync.networks.instagram.client import InstagramClient
from socialsync.sandbox.dataset import Dataset, DatasetSpec
from socialsync.sandbox.instagram_dataset import InstagramDataset
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.storage import planning, schema
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.schema import sync_jobs, sync_tasks, tracked_entities
from tests.hostile import HostileProxy, RequestInfo, Rule
from tests.integration.conftest import SMALL
from tests.integration.instagram_requests import graph_requests, needed, owner_of
from tests.integration.sync_helpers import INSTAGRAM, app_user, client_for, day, sync, tracked_ids
from tests.integration.truth import assert_warehouse_matches, deleted_ids, expected

PAGE, COMMENT_PAGE = 10, 50
# Eight accounts: two public ones (3 and 7), 7 renamed at epoch 2, posts deleted over the days.
EIGHT = DatasetSpec(seed=515, profiles=8, posts_median=14, comments_median=3, posts_max=120)


def _jobs(engine: Engine, run_id: str) -> dict[str, tuple[str, str | None, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(select(sync_jobs.c.entity_id, sync_jobs.c.status, sync_jobs.c.error_type,
                                   sync_jobs.c.error_message).where(sync_jobs.c.run_id == run_id))
        return {r.entity_id: (r.status, r.error_type, r.error_message) for r in rows}


def _sub_syncs(engine: Engine, run_id: str, entity_id: str) -> dict[str, tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(select(sync_tasks.c.kind, sync_tasks.c.status, sync_tasks.c.last_error)
                            .join(sync_jobs, sync_jobs.c.id == sync_tasks.c.job_id)
                            .where(sync_jobs.c.run_id == run_id, sync_jobs.c.entity_id == entity_id,
                                   sync_tasks.c.kind != "comments"))
        return {r.kind: (r.status, r.last_error) for r in rows}


def test_owned_and_public_accounts_together_equal_the_truth_and_deletions_are_proven_on_both(
        warehouse: Engine) -> None:
    with SandboxServer(SandboxConfig(spec=EIGHT)) as sandbox:
        dataset: Dataset = sandbox.app.state.dataset
        ig = InstagramDataset(dataset)
        ids = tracked_ids(dataset)
        public = [p for p in range(EIGHT.profiles) if ig.public_only(p)]
        assert [ids[p] for p in public] == ["@" + ig.username(p) for p in public]
        client = client_for(sandbox)
        with warehouse.begin() as conn:
            planning.track_entities(conn, "instagram", ids, day(0))

        sync(warehouse, client, ids, "day-0", day(0))
        assert graph_requests(sandbox.counters) == needed(dataset, PAGE, COMMENT_PAGE)
        assert_warehouse_matches(warehouse, dataset, enrich=False)
        jobs = _jobs(warehouse, "day-0")
        assert {status for status, _, _ in jobs.values()} == {"succeeded"}
        for p in public:  # what discovery cannot give is skipped, with the reason, and the job still succeeds
            tasks = _sub_syncs(warehouse, "day-0", ids[p])
            threads = tasks["comment_threads"]
            assert threads[0] == "skipped" and "gives no comments" in (threads[1] or "")
            assert tasks["stories"][0] == "skipped" and "gives no stories" in (tasks["stories"][1] or "")
        # Rows are keyed by the IG user id the answer named; the tracked row keeps it and the username.
        with warehouse.connect() as conn:
            tracked = {r.entity_id: (r.profile_id, r.username) for r in conn.execute(select(
                tracked_entities.c.entity_id, tracked_entities.c.profile_id, tracked_entities.c.username))}
        for p in public:
            assert tracked.get(ids[p]) == (dataset.profile_id(p), ig.username(p))
        hidden = [dataset.post_id(p, j) for p in public for j in dataset.posts_newest_first(p) if ig.likes_hidden(p, j)]
        with warehouse.connect() as conn:
            likes = dict(conn.execute(select(schema.posts.c.post_id, schema.posts.c.like_count)
                                      .where(schema.posts.c.post_id.in_(hidden))).all())
        assert hidden and set(likes.values()) == {None}  # a hidden count is NULL, never 0

        # A quiet next day: one request per public account, whatever its number of posts.
        before = graph_requests(sandbox.counters)
        sync(warehouse, client, ids, "day-20", day(20))  # no post recent enough to have its comments rechecked
        spent = graph_requests(sandbox.counters) - before
        assert spent["graph:discovery"] == len(public) and not spent["graph:comments"]

        # Days later, a full refresh walks every discovery page to the end: it proves posts gone on
        # public accounts as on owned ones, and keeps every story it ever listed.
        dataset.epoch = 3
        renamed = [p for p in public if ig.renamed_at(p) is not None]
        assert renamed
        current = tracked_ids(dataset)  # the renamed account is tracked under its new name from now on
        with warehouse.begin() as conn:
            planning.track_entities(conn, "instagram", current, day(23))
        sync(warehouse, client, current, "day-23", day(23), full_refresh=True)
        assert_warehouse_matches(warehouse, dataset, enrich=False, story_epochs=[0, 3])
        gone = deleted_ids(warehouse)["posts"]
        assert gone == {dataset.post_id(p, j) for p in range(EIGHT.profiles) for j in dataset.deleted_posts(p)}
        assert {p for p in public if dataset.deleted_posts(p)}, "no public account lost a post: nothing proven"


def test_stories_captured_on_day_one_are_still_there_on_day_three(sandbox: SandboxServer, warehouse: Engine) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    ig = InstagramDataset(dataset)
    day_one = {s.id for p in ig.managed_profiles() for s in ig.stories_of_epoch(p, 1)}
    assert day_one
    dataset.epoch = 1
    sync(warehouse, client_for(sandbox), tracked_ids(dataset), "day-1", day(1))
    dataset.epoch = 3
    assert not day_one & {s.id for p in ig.managed_profiles() for s in ig.live_stories(p)}  # expired upstream
    sync(warehouse, client_for(sandbox), tracked_ids(dataset), "day-3", day(3), full_refresh=True)
    with warehouse.connect() as conn:
        kept = dict(conn.execute(select(schema.posts.c.post_id, schema.posts.c.deleted)
                                 .where(schema.posts.c.product_type == "story")).all())
    assert day_one <= kept.keys() and not any(kept[s] for s in day_one)
    assert_warehouse_matches(warehouse, dataset, enrich=False, story_epochs=[1, 3])


def test_a_discovery_page_that_is_not_a_page_or_a_cursor_that_does_not_move_proves_nothing(
        sandbox: SandboxServer, tmp_path: Path) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    ig = InstagramDataset(dataset)
    p = next(p for p in range(SMALL.profiles) if ig.public_only(p))
    entity = ig.tracked_id(p)
    assert len(list(dataset.posts_newest_first(p))) > 2  # more than one discovery page of two
    with HostileProxy(sandbox.url) as proxy:
        engine = warehouse_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
        client = client_for(proxy, ig_user_id=app_user(sandbox), page_size=2)
        sync(engine, client, [entity], "run-1", day(0))
        assert _jobs(engine, "run-1")[entity][0] == "succeeded"

        def stuck(body: Any, request: RequestInfo) -> Any:  # a later page names the cursor it was asked with
            asked = re.search(r"media\.after\(([^)]+)\)", _unquote(request.query))
            if asked and isinstance(body.get("business_discovery"), dict):
                body["business_discovery"]["media"]["paging"] = {"cursors": {"after": asked.group(1)}}
            return body

        def no_data(body: Any, request: RequestInfo) -> Any:
            if "media.after" in _unquote(request.query):
                body["business_discovery"]["media"].pop("data", None)
            return body

        for rewrite, reason in ((stuck, "the cursor did not move"), (no_data, "`media.data` is missing")):
            proxy.rules[:] = [Rule(match=r"business_discovery", action="rewrite", rewrite=rewrite)]
            run = f"run-{reason[:5]}"
            sync(engine, client, [entity], run, day(0), full_refresh=True)
            status, error_type, message = _jobs(engine, run)[entity]
            assert (status, error_type) == ("partial", "PageAnomaly") and reason in (message or ""), message
            assert deleted_ids(engine) == {"posts": set(), "comments": set()}  # nothing proven gone
        proxy.rules.clear()
        sync(engine, client, [entity], "run-again", day(0))
        assert _jobs(engine, "run-again")[entity][0] == "succeeded"
        assert_warehouse_matches(engine, dataset, enrich=False, profiles=[p])


def _unquote(query: str) -> str:
    return unquote_plus(query)


TOKENS = {"token-of-shop-a": [0, 1, 2], "token-of-shop-b": [4, 5]}  # account 3 is public: no token manages it


def _connect(sandbox: SandboxServer, tokens: dict[str, str], app_users: dict[str, str]) -> Any:
    """A client per connection id, as the extract task builds one from each Airflow connection."""

    def connect(conn_id: str) -> InstagramClient:
        return InstagramClient(ApiCredentials(f"{sandbox.url}/v21.0", tokens[conn_id], {
            "page_size": PAGE, "backoff_s": 0.01, "max_wait_s": 2.0, "ig_user_id": app_users[conn_id]}))
    return connect


@pytest.fixture
def two_shops() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(spec=SMALL, instagram_tokens={k: list(v) for k, v in TOKENS.items()})) as server:
        yield server


def test_accounts_on_two_connections_each_token_only_reads_its_own(two_shops: SandboxServer, warehouse: Engine,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    sandbox = two_shops
    dataset: Dataset = sandbox.app.state.dataset
    ids = tracked_ids(dataset)
    readers = {ids[p]: "ig_shop_a" for p in TOKENS["token-of-shop-a"]}
    readers |= {ids[p]: "ig_shop_b" for p in TOKENS["token-of-shop-b"]}
    readers[ids[3]] = "ig_shop_b"  # a public account, through shop b's app user
    with warehouse.begin() as conn:
        planning.track_entities(conn, "instagram", ids, day(0), readers)
    tokens = {"ig_shop_a": "token-of-shop-a", "ig_shop_b": "token-of-shop-b"}
    app_users = {conn_id: app_user(sandbox, token) for conn_id, token in tokens.items()}
    with caplog.at_level(logging.DEBUG):
        sync(warehouse, None, ids, "day-0", day(0), connect=_connect(sandbox, tokens, app_users))
    assert {s for s, _, _ in _jobs(warehouse, "day-0").values()} == {"succeeded"}
    assert_warehouse_matches(warehouse, dataset, enrich=False)
    by_token: dict[str, set[int | None]] = {}
    for token, path in sandbox.app.state.graph.request_log:
        by_token.setdefault(token, set()).add(owner_of(path, dataset))
    shop_b_app_user = dataset.parse_profile_id(app_user(sandbox, "token-of-shop-b"))
    assert by_token["token-of-shop-a"] == set(TOKENS["token-of-shop-a"])
    assert by_token["token-of-shop-b"] == set(TOKENS["token-of-shop-b"]) | {shop_b_app_user}  # discovery asks on it

    # Shop a's token is revoked: only its own jobs fail; shop b's accounts, and the public one, sync.
    tokens["ig_shop_a"] = "revoked-token-of-a"
    sandbox.app.state.graph.request_log.clear()
    with caplog.at_level(logging.DEBUG):
        sync(warehouse, None, ids, "day-1", day(1), connect=_connect(sandbox, tokens, app_users))
    jobs = _jobs(warehouse, "day-1")
    for e, (status, error_type, message) in jobs.items():
        if readers[e] == "ig_shop_a":
            assert (status, error_type) == ("failed", "AuthError") and "ig_shop_a" in (message or ""), jobs[e]
        else:
            assert status == "succeeded", (e, jobs[e])
    secrets = ("token-of-shop-a", "token-of-shop-b", "revoked-token-of-a")
    assert not [s for s in secrets if s in caplog.text]
    with warehouse.connect() as conn:
        for table in schema.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                assert not [s for s in secrets if s in json.dumps(tuple(row), default=str)], table.name


def test_an_unknown_a_personal_and_a_renamed_username_end_as_not_found_with_the_reason(warehouse: Engine) -> None:
    with SandboxServer(SandboxConfig(spec=EIGHT)) as sandbox:
        dataset: Dataset = sandbox.app.state.dataset
        ig = InstagramDataset(dataset)
        renamed = next(p for p in range(EIGHT.profiles) if ig.renamed_at(p) is not None)
        old = ig.tracked_id(renamed)
        unknown, personal = "@nobody_by_this_name", "@personal_aunt.may"
        healthy = ig.tracked_ids()[:2]
        entities = [*healthy, unknown, personal, old]
        with warehouse.begin() as conn:
            planning.track_entities(conn, "instagram", entities, day(0))
        client = client_for(sandbox)
        sync(warehouse, client, entities, "day-0", day(0))
        jobs = _jobs(warehouse, "day-0")
        assert jobs[old][0] == "succeeded" and {jobs[e][0] for e in healthy} == {"succeeded"}
        for name, says in ((unknown, "cannot be found"), (personal, "not a business or creator account")):
            status, error_type, message = jobs[name]
            assert (status, error_type) == ("failed", "NotFoundError") and says in (message or ""), message

        dataset.epoch = 2  # the account takes a new username: the old one answers not found from now on
        for n in range(3):
            sync(warehouse, client, [*healthy, old], f"day-2-{n}", day(2 + n))
            status, error_type, message = _jobs(warehouse, f"day-2-{n}")[old]
            assert (status, error_type) == ("failed", "NotFoundError") and "track its new @username" in (message or "")
        with warehouse.connect() as conn:
            row = conn.execute(select(tracked_entities.c.active, tracked_entities.c.deactivated_reason)
                               .where(tracked_entities.c.entity_id == old)).one()
        assert row.active is False and "track its new @username" in (row.deactivated_reason or "")
        # Tracked under its new name, the same account's rows go on under the same IG user id.
        new = ig.tracked_id(renamed)
        assert new != old
        sync(warehouse, client, [new], "day-5", day(5), full_refresh=True)
        assert _jobs(warehouse, "day-5")[new][0] == "succeeded"
        with warehouse.connect() as conn:
            username = conn.scalar(select(schema.profiles.c.username)
                                   .where(schema.profiles.c.profile_id == dataset.profile_id(renamed)))
        assert username == ig.username(renamed)
        want = expected(dataset, enrich=False, profiles=[renamed])["posts"]
        with warehouse.connect() as conn:
            got = set(conn.scalars(select(schema.posts.c.post_id).where(
                schema.posts.c.profile_id == dataset.profile_id(renamed), schema.posts.c.deleted.is_(False))))
        assert got == set(want)


def test_a_conf_names_accounts_with_their_own_connections() -> None:
    from socialsync.extract.request import InvalidConf, parse_sync_conf

    request = parse_sync_conf({"entity_ids": ["17840000000001", {"id": "@brand.one", "conn_id": "ig_brand"},
                                              "@creator_two"]}, INSTAGRAM)
    assert request.entity_ids == ["17840000000001", "@brand.one", "@creator_two"]
    assert request.conn_ids == {"@brand.one": "ig_brand"}
    for bad, says in (({"id": "@brand.one"}, "an item is an id or"),
                      ({"id": "@brand.one", "conn_id": "no spaces"}, "not an Airflow connection id"),
                      ({"id": "@has space", "conn_id": "ig"}, "not a valid instagram id"),
                      ("@" + "x" * 31, "not a valid instagram id")):
        with pytest.raises(InvalidConf, match=says):
            parse_sync_conf({"entity_ids": [bad]}, INSTAGRAM)
    with pytest.raises(InvalidConf, match="unknown key"):
        parse_sync_conf({"conn_ids": {"a": "b"}}, INSTAGRAM)
    assert Counter(request.entity_ids)  # order and uniqueness kept
