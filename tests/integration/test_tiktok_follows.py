"""TikTok's followers and following, synced from the sandbox: equal to the truth field by field in the fewest
requests, lists above ``max_list_items`` skipped with their count, private ones skipped with the reason; a
day of follows found by walks that stop at the first known follow (proving nothing removed), and the next
complete walk marking exactly the unfollows."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from socialsync.local import inline
from socialsync.networks.base import ApiCredentials
from socialsync.networks.tiktok import NETWORK as TIKTOK
from socialsync.networks.tiktok.client import MAX_PAGE, TikTokClient
from socialsync.sandbox.dataset import Dataset
from socialsync.sandbox.faults import FaultPlan
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.sandbox.tiktok_dataset import TikTokDataset
from socialsync.storage import schema
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.planning import track_entities
from socialsync.storage.rebuild import clear_derived
from socialsync.storage.schema import sync_jobs, sync_tasks
from socialsync.transform.pipeline import normalize_jobs
from tests.integration.conftest import SMALL
from tests.integration.sync_helpers import checksums, day
from tests.integration.tiktok_truth import LIST_KINDS as KINDS
from tests.integration.tiktok_truth import follow_truth, held_follows, held_names, held_pinned, pinned_truth, walked

SUBSCRIPTIONS = frozenset({"profile", "subscriptions"})
LIMIT = 5_000  # the default max_list_items


def _client(sandbox: SandboxServer, **options: object) -> TikTokClient:
    settings: dict[str, object] = {"backoff_s": 0.01, "max_wait_s": 2.0, "timeout": 5.0, "login": "sandbox-client",
                                   **options}
    return TikTokClient(ApiCredentials(f"{sandbox.url}/tiktok/v2", "sandbox-secret", settings))


def _requests(sandbox: SandboxServer) -> Counter[str]:
    return Counter({kind: sandbox.counters[f"tiktok:{kind}"] for kind in KINDS})


def _tasks(engine: Engine, run_id: str) -> dict[tuple[str, str], tuple[str, str | None, Any]]:
    with engine.connect() as conn:
        return {(r.entity_id, r.kind): (r.status, r.last_error, r.seen) for r in conn.execute(
            select(sync_jobs.c.entity_id, sync_tasks.c.kind, sync_tasks.c.status, sync_tasks.c.last_error,
                   sync_tasks.c.seen).join(sync_tasks, sync_tasks.c.job_id == sync_jobs.c.id)
            .where(sync_jobs.c.run_id == run_id, sync_tasks.c.kind.in_(KINDS)))}


def test_follows_equal_the_truth_and_a_day_of_changes_costs_only_the_new_pages(
        sandbox: SandboxServer, warehouse: Engine) -> None:
    data: TikTokDataset = sandbox.app.state.tiktok.data
    accounts = list(range(data.dataset.spec.profiles))
    ids = [data.user(p).username for p in accounts]
    above = [(p, kind) for p in accounts for kind in KINDS
             if not data.list_private(p, kind) and data.follow_count(p, kind, 0) > LIMIT]
    assert above, "no list above max_list_items: the bound is not exercised"
    with warehouse.begin() as conn:
        track_entities(conn, "tiktok", ids, day(0))

    inline.sync(warehouse, TIKTOK, _client(sandbox), ids, "day-0", day(0), quota_units=100_000, scope=SUBSCRIPTIONS)
    # The fewest requests: every page of each list walked, one refused request for a private list, none
    # for a list above the bound.
    assert _requests(sandbox) == Counter({
        kind: sum(data.list_pages(p, kind, MAX_PAGE) for p in accounts
                  if data.list_private(p, kind) or walked(data, p, kind)) for kind in KINDS})
    assert held_names(held_follows(warehouse), data, accounts) == follow_truth(data, accounts)
    assert {row[2] for row in held_follows(warehouse).values()} == {day(0)}  # first seen
    tasks = _tasks(warehouse, "day-0")
    for p, kind in above:
        status, reason, _ = tasks[(ids[p], kind)]
        assert status == "skipped" and f"{data.follow_count(p, kind, 0)} entries" in (reason or ""), reason
    for p in accounts:
        for kind in KINDS:
            if data.list_private(p, kind):
                assert tasks[(ids[p], kind)][:1] == ("skipped",) and "private" in (tasks[(ids[p], kind)][1] or "")
    with warehouse.connect() as conn:
        assert set(conn.scalars(select(sync_jobs.c.status).where(sync_jobs.c.run_id == "day-0"))) == {"succeeded"}

    # A day of follows and unfollows: each walk stops at its first page holding a known follow, so it
    # costs only the pages of what is new; it finds every new follow and proves no unfollow.
    known = {(p, kind): {f.username for f in (data.followers(p) if kind == "followers" else data.following(p))}
             for p in accounts for kind in KINDS}
    before_truth = follow_truth(data, accounts)
    data.dataset.epoch = 1
    spent_before = _requests(sandbox)
    inline.sync(warehouse, TIKTOK, _client(sandbox), ids, "day-1", day(1), quota_units=100_000, scope=SUBSCRIPTIONS)
    spent = _requests(sandbox) - spent_before
    assert spent == Counter({kind: sum(data.list_pages_until(p, kind, MAX_PAGE, known[(p, kind)]) for p in accounts
                                       if data.list_private(p, kind) or walked(data, p, kind)) for kind in KINDS})
    now_truth = follow_truth(data, accounts)
    new = now_truth.keys() - before_truth.keys()
    gone = before_truth.keys() - now_truth.keys()
    assert new and gone
    held = held_follows(warehouse)
    assert new <= held.keys() and all(held[key][2] == day(1) for key in new)  # first seen the day they came
    assert gone <= held.keys()  # a walk that stopped early proves no unfollow
    assert all(seen.get("incremental") and not seen.get("complete")
               for (e, kind), (status, _, seen) in _tasks(warehouse, "day-1").items() if status == "succeeded")

    # The next complete walk (a full refresh here; every full_list_days otherwise) marks exactly the unfollows.
    inline.sync(warehouse, TIKTOK, _client(sandbox), ids, "day-1-full", day(1), quota_units=100_000,
                scope=SUBSCRIPTIONS, full_refresh=True)
    assert held_names(held_follows(warehouse), data, accounts) == now_truth
    removed = {key for key, row in held_follows(warehouse, live=False).items() if row[3] is not None}
    assert removed == gone
    with warehouse.connect() as conn:
        lost = {r.entity_id: r.value for r in conn.execute(select(schema.metrics.c.entity_id, schema.metrics.c.value)
                                                           .where(schema.metrics.c.metric == "followers_lost"))}
    for p in accounts:
        if walked(data, p, "followers"):
            assert lost.get(ids[p]) == sum(1 for follower, followee in gone if followee == ids[p]), p


def test_a_complete_walk_comes_back_every_full_list_days(sandbox: SandboxServer, warehouse: Engine) -> None:
    data: TikTokDataset = sandbox.app.state.tiktok.data
    p = next(p for p in range(data.dataset.spec.profiles) if walked(data, p, "followers"))
    me = data.user(p).username
    client = _client(sandbox, full_list_days=3)
    inline.sync(warehouse, TIKTOK, client, [me], "day-0", day(0), quota_units=100_000, scope=SUBSCRIPTIONS)
    seen: dict[int, Any] = {}
    for n in (1, 2, 3):
        data.dataset.epoch = n
        inline.sync(warehouse, TIKTOK, _client(sandbox, full_list_days=3), [me], f"day-{n}", day(n),
                    quota_units=100_000, scope=SUBSCRIPTIONS)
        seen[n] = _tasks(warehouse, f"day-{n}")[(me, "followers")][2]
    assert [bool(seen[n].get("complete")) for n in (1, 2, 3)] == [False, False, True]
    held = {key for key in held_names(held_follows(warehouse), data, [p]) if key[1] == me}
    assert held == {key for key in follow_truth(data, [p]) if key[1] == me}  # the complete walk proved the rest


def test_ten_percent_faults_a_rerun_and_a_rebuild_from_raw_keep_the_follows_and_pins(tmp_path: Path) -> None:
    faults = FaultPlan(rate=0.1, seed=5, timeout_s=2.0)  # a stalled answer outlasts the client's read timeout
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    with SandboxServer(SandboxConfig(spec=SMALL, faults=faults)) as sandbox:
        data: TikTokDataset = sandbox.app.state.tiktok.data
        accounts = list(range(data.dataset.spec.profiles))
        ids = [data.user(p).username for p in accounts]

        def run(run_id: str) -> None:
            inline.sync(engine, TIKTOK, _client(sandbox, max_attempts=10, timeout=1.0, deadline_s=4.0), ids, run_id,
                        day(0), quota_units=100_000, scope=SUBSCRIPTIONS | {"pinned"})

        run("run-1")
        assert sum(v for k, v in sandbox.counters.items() if k.startswith("tiktok:fault:")) > 5
        assert held_names(held_follows(engine), data, accounts) == follow_truth(data, accounts)
        pins = held_pinned(engine)  # the pinned videos, the only posts this scope loads
        assert pins and {video: row[1] for video, row in pins.items()} == pinned_truth(data, accounts, pins)
        before = checksums(engine)
        run("run-1")  # the run cleared and run again
        assert checksums(engine) == before
        time.sleep(faults.timeout_s + 0.5)  # a stalled answer the client gave up on is counted when it ends
        requests = sum(sandbox.counters.values())
        with engine.begin() as conn:
            clear_derived(conn, "tiktok")
            job_ids = list(conn.scalars(select(sync_jobs.c.id).order_by(sync_jobs.c.id)))
        normalize_jobs(engine, TIKTOK, job_ids)
        assert checksums(engine) == before and sum(sandbox.counters.values()) == requests


LIKES = frozenset({"likes"})


def _likes_truth(data: TikTokDataset, accounts: list[int]) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(liked video, the account that liked it) -> the video's author and description, for every public list."""
    out = {}
    for p in accounts:
        if data.list_private(p, "liked_videos"):
            continue
        for author, j, _ in data.liked_videos(p):
            video = data.video(author, j)
            out[(data.video_id(author, j), data.user(p).username)] = (video.username, video.video_description or None)
    return out


