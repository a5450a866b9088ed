"""The fewest Graph requests a sync of the sandbox's Instagram accounts can make: exact counts for tests."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from socialsync.sandbox.dataset import Dataset
from socialsync.sandbox.graph_api import discovery_pages, reply_pages, walk_pages
from socialsync.sandbox.instagram_dataset import InstagramDataset


def graph_requests(counters: Mapping[str, int]) -> Counter[str]:
    return Counter({k: v for k, v in counters.items() if k.startswith("graph:") and v})


def comment_counts(dataset: Dataset) -> dict[str, int]:
    """Graph's ``comments_count`` (replies included) of every visible post of an owned account."""
    ig = InstagramDataset(dataset)
    return {dataset.post_id(p, j): ig.comments_count(p, j)
            for p in ig.managed_profiles() for j in dataset.posts_newest_first(p)}


def known_posts(dataset: Dataset) -> set[str]:
    return {dataset.post_id(p, j) for p in range(dataset.spec.profiles) for j in dataset.posts_newest_first(p)}


def needed(dataset: Dataset, page: int, comment_page: int, known: Iterable[str] = (),
           counts: Mapping[str, int] | None = None, profiles: Iterable[int] | None = None) -> Counter[str]:
    """Requests a run must make after the warehouse saw ``known`` posts and, of owned accounts' posts, the
    comment ``counts`` (nothing: a first sync).

    An owned account: its node, media pages until one shows a known post, its stories (one page), and
    of every listed post that is new with comments or whose count moved, every comment page and the
    ``/replies`` pages of each comment whose replies do not all come inline. A public account: business
    discovery pages until one shows a known post, the first one being the profile's own answer.
    """
    ig = InstagramDataset(dataset)
    held = set(known)
    synced = dict(counts or {})
    need: Counter[str] = Counter()
    for p in range(dataset.spec.profiles) if profiles is None else profiles:
        public = ig.public_only(p)
        listed: list[int] = []
        pages = (discovery_pages(ig, p, page) if public
                 else walk_pages(lambda b, p=p: dataset.posts_newest_first(p, b), dataset.profile_id(p), page))
        for taken in pages:
            need["graph:discovery" if public else "graph:media"] += 1
            listed += taken
            if any(dataset.post_id(p, j) in held for j in taken):
                break
        if public:
            continue
        need["graph:node"] += 1
        need["graph:stories"] += 1
        for j in dict.fromkeys(listed):
            post_id, count = dataset.post_id(p, j), ig.comments_count(p, j)
            if synced.get(post_id, 0) == count:
                continue
            need["graph:comments"] += len(walk_pages(lambda b, p=p, j=j: dataset.comments_newest_first(p, j, b),
                                                     post_id, comment_page))
            need["graph:replies"] += sum(reply_pages(ig, p, j, k) for k in dataset.comments_newest_first(p, j))
    return +need
