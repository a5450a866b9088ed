"""The sandbox's Instagram ground truth as warehouse rows, built from the dataset, not from any payload."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Engine, and_, or_, select

from socialsync.sandbox.analysis import analyze_text, recognize_media
from socialsync.sandbox.dataset import Dataset
from socialsync.sandbox.instagram_dataset import InstagramDataset
from socialsync.storage import schema

KIND = {"IMAGE": "image", "VIDEO": "video", "CAROUSEL_ALBUM": "carousel"}


def expected(dataset: Dataset, enrich: bool = True, story_epochs: Iterable[int] | None = None,
             profiles: Iterable[int] | None = None) -> dict[str, dict[Any, tuple]]:
    """The rows a sync of the sandbox's Instagram accounts as tracked (``InstagramDataset.tracked_id``)
    must hold: an owned account's comments with their replies and the stories it listed on each of
    ``story_epochs`` (default: today's), a public account's profile and media only, its hidden like
    counts NULL."""
    ig = InstagramDataset(dataset)
    epochs = sorted(set(story_epochs if story_epochs is not None else [dataset.epoch]))
    out: dict[str, dict[Any, tuple]] = {"profiles": {}, "posts": {}, "media": {}, "comments": {},
                                        "enrichments": {}}
    for p in (range(dataset.spec.profiles) if profiles is None else profiles):
        prof = dataset.profile(p)
        public = ig.public_only(p)
        out["profiles"][prof.id] = (ig.username(p), prof.name, prof.biography, prof.followers_count,
                                    prof.follows_count, prof.media_count, prof.profile_picture_url, prof.website)
        if enrich:
            out["enrichments"][("profile", prof.id, "ml")] = analyze_text(f"profile:{prof.id}", prof.biography)
        for j in dataset.posts_newest_first(p):
            post = dataset.post(p, j)
            likes = None if public and ig.likes_hidden(p, j) else post.like_count
            out["posts"][post.id] = (prof.id, KIND[post.media_type], post.media_product_type.lower(),
                                     post.caption, post.permalink, post.timestamp, likes, ig.comments_count(p, j))
            if enrich and post.caption is not None:
                out["enrichments"][("post", post.id, "ml")] = analyze_text(f"post:{post.id}", post.caption)
            for m in post.media:
                # Business discovery gives no thumbnails.
                thumbnail = None if public else m.thumbnail_url
                out["media"][m.id] = (post.id, m.position, m.media_type.lower(), m.media_url, thumbnail)
                if enrich:
                    out["enrichments"][("media", m.id, "vision")] = recognize_media(
                        f"media:{m.id}", m.media_type.lower(), m.media_url)
            if public:
                continue  # business discovery gives no comments
            for k in dataset.comments_newest_first(p, j):
                c = dataset.comment(p, j, k)
                out["comments"][c.id] = (post.id, None, c.author_id, c.username, c.text, c.timestamp, c.like_count)
                for r in ig.replies_oldest_first(p, j, k):
                    reply = ig.reply(p, j, k, r)
                    out["comments"][reply.id] = (post.id, c.id, reply.author_id, reply.username, reply.text,
                                                 reply.timestamp, reply.like_count)
        if public:
            continue
        for epoch in epochs:
            for story in ig.stories_of_epoch(p, epoch):
                out["posts"][story.id] = (prof.id, KIND[story.media_type], "story", story.caption, story.permalink,
                                          story.timestamp, None, None)
                out["media"][story.id] = (story.id, 0, story.media_type.lower(), story.media_url,
                                          story.thumbnail_url)
                if enrich and story.caption is not None:
                    out["enrichments"][("post", story.id, "ml")] = analyze_text(f"post:{story.id}", story.caption)
                if enrich:
                    out["enrichments"][("media", story.id, "vision")] = recognize_media(
                        f"media:{story.id}", story.media_type.lower(), story.media_url)
    return out


def actual(engine: Engine, network: str = "instagram") -> dict[str, dict[Any, tuple]]:
    """The warehouse's live rows (those marked deleted, media of deleted posts and the enrichments of
    both, left out)."""
    p, po, m, c, e = (schema.profiles.c, schema.posts.c, schema.media.c, schema.comments.c,
                      schema.enrichments.c)
    gone = select(po.post_id).where(po.network == network, po.deleted.is_(True))
    # An enrichment stays with its item when the item is deleted upstream: left out like the item.
    dead_media = select(m.media_id).where(m.network == network, m.post_id.in_(gone))
    dead_comments = select(c.comment_id).where(c.network == network, c.deleted.is_(True))
    with engine.connect() as conn:
        return {
            "profiles": {r[0]: tuple(r[1:]) for r in conn.execute(select(
                p.profile_id, p.username, p.display_name, p.bio, p.followers_count, p.following_count,
                p.posts_count, p.avatar_url, p.website).where(p.network == network))},
            "posts": {r[0]: tuple(r[1:]) for r in conn.execute(select(
                po.post_id, po.profile_id, po.kind, po.product_type, po.caption, po.permalink, po.created_at,
                po.like_count, po.comments_count).where(po.network == network, po.deleted.is_(False)))},
            "media": {r[0]: tuple(r[1:]) for r in conn.execute(select(
                m.media_id, m.post_id, m.position, m.media_type, m.url, m.thumbnail_url).where(
                m.network == network, m.post_id.not_in(gone)))},
            "comments": {r[0]: tuple(r[1:]) for r in conn.execute(select(
                c.comment_id, c.post_id, c.parent_comment_id, c.author_id, c.author_username, c.content,
                c.created_at, c.like_count).where(c.network == network, c.deleted.is_(False)))},
            "enrichments": {(r[0], r[1], r[2]): r[3] for r in conn.execute(select(
                e.item_kind, e.item_id, e.service, e.result).where(e.network == network, ~or_(
                    and_(e.item_kind == "post", e.item_id.in_(gone)),
                    and_(e.item_kind == "media", e.item_id.in_(dead_media)),
                    and_(e.item_kind == "comment", e.item_id.in_(dead_comments)))))},
        }


def assert_warehouse_matches(engine: Engine, dataset: Dataset, enrich: bool = True,
                             story_epochs: Iterable[int] | None = None, profiles: Iterable[int] | None = None) -> None:
    """The warehouse holds exactly the truth of ``profiles`` (default: every account, as tracked)."""
    assert_tables_match(expected(dataset, enrich, story_epochs, profiles), actual(engine))


def assert_tables_match(want: dict[str, dict[Any, tuple]], got: dict[str, dict[Any, tuple]],
                        tolerated: Callable[[str, Any], bool] = lambda table, key: False) -> None:
    """Every table's rows equal, key by key and field by field (an extra row ``tolerated`` allows aside)."""
    for table in want:
        missing = want[table].keys() - got[table].keys()
        extra = {key for key in got[table].keys() - want[table].keys() if not tolerated(table, key)}
        wrong = [k for k in want[table].keys() & got[table].keys() if want[table][k] != got[table][k]]
        assert not (missing or extra or wrong), (
            f"{table}: {len(missing)} missing (e.g. {sorted(missing)[:3]}), {len(extra)} extra "
            f"(e.g. {sorted(extra)[:3]}), {len(wrong)} differ"
            + (f", e.g. {wrong[0]}: want {want[table][wrong[0]]} got {got[table][wrong[0]]}" if wrong else ""))


def deleted_ids(engine: Engine, network: str = "instagram") -> dict[str, set[str]]:
    with engine.connect() as conn:
        return {
            "posts": set(conn.scalars(select(schema.posts.c.post_id).where(
                schema.posts.c.network == network, schema.posts.c.deleted.is_(True)))),
            "comments": set(conn.scalars(select(schema.comments.c.comment_id).where(
                schema.comments.c.network == network, schema.comments.c.deleted.is_(True)))),
        }
