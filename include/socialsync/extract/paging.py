"""Paginators: small stateful objects that read where the next page starts from each answer."""

from __future__ import annotations

from typing import Any, Protocol


class Paginator(Protocol):
    cursor: str | None

    def update_state(self, body: dict[str, Any]) -> None: ...

    def update_request(self, params: dict[str, Any]) -> None: ...

    @property
    def has_next_page(self) -> bool: ...


class GraphCursorPaginator:
    """Graph API cursors: ``paging.cursors.after`` leads on; the last page has no ``paging.next``.

    A page may hold fewer items than asked for while more remain, so only ``next`` ends paging.
    """

    param = "after"

    def __init__(self, cursor: str | None = None) -> None:
        self.cursor = cursor
        self._has_next = True

    def update_state(self, body: dict[str, Any]) -> None:
        paging = body.get("paging") or {}
        after = (paging.get("cursors") or {}).get("after")
        self._has_next = bool(paging.get("next")) and bool(body.get("data")) and bool(after)
        self.cursor = after if self._has_next else None

    def update_request(self, params: dict[str, Any]) -> None:
        if self.cursor:
            params[self.param] = self.cursor

    @property
    def has_next_page(self) -> bool:
        return self._has_next
