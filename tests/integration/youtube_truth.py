"""The YouTube sandbox's ground truth as warehouse rows, built from the dataset, not from any payload."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Engine, select

from socialsync.sandbox.youtube_dataset import INLINE_REPLIES, YouTubeDataset
from socialsync.storage import schema
from tests.integration.truth import assert_tables_match

NETWORK = "youtube"
CALLS = ("channels", "playlistItems", "videos", "commentThreads", "comments")


def calls(counters: Mapping[str, int]) -> dict[str, int]:
    """The sandbox's YouTube calls so far, by method (each one unit)."""
    return {c: counters[f"youtube:{c}"] for c in CALLS}


def calls_since(counters: Mapping[str, int], before: dict[str, int]) -> dict[str, int]:
    now = calls(counters)
    return {c: now[c] - before[c] for c in CALLS}


def _best(thumbnails: tuple[Any, ...]) -> str | None:
    by_name = {t.name: t.url for t in thumbnails}
    return by_name.get("high") or by_name.get("medium") or by_name.get("default")


def expected(data: YouTubeDataset, channels: Iterable[int] | None = None) -> dict[str, dict[Any, tuple]]:
    """The rows a sync of ``channels`` (default: every channel of the dataset) must hold."""
    out: dict[str, dict[Any, tuple]] = {"profiles": {}, "posts": {}, "media": {}, "comments": {}}
    for p in range(data.dataset.spec.profiles) if channels is None else channels:
        channel = data.channel(p)
        out["profiles"][channel.id] = (channel.handle, channel.title, channel.description, channel.subscriber_count,
                                       None, channel.video_count, _best(channel.thumbnails), None)
        for j in data.videos_newest_first(p):
            video = data.video(p, j)
            link = f"https://www.youtube.com/{'shorts/' if video.is_short else 'watch?v='}{video.id}"
            caption = "\n\n".join(part for part in (video.title, video.description) if part) or None
            out["posts"][video.id] = (channel.id, "video", "short" if video.is_short else "video", caption, link,
                                      video.published_at, video.like_count, video.comment_count, video.view_count)
            out["media"][video.id] = (video.id, 0, "video", link, _best(video.thumbnails))
            if video.comments_disabled:
                continue
            for k in data.threads_newest_first(p, j):
                thread = data.thread(p, j, k)
                out["comments"][thread.id] = (video.id, None, thread.author.channel_id, thread.author.display_name,
                                              thread.text, thread.published_at, thread.like_count,
                                              thread.total_reply_count)
                for reply in data.replies_of(p, j, k):
                    out["comments"][reply.id] = (video.id, thread.id, reply.author.channel_id,
                                                 reply.author.display_name, reply.text, reply.published_at,
                                                 reply.like_count, None)
    return out


def actual(engine: Engine) -> dict[str, dict[Any, tuple]]:
    """The warehouse's live YouTube rows (deleted ones, and media of deleted videos, left out)."""
    p, po, m, c = schema.profiles.c, schema.posts.c, schema.media.c, schema.comments.c
    gone = select(po.post_id).where(po.network == NETWORK, po.deleted.is_(True))
    with engine.connect() as conn:
        return {
            "profiles": {r[0]: tuple(r[1:]) for r in conn.execute(select(
                p.profile_id, p.username, p.display_name, p.bio, p.followers_count, p.following_count,
                p.posts_count, p.avatar_url, p.website).where(p.network == NETWORK))},
            "posts": {r[0]: tuple(r[1:]) for r in conn.execute(select(
                po.post_id, po.profile_id, po.kind, po.product_type, po.caption, po.permalink, po.created_at,
                po.like_count, po.comments_count, po.view_count).where(po.network == NETWORK,
                                                                       po.deleted.is_(False)))},
            "media": {r[0]: tuple(r[1:]) for r in conn.execute(select(
                m.media_id, m.post_id, m.position, m.media_type, m.url, m.thumbnail_url).where(
                m.network == NETWORK, m.post_id.not_in(gone)))},
            "comments": {r[0]: tuple(r[1:]) for r in conn.execute(select(
                c.comment_id, c.post_id, c.parent_comment_id, c.author_id, c.author_username, c.content,
                c.created_at, c.like_count, c.reply_count).where(c.network == NETWORK, c.deleted.is_(False)))},
        }


def assert_youtube_matches(engine: Engine, data: YouTubeDataset, incremental: bool = False,
                           channels: Iterable[int] | None = None) -> None:
    """Field by field; ``incremental``: rows deleted upstream may still be live (only a complete pass
    proves a deletion), every other row must be exact."""

    def gone_upstream(table: str, key: Any) -> bool:  # no longer an id the dataset knows: deleted since
        return incremental and table != "profiles" and all(
            parse(str(key)) is None for parse in (data.parse_video_id, data.parse_thread_id, data.parse_reply_id))

    assert_tables_match(expected(data, channels), actual(engine), gone_upstream)


def minimum_calls(data: YouTubeDataset, channels: list[int], page_size: int = 50) -> dict[str, int]:
    """The fewest calls (one unit each) a first full sync of ``channels`` can make: channels 50 to a
    call, every uploads page with one videos call, every comment thread page of a video with
    comments, every reply page of a thread whose replies are not all inline."""
    calls = {"channels": math.ceil(len(channels) / 50), "playlistItems": 0, "videos": 0, "commentThreads": 0,
             "comments": 0}
    for p in channels:
        videos = list(data.videos_newest_first(p))
        pages = max(1, math.ceil(len(videos) / page_size))
        calls["playlistItems"] += pages
        calls["videos"] += math.ceil(len(videos) / page_size)
        for j in videos:
            for call, count in comment_calls(data, p, j).items():
                calls[call] += count
    return calls


def comment_calls(data: YouTubeDataset, p: int, j: int) -> dict[str, int]:
    """The calls of one video's full comment walk: every thread page (100 threads a page), and every
    reply page (100 a page) of a thread whose replies are not all inline; none without comments."""
    video = data.video(p, j)
    if video.comments_disabled or not video.comment_count:
        return {"commentThreads": 0, "comments": 0}
    threads = list(data.threads_newest_first(p, j))
    return {"commentThreads": max(1, math.ceil(len(threads) / 100)),
            "comments": sum(math.ceil(n / 100) for k in threads if (n := data.reply_count(p, j, k)) > INLINE_REPLIES)}


def held_threads(data: YouTubeDataset, channels: list[int]) -> dict[tuple[int, int], dict[int, int]]:
    """Per video with comments, its threads and their reply counts: what a sync at this epoch holds."""
    return {(p, j): {k: data.reply_count(p, j, k) for k in data.threads_newest_first(p, j)}
            for p in channels for j in data.videos_newest_first(p) if data.video(p, j).comment_count}


def incremental_comment_calls(data: YouTubeDataset, p: int, j: int, held: dict[int, int], grown: int) -> dict[str, int]:
    """The calls of a walk that stops at known threads: thread pages until one holds a known thread
    and the new threads and replies found account for ``grown``; reply pages only of threads that
    are new or whose reply count moved (and are not all inline)."""
    threads = list(data.threads_newest_first(p, j))
    calls = {"commentThreads": 0, "comments": 0}
    found = 0
    for start in range(0, max(1, len(threads)), 100):
        calls["commentThreads"] += 1
        page = threads[start:start + 100]
        for k in page:
            total = data.reply_count(p, j, k)
            found += max(0, total - held[k]) if k in held else 1 + total
            if total > INLINE_REPLIES and held.get(k) != total:
                calls["comments"] += math.ceil(total / 100)
        if any(k in held for k in page) and found >= grown:
            break
    return calls
