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
        pages = _walked(ig, p, page, held)
        need["graph:discovery" if public else "graph:media"] += len(pages)
        listed = [j for taken in pages for j in taken]
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


def _walked(ig: InstagramDataset, p: int, page: int, held: set[str]) -> list[list[int]]:
    """The media pages of account ``p`` a run walks: up to the first that shows a known post."""
    dataset = ig.dataset
    pages = (discovery_pages(ig, p, page) if ig.public_only(p)
             else walk_pages(lambda b: dataset.posts_newest_first(p, b), dataset.profile_id(p), page))
    for n, taken in enumerate(pages):
        if any(dataset.post_id(p, j) in held for j in taken):
            return pages[: n + 1]
    return pages


def moved_posts(dataset: Dataset, page: int, known: Iterable[str], counts: Mapping[str, int]) -> set[str]:
    """The owned accounts' posts a run lists whose ``comments_count`` moved since ``counts``: their
    comments and replies are walked again, in full."""
    ig = InstagramDataset(dataset)
    held = set(known)
    return {dataset.post_id(p, j) for p in ig.managed_profiles() for taken in _walked(ig, p, page, held)
            for j in taken if counts.get(dataset.post_id(p, j), 0) != ig.comments_count(p, j)}


def owner_of(path: str, dataset: Dataset) -> int | None:
    """The account a Graph path reads: a profile's id, or a media, comment, reply or story id (each
    encodes its profile's index after its kind prefix)."""
    node = path.split("/")[2] if path.count("/") >= 2 else ""
    profile = dataset.parse_profile_id(node)
    if profile is not None:
        return profile
    return int(node[4:11]) if node[:4] in ("1790", "1800", "1801", "1792") else None
