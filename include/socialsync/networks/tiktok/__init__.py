"""TikTok (Research API): the plug-in spec the registry and the DAG factory read."""

from __future__ import annotations

from socialsync.networks.base import ApiCredentials, Covers, NetworkClient, NetworkSpec, ProfileList, Quota
from socialsync.networks.tiktok import mapping
from socialsync.networks.tiktok.client import USERS_PER_QUERY, TikTokClient


def _connect(credentials: ApiCredentials) -> NetworkClient:
    return TikTokClient(credentials)


NETWORK = NetworkSpec(
    name="tiktok",
    api_conn_id="tiktok_api",
    connect=_connect,
    post_stubs=mapping.post_stubs,
    normalize=mapping.normalize,
    scopes=frozenset({"profile", "posts", "pinned", "comments", "subscriptions", "likes"}),
    entity_id_pattern=r"^[A-Za-z0-9_.]{2,24}$",  # the Research API knows an account by its username
    posts_per_query=USERS_PER_QUERY,
    recheck_recent_comments=False,  # a video's comments are walked when it is new or its count moved
    # About 1,000 research requests a day per project, reset at midnight UTC (records are capped too).
    # Its followers and following lists are walked within the connection's max_list_items (about 25
    # requests a first sync at the median account's lists, 100 entries a page).
    # A daily pinned_videos call a profile comes on top.
    quota=Quota(units=1_000, records=100_000, first_sync_units=20.0, units_per_post=0.8, list_units=26.0),
    # Who follows the account, and whom it follows: newest follow first, so a daily walk stops at the
    # first known follow; a complete walk, proving unfollows, every full_list_days and under full_refresh.
    lists=(ProfileList("followers", part="subscriptions", covers=Covers("follows", "followee_id"),
                       bounded_by="followers_count", newest_first=True),
           ProfileList("following", part="subscriptions", covers=Covers("follows", "follower_id"),
                       bounded_by="following_count", newest_first=True),
           # The videos the account liked, newest like first; no count bounds it: a walk stops at max_list_items.
           ProfileList("liked_videos", part="likes", covers=Covers("likes", "author_id"), newest_first=True),
           # The videos pinned to the top of the profile, in one unpaged answer: every walk is complete, and
           # turns ``posts.pinned`` off for the profile's videos it does not list.
           ProfileList("pinned_videos", part="pinned", covers=Covers("posts", "profile_id", flag="pinned"))),
    description="TikTok Research API: public accounts, their videos, comments and replies (top 1,000 a video), "
                "their followers, the accounts they follow, the videos they liked and the ones they pinned.",
)
