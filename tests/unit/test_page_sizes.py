"""Every client asks for the largest page its endpoint serves unless the connection says otherwise, and
never for more than the API's cap (the sandbox refuses past the same caps)."""

from __future__ import annotations

import pytest

from socialsync.networks.base import ApiCredentials
from socialsync.networks.instagram.client import InstagramClient
from socialsync.networks.tiktok.client import TikTokClient
from socialsync.networks.youtube.client import YouTubeClient
from socialsync.sandbox import graph_api, tiktok_api, youtube_api


def _credentials(**options: object) -> ApiCredentials:
    return ApiCredentials("http://127.0.0.1:9/api", "not-a-secret", dict(options))


def test_instagram_asks_the_largest_pages_graph_serves() -> None:
    client = InstagramClient(_credentials())
    assert (client.page_size, client.comments_page_size) == (graph_api.MEDIA_LIMIT_MAX, graph_api.COMMENTS_LIMIT_MAX)
    assert f"replies.limit({graph_api.REPLIES_LIMIT_MAX}){{" in client.comment_fields
    small = InstagramClient(_credentials(page_size=10, comments_page_size=20, inline_replies=5))
    assert (small.page_size, small.comments_page_size) == (10, 20) and "replies.limit(5){" in small.comment_fields
    capped = InstagramClient(_credentials(page_size=500, comments_page_size=500, inline_replies=500))
    assert (capped.page_size, capped.comments_page_size) == (100, 50) and "replies.limit(50){" in capped.comment_fields


@pytest.mark.parametrize(("client_class", "largest"), [
    (YouTubeClient, (youtube_api.PLAYLIST_ITEMS_MAX, youtube_api.THREADS_MAX)),
    (TikTokClient, (tiktok_api.PAGE_MAX, tiktok_api.PAGE_MAX))])
def test_youtube_and_tiktok_ask_their_largest_pages(client_class: type, largest: tuple[int, int]) -> None:
    client = client_class(_credentials())
    assert (client.page_size, client.comments_page_size) == largest
    capped = client_class(_credentials(page_size=1000, comments_page_size=1000))
    assert (capped.page_size, capped.comments_page_size) == largest
