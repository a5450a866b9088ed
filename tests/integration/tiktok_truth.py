"""The TikTok sandbox's ground truth as warehouse rows, built from the dataset, not from any payload."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from socialsync.sandbox.tiktok_dataset import TikTokDataset
from socialsync.storage import schema
from tests.integration.truth import assert_tables_match

NETWORK = "tiktok"
CALLS = ("user_info", "video_query", "comment_list")
WINDOW_DAYS = 30


def calls(counters: Mapping[str, int]) -> dict[str, int]:
    return {c: counters[f"tiktok:{c}"] for c in CALLS}


def calls_since(counters: Mapping[str, int], before: dict[str, int]) -> dict[str, int]:
    now = calls(counters)
    return {c: now[c] - before[c] for c in CALLS}


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def expected(data: TikTokDataset, accounts: Iterable[int] | None = None) -> dict[str, dict[Any, tuple]]:
    """The rows a sync of ``accounts`` (default: every account of the dataset) must hold."""
    out: dict[str, dict[Any, tuple]] = {"profiles": {}, "posts": {}, "media": {}, "comments": {}}
    for p in range(data.dataset.spec.profiles) if accounts is None else accounts:
        user = data.user(p)
        out["profiles"][user.username] = (user.display_name, user.bio_description, user.follower_count,
                                          user.following_count, user.video_count, user.avatar_url,
                                          user.bio_url or None)
        for j in data.videos_newest_first(p):
            video = data.video(p, j)
            link = f"https://www.tiktok.com/@{video.username}/video/{video.id}"
            out["posts"][video.id] = (video.username, video.video_description or None, link, _at(video.create_time),
                                      video.like_count, video.comment_count, video.view_count)
            out["media"][video.id] = (video.id, 0, "video", link)
            for key in data.reachable_comments(p, j):
                comment = data.comment(p, j, *key)
                top = comment.parent_comment_id == video.id
                out["comments"][comment.id] = (video.id, None if top else comment.parent_comment_id, comment.text,
                                               _at(comment.create_time), comment.like_count,
                                               comment.reply_count if top else None)
    return out


def actual(engine: Engine) -> dict[str, dict[Any, tuple]]:
    """The warehouse's live TikTok rows (deleted ones, and media of deleted videos, left out)."""
    p, po, m, c = schema.profiles.c, schema.posts.c, schema.media.c, schema.comments.c
    gone = select(po.post_id).where(po.network == NETWORK, po.deleted.is_(True))
    with engine.connect() as conn:
        return {
            "profiles": {r[0]: tuple(r[1:]) for r in conn.execute(select(
                p.profile_id, p.display_name, p.bio, p.followers_count, p.following_count, p.posts_count,
                p.avatar_url, p.website).where(p.network == NETWORK))},
            "posts": {r[0]: tuple(r[1:]) for r in conn.execute(select(
                po.post_id, po.profile_id, po.caption, po.permalink, po.created_at, po.like_count, po.comments_count,
                po.view_count).where(po.network == NETWORK, po.deleted.is_(False)))},
            "media": {r[0]: tuple(r[1:]) for r in conn.execute(select(
                m.media_id, m.post_id, m.position, m.media_type, m.url).where(
                m.network == NETWORK, m.post_id.not_in(gone)))},
            "comments": {r[0]: tuple(r[1:]) for r in conn.execute(select(
                c.comment_id, c.post_id, c.parent_comment_id, c.content, c.created_at, c.like_count,
                c.reply_count).where(c.network == NETWORK, c.deleted.is_(False)))},
        }


def assert_tiktok_matches(engine: Engine, data: TikTokDataset, covered: set[str] | None = None,
                          past_cap: bool = False, accounts: Iterable[int] | None = None) -> None:
    """Field by field; with ``covered`` (the videos a run listed), only the rows that run could see:
    profiles, those videos and their media, and the comments of those videos. With ``past_cap`` (days after
    the first), a comment still upstream that newer ones pushed past the 1,000 the API serves of a video may
    stay: no walk reaches it again, so none proves it gone (its job is ``partial``, which vouches for none)."""
    want, got = expected(data, accounts), actual(engine)
    if covered is not None:
        for table, video_of in (("posts", lambda key, row: key), ("media", lambda key, row: key),
                                ("comments", lambda key, row: row[0])):
            for rows in (want[table], got[table]):
                for key in [k for k, row in rows.items() if video_of(k, row) not in covered]:
                    del rows[key]

    def unreachable(table: str, key: Any) -> bool:
        parsed = data.parse_comment_id(key) if past_cap and table == "comments" else None
        if parsed is None:
            return False
        p, j, k, r = parsed
        return (k, r) in data.comments_in_list_order(p, j) and (k, r) not in data.reachable_comments(p, j)

    assert_tables_match(want, got, unreachable)


