"""Paginators read where the next page starts from each answer; the guard proves paging progresses."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from socialsync.networks.base import FetchedPage, PageAnomaly


class Paginator(Protocol):
    cursor: str | None

    def update_state(self, body: dict[str, Any]) -> None: ...

    def update_request(self, params: dict[str, Any]) -> None: ...

    @property
    def has_next_page(self) -> bool: ...


class _CursorInQuery:
    """Paging where the next page is asked for with the last answer's cursor in one query parameter."""

    param = ""
    cursor: str | None
    _has_next: bool

    def update_request(self, params: dict[str, Any]) -> None:
        if self.cursor:
            params[self.param] = self.cursor

    @property
    def has_next_page(self) -> bool:
        return self._has_next


class GraphCursorPaginator(_CursorInQuery):
    """Graph API cursors: ``paging.cursors.after`` leads on; the last page has no ``paging.next``.

    A page may hold fewer items than asked for while more remain, so only ``next`` ends paging.
    An answer that cannot be a page (``data`` missing or not a list, no items but a ``next``, a
    ``next`` without a cursor, a cursor that did not move) raises ``PageAnomaly``: taking it for
    the last page would end a pass early and let it prove deletions it never saw.
    """

    param = "after"

    def __init__(self, cursor: str | None = None) -> None:
        self.cursor = cursor
        self._has_next = True

    def update_state(self, body: dict[str, Any]) -> None:
        data = body.get("data")
        if not isinstance(data, list):
            raise PageAnomaly(f"not a page: `data` is {'missing' if 'data' not in body else type(data).__name__}")
        paging = body.get("paging")
        paging = paging if isinstance(paging, dict) else {}
        cursors = paging.get("cursors")
        after = cursors.get("after") if isinstance(cursors, dict) else None
        if not paging.get("next"):
            self._has_next, self.cursor = False, None
            return
        if not data:
            raise PageAnomaly("an empty page with a `next` link")
        if not isinstance(after, str) or not after:
            raise PageAnomaly("a `next` link without an `after` cursor")
        if after == self.cursor:
            raise PageAnomaly("the cursor did not move")
        self._has_next, self.cursor = True, after



class DiscoveryMediaPaginator:
    """Business discovery's nested media paging (``business_discovery.media``): ``paging.cursors.after``
    leads on, asked for inside the field expression (``media.after(CURSOR)``); the last page carries
    no ``after`` and there is no ``next`` link.

    The proofs are the owned edge's: ``data`` must be a list, a page with an ``after`` holds items and
    the cursor moves. An answer without ``media`` is the end only for an account whose ``media_count``
    says it has none.
    """

    def __init__(self, cursor: str | None = None) -> None:
        self.cursor = cursor
        self.items = 0
        self._has_next = True

    @property
    def has_next_page(self) -> bool:
        return self._has_next

    def update_state(self, body: dict[str, Any]) -> None:
        account = body.get("business_discovery")
        if not isinstance(account, dict):
            raise PageAnomaly("not a business discovery answer: `business_discovery` is "
                              f"{'missing' if 'business_discovery' not in body else type(account).__name__}")
        media = account.get("media")
        if media is None and self.cursor is None and account.get("media_count") == 0:
            self._has_next, self.cursor, self.items = False, None, 0
            return
        if not isinstance(media, dict):
            raise PageAnomaly(f"`media` is {'missing' if media is None else type(media).__name__}")
        data = media.get("data")
        if not isinstance(data, list):
            shown = "missing" if "data" not in media else type(data).__name__
            raise PageAnomaly(f"not a page: `media.data` is {shown}")
        self.items = len(data)
        paging = media.get("paging")
        cursors = paging.get("cursors") if isinstance(paging, dict) else None
        after = cursors.get("after") if isinstance(cursors, dict) else None
        if after is None:
            self._has_next, self.cursor = False, None
            return
        if not isinstance(after, str) or not after:
            raise PageAnomaly(f"an `after` cursor that is {after!r}")
        if not data:
            raise PageAnomaly("an empty page with an `after` cursor")
        if after == self.cursor:
            raise PageAnomaly("the cursor did not move")
        self._has_next, self.cursor = True, after


class PageTokenPaginator(_CursorInQuery):
    """``pageToken`` / ``nextPageToken`` paging (Google's APIs): the last page has no ``nextPageToken``.

    The same proofs as Graph's: ``items`` must be a list, a page with a next token holds items, and
    the token moves.
    """

    param = "pageToken"

    def __init__(self, cursor: str | None = None, items: str = "items") -> None:
        self.cursor = cursor
        self.items = items
        self._has_next = True

    def update_state(self, body: dict[str, Any]) -> None:
        data = body.get(self.items)
        if not isinstance(data, list):
            raise PageAnomaly(f"not a page: `{self.items}` is "
                              f"{'missing' if self.items not in body else type(data).__name__}")
        token = body.get("nextPageToken")
        if not token:
            self._has_next, self.cursor = False, None
            return
        if not data:
            raise PageAnomaly("an empty page with a `nextPageToken`")
        if not isinstance(token, str):
            raise PageAnomaly(f"a `nextPageToken` that is a {type(token).__name__}")
        if token == self.cursor:
            raise PageAnomaly("the page token did not move")
        self._has_next, self.cursor = True, token



class PassGuard:
    """Watches one pass over an entity's pages and stops it when paging cannot be trusted.

    A cursor seen before in the pass (a cycle), or more pages or items than the entity's own count
    can explain, is an anomaly: an upstream that keeps answering would otherwise be paged for ever.
    ``expected`` is the count the API reported (a profile's posts, a post's comments); ``None``
    leaves only the cycle check and the hard page cap. Items are counted, not remembered (memory
    stays flat however long the pass), with room for the items an API repeats across pages.
    """

    HARD_PAGE_CAP = 1_000_000
    REPEATS = 2  # an item may be listed again on the next page while the list moves under us

    def __init__(self, what: str, start: str | None, expected: int | None, slack: float = 0.1,
                 extra: int = 50) -> None:
        self.what = what
        self.pages = 0
        self.items = 0
        self._seen_cursors: set[str] = {start} if start else set()
        allowance = None if expected is None else int(max(expected, 0) * (1 + slack)) + extra
        self.max_items = None if allowance is None else allowance * self.REPEATS
        # Every page but the last holds at least one item, so pages are bounded by items too.
        self.max_pages = self.HARD_PAGE_CAP if allowance is None else allowance + 1

    def check(self, page: FetchedPage) -> None:
        self.pages += 1
        self.items += page.item_count
        if page.next_cursor is not None:
            if page.next_cursor in self._seen_cursors:
                raise PageAnomaly(f"{self.what}: cursor repeated after {self.pages} page(s)")
            self._seen_cursors.add(page.next_cursor)
        if self.pages > self.max_pages:
            raise PageAnomaly(f"{self.what}: {self.pages} pages, more than its count can explain "
                              f"(at most {self.max_pages})")
        if self.max_items is not None and self.items > self.max_items:
            raise PageAnomaly(f"{self.what}: {self.items} items, more than its count can explain "
                              f"(at most {self.max_items})")

    def watch(self, pages: Iterable[FetchedPage]) -> Iterator[FetchedPage]:
        """Yield ``pages`` while they can be trusted; raise ``PageAnomaly`` before the first that cannot."""
        for page in pages:
            self.check(page)
            yield page