def _likes(engine: Engine, live: bool = True) -> dict[tuple[str, str], tuple[Any, ...]]:
    lk = schema.likes.c
    query = select(lk.post_id, lk.author_id, lk.post_author_id, lk.caption, lk.removed_at).where(
        lk.network == "tiktok", *([lk.removed_at.is_(None)] if live else []))
    with engine.connect() as conn:
        return {(r[0], r[1]): tuple(r[2:]) for r in conn.execute(query)}


def test_liked_videos_equal_the_truth_and_only_a_complete_walk_proves_an_unlike(
        sandbox: SandboxServer, warehouse: Engine) -> None:
    data: TikTokDataset = sandbox.app.state.tiktok.data
    accounts = list(range(data.dataset.spec.profiles))
    ids = [data.user(p).username for p in accounts]

    def sync(run_id: str, n: int, **window: Any) -> int:
        before = sandbox.counters["tiktok:liked_videos"]
        inline.sync(warehouse, TIKTOK, _client(sandbox), ids, run_id, day(n), quota_units=100_000, scope=LIKES,
                    **window)
        return sandbox.counters["tiktok:liked_videos"] - before

    assert sync("day-0", 0) == sum(data.list_pages(p, "liked_videos", MAX_PAGE) for p in accounts)
    truth = _likes_truth(data, accounts)
    assert truth and {k: v[:2] for k, v in _likes(warehouse).items()} == truth
    known = {p: {data.video_id(a, j) for a, j, _ in data.liked_videos(p)} for p in accounts}

    data.dataset.epoch = 1  # new likes, and some taken back
    assert sync("day-1", 1) == sum(data.list_pages_until(p, "liked_videos", MAX_PAGE, known[p]) for p in accounts)
    now = _likes_truth(data, accounts)
    new, gone = now.keys() - truth.keys(), truth.keys() - now.keys()
    assert new and gone and new <= _likes(warehouse).keys() and gone <= _likes(warehouse).keys()

    sync("day-1-full", 1, full_refresh=True)
    assert {k: v[:2] for k, v in _likes(warehouse).items()} == now
    assert {k for k, v in _likes(warehouse, live=False).items() if v[2] is not None} == gone


