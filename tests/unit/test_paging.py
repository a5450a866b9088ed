from __future__ import annotations

import pytest

from socialsync.extract.paging import GraphCursorPaginator, PassGuard
from socialsync.networks.base import FetchedPage, PageAnomaly


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


def test_an_empty_last_page_ends_paging() -> None:
    paginator = GraphCursorPaginator("c1")
    paginator.update_state({"data": []})
    assert not paginator.has_next_page


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"data": None}, "`data` is NoneType"),
        ({"paging": {"next": "x"}}, "`data` is missing"),
        ({"data": {"id": "1"}}, "`data` is dict"),
        (_page([], after="c9", has_next=True), "an empty page with a `next` link"),
        ({"data": [{"id": "1"}], "paging": {"next": "https://graph.example/x"}}, "without an `after` cursor"),
        (_page(["1"], after="c0", has_next=True), "the cursor did not move"),
    ],
)
def test_an_answer_that_cannot_be_a_page_is_an_anomaly_not_the_end(body: dict, reason: str) -> None:
    with pytest.raises(PageAnomaly, match=reason):
        GraphCursorPaginator("c0").update_state(body)


def _fetched(ids: list[str], cursor: str | None, next_cursor: str | None) -> FetchedPage:
    return FetchedPage("posts", "1", {}, 200, {}, cursor, next_cursor, len(ids))


def test_the_guard_lets_an_honest_pass_through() -> None:
    pages = [_fetched(["1", "2"], None, "a"), _fetched(["3"], "a", "b"), _fetched(["4"], "b", None)]
    assert list(PassGuard("posts", None, expected=4).watch(pages)) == pages


def test_the_guard_stops_a_cursor_cycle() -> None:
    pages = [_fetched(["1"], None, "a"), _fetched(["2"], "a", "b"), _fetched(["3"], "b", "a")]
    with pytest.raises(PageAnomaly, match="cursor repeated after 3"):
        list(PassGuard("posts", None, expected=None).watch(pages))


def test_the_guard_stops_more_pages_than_the_count_explains() -> None:
    endless = (_fetched(["1"], f"c{i}", f"c{i + 1}") for i in range(10_000))  # fresh cursors, the same item
    guard = PassGuard("comments", "c0", expected=3, extra=5)
    with pytest.raises(PageAnomaly, match="more than its count can explain"):
        list(guard.watch(endless))
    assert guard.pages == guard.max_pages + 1 == 10


def test_the_guard_stops_more_items_than_the_count_explains() -> None:
    endless = (_fetched([f"{i}a", f"{i}b"], f"c{i}", f"c{i + 1}") for i in range(10_000))
    guard = PassGuard("posts", None, expected=20, extra=10)
    with pytest.raises(PageAnomaly, match="items, more than its count can explain"):
        list(guard.watch(endless))
    assert guard.items == guard.max_items + 2 == 66  # (20 * 1.1 + 10) twice over, for repeats