def first_sync_requests(data: TikTokDataset, accounts: list[int], as_of: date, page_size: int = 100) -> dict[str, int]:
    """The requests of a first sync of ``accounts`` (up to 100, one group): a user/info call each; the
    windows, newest first, each paged to its end, every account walking until it has seen all its
    videos; every comment page of every video with comments."""
    out = {"user_info": len(accounts), "video_query": 0, "comment_list": 0}
    active, seen, end = list(accounts), dict.fromkeys(accounts, 0), as_of
    while active:
        start = end - timedelta(days=WINDOW_DAYS)
        pages = data.query_pages(active, start, end, page_size)
        out["video_query"] += len(pages)
        for p, _ in {key for page in pages for key in page}:
            seen[p] += 1
        active = [p for p in active if seen[p] < data.video_count(p)]
        end = start - timedelta(days=1)
    for p in accounts:
        for j in data.videos_newest_first(p):
            if data.video(p, j).comment_count:
                out["comment_list"] += len(data.comment_pages(p, j, page_size))
    return out


def next_day_requests(data: TikTokDataset, accounts: list[int], as_of: date, synced: dict[tuple[int, int], int],
                      page_size: int = 100) -> tuple[dict[str, int], set[str]]:
    """The requests of the day after a sync of ``accounts`` (each leaves the walk at yesterday minus
    the lookback, inside the first window), and the videos that window lists: a user/info call each,
    the window's pages, and every comment page of each listed video whose count moved from its
    watermark (``synced``; a video without one is walked when it has comments)."""
    end = as_of
    pages = data.query_pages(accounts, end - timedelta(days=WINDOW_DAYS), end, page_size)
    listed = {key for page in pages for key in page}
    out = {"user_info": len(accounts), "video_query": len(pages), "comment_list": 0}
    for p, j in listed:
        count, before = data.video(p, j).comment_count, synced.get((p, j))
        if (count or before) and count != before:
            out["comment_list"] += len(data.comment_pages(p, j, page_size))
    return out, {data.video_id(p, j) for p, j in listed}


LIST_KINDS = ("followers", "following")
MAX_LIST_ITEMS = 5_000  # the default: a longer list is not walked


def walked(data: TikTokDataset, p: int, kind: str) -> bool:
    return not data.list_private(p, kind) and data.follow_count(p, kind, data.dataset.epoch) <= MAX_LIST_ITEMS


def follow_truth(data: TikTokDataset, accounts: list[int]) -> dict[tuple[str, str], str | None]:
    """Every follow of the walked lists: (follower, followee) -> the other side's display name."""
    out: dict[tuple[str, str], str | None] = {}
    for p in accounts:
        me = data.user(p).username
        for kind in LIST_KINDS:
            if not walked(data, p, kind):
                continue
            for follow in (data.followers(p) if kind == "followers" else data.following(p)):
                out[(follow.username, me) if kind == "followers" else (me, follow.username)] = follow.display_name
    return out


def held_follows(engine: Engine, live: bool = True) -> dict[tuple[str, str], tuple[Any, ...]]:
    f = schema.follows.c
    query = select(f.follower_id, f.followee_id, f.follower_name, f.followee_name, f.first_seen_at, f.removed_at)
    query = query.where(f.network == "tiktok", *([f.removed_at.is_(None)] if live else []))
    with engine.connect() as conn:
        return {(r[0], r[1]): tuple(r[2:]) for r in conn.execute(query)}


def held_names(follows: dict[tuple[str, str], tuple[Any, ...]], data: TikTokDataset,
           accounts: list[int]) -> dict[tuple[str, str], str | None]:
    """The other side's name as held: the follower's when the followee is the tracked one, else the followee's."""
    mine = {data.user(p).username for p in accounts}
    return {key: (row[0] if key[1] in mine and row[0] is not None else row[1]) for key, row in follows.items()}





def pinned_truth(data: TikTokDataset, accounts: list[int],
                 held: Mapping[str, tuple[str, Any]]) -> dict[str, bool | None]:
    """What ``posts.pinned`` must say of each held video (``held``: video -> (author, ...)) of ``accounts``:
    on the author's pinned list or not, and None (never said) for an account that hides that list."""
    out: dict[str, bool | None] = {}
    for p in accounts:
        me, hidden = data.user(p).username, data.list_private(p, "pinned_videos")
        pinned = {data.video_id(p, j) for j in data.pinned_videos(p)}
        out.update({video_id: None if hidden else video_id in pinned
                    for video_id, (author, _) in held.items() if author == me})
    return out


def held_pinned(engine: Engine) -> dict[str, tuple[str, bool | None]]:
    """Every held TikTok video (deleted ones too): its author and ``pinned``."""
    po = schema.posts.c
    with engine.connect() as conn:
        return {r[0]: (r[1], r[2]) for r in conn.execute(select(po.post_id, po.profile_id, po.pinned)
                                                         .where(po.network == NETWORK))}