PINNED = frozenset({"profile", "posts", "pinned"})  # what scope "posts" asks of TikTok


def test_pinned_videos_flag_their_posts_and_a_repin_turns_the_old_ones_off(
        sandbox: SandboxServer, warehouse: Engine) -> None:
    data: TikTokDataset = sandbox.app.state.tiktok.data
    accounts = list(range(data.dataset.spec.profiles))
    ids = [data.user(p).username for p in accounts]
    hidden = {p for p in accounts if data.list_private(p, "pinned_videos")}
    assert any(data.pinned_videos(p) for p in accounts if p not in hidden)  # (a hidden one: skipped, as below)

    def sync(run_id: str, n: int) -> int:
        before = sandbox.counters["tiktok:pinned_videos"]
        inline.sync(warehouse, TIKTOK, _client(sandbox), ids, run_id, day(n), quota_units=100_000, scope=PINNED)
        return sandbox.counters["tiktok:pinned_videos"] - before

    assert sync("day-0", 0) == len(accounts)  # the fewest: one whole answer an account, a refusal for a hidden one
    held = held_pinned(warehouse)
    assert {video: row[1] for video, row in held.items()} == pinned_truth(data, accounts, held)
    assert any(row[1] for row in held.values())
    with warehouse.connect() as conn:
        tasks = {r.entity_id: (r.status, r.last_error) for r in conn.execute(
            select(sync_jobs.c.entity_id, sync_tasks.c.status, sync_tasks.c.last_error)
            .join(sync_tasks, sync_tasks.c.job_id == sync_jobs.c.id)
            .where(sync_jobs.c.run_id == "day-0", sync_tasks.c.kind == "pinned_videos"))}
        statuses = set(conn.scalars(select(sync_jobs.c.status).where(sync_jobs.c.run_id == "day-0")))
    assert statuses == {"succeeded"}  # a hidden list skips its sub-sync, not the job
    for p in accounts:
        status, reason = tasks[ids[p]]
        assert (status, "private" in (reason or "")) == (("skipped", True) if p in hidden else ("succeeded", False))

    # The first day an account that shows its list re-pinned: the old pins turn off, the new ones on.
    first = {p: data.pinned_videos(p) for p in accounts if p not in hidden}
    n = next(e for e in range(1, 30) if any(TikTokDataset(Dataset(data.dataset.spec, epoch=e)).pinned_videos(p) != pins
                                            for p, pins in first.items()))
    data.dataset.epoch = n
    assert sync(f"day-{n}", n) == len(accounts)
    now = held_pinned(warehouse)
    assert {video: row[1] for video, row in now.items()} == pinned_truth(data, accounts, now)
    assert any(held[video][1] and not row[1] for video, row in now.items() if video in held)  # unpinned
