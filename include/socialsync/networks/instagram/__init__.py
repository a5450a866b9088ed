"""Instagram (Graph API): the plug-in spec the registry and the DAG factory read."""

from __future__ import annotations

from datetime import timedelta

from socialsync.networks.base import ApiCredentials, NetworkClient, NetworkSpec, Quota
from socialsync.networks.instagram import mapping
from socialsync.networks.instagram.client import InstagramClient


def _connect(credentials: ApiCredentials) -> NetworkClient:
    return InstagramClient(credentials)


NETWORK = NetworkSpec(
    name="instagram",
    api_conn_id="instagram_api",
    connect=_connect,
    post_stubs=mapping.post_stubs,
    normalize=mapping.normalize,
    scopes=frozenset({"profile", "posts", "comments"}),
    entity_id_pattern=r"^[0-9]{1,32}$",  # Graph ids of Instagram professional accounts are numeric
    # Graph's limits are per app and hour and grow with the accounts it serves: 20,000 calls an hour
    # by default, a deployment's own with the connection's ``quota_units``. Within the hour its usage
    # headers pace the calls. A first sync costs about 1.3 calls a post (media and comment pages).
    quota=Quota(units=20_000, per=timedelta(hours=1), first_sync_units=50.0, units_per_post=1.3),
    description="Instagram Graph API: profiles, media (feed, reels, carousels) and their comments.",
)
