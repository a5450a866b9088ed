"""YouTube (Data API v3): the plug-in spec the registry and the DAG factory read."""

from __future__ import annotations

from socialsync.networks.base import ApiCredentials, Covers, NetworkClient, NetworkSpec, ProfileList, Quota
from socialsync.networks.youtube import mapping
from socialsync.networks.youtube.client import MAX_IDS, QUOTA_DAY, YouTubeClient


def _connect(credentials: ApiCredentials) -> NetworkClient:
    return YouTubeClient(credentials)


NETWORK = NetworkSpec(
    name="youtube",
    api_conn_id="youtube_api",
    connect=_connect,
    post_stubs=mapping.post_stubs,
    normalize=mapping.normalize,
    scopes=frozenset({"profile", "posts", "comments", "subscriptions"}),
    entity_id_pattern=r"^UC[A-Za-z0-9_-]{22}$",  # channel ids: UC and 22 characters
    profiles_per_call=MAX_IDS,
    comments_stop_at_known=True,  # commentThreads has no time filter: newest first, stop at what is held
    # 10,000 units a day for a project, reset at midnight Pacific; every list call costs one.
    # A first sync costs about 1.25 units a video (its uploads and videos pages, its comment threads).
    quota=Quota(units=10_000, timezone=QUOTA_DAY.key, first_sync_units=100.0, units_per_post=1.25),
    # The channels a channel subscribes to: in no time order, so every walk is complete and proves
    # removals (such lists are short; YouTube lists no subscribers of a channel, no likers of a video).
    lists=(ProfileList(kind="subscriptions", part="subscriptions", covers=Covers("follows", "follower_id")),),
    description="YouTube Data API v3: channels, uploads (videos and shorts), comment threads and replies, "
                "the channels each subscribes to.",
)
