from __future__ import annotations

from socialsync.extract.paging import GraphCursorPaginator


def _page(ids: list[str], after: str | None, has_next: bool) -> dict:
    body: dict = {"data": [{"id": i} for i in ids]}
    if after is not None:
        body["paging"] = {"cursors": {"before": "b", "after": after}}
        if has_next:
            body["paging"]["next"] = f"https://graph.example/v21.0/1/media?after={after}"
    return body


def test_first_request_has_no_cursor_and_a_resumed_one_has() -> None:
    params: dict = {}
    GraphCursorPaginator().update_request(params)
    assert params == {}
    GraphCursorPaginator("QVFI").update_request(params)
    assert params == {"after": "QVFI"}


def test_follows_after_while_next_is_present_even_on_short_pages() -> None:
    paginator = GraphCursorPaginator()
    paginator.update_state(_page(["3"], after="c1", has_next=True))  # 1 item though 25 were asked
    assert paginator.has_next_page and paginator.cursor == "c1"
    params: dict = {"limit": 25}
    paginator.update_request(params)
    assert params == {"limit": 25, "after": "c1"}


def test_last_page_has_no_next() -> None:
    paginator = GraphCursorPaginator("c1")
    paginator.update_state(_page(["2", "1"], after="c2", has_next=False))
    assert not paginator.has_next_page
    assert paginator.cursor is None


def test_empty_page_ends_paging_even_with_a_next_link() -> None:
    paginator = GraphCursorPaginator()
    paginator.update_state({"data": []})
    assert not paginator.has_next_page
    paginator = GraphCursorPaginator()
    paginator.update_state(_page([], after="c9", has_next=True))
    assert not paginator.has_next_page
