"""Instagram (Graph API): the plug-in spec the registry and the DAG factory read."""

from __future__ import annotations

from datetime import timedelta

from socialsync.networks.base import ApiCredentials, NetworkClient, NetworkSpec, ProfileList, Quota
from socialsync.networks.instagram import mapping
from socialsync.networks.instagram.client import InstagramClient, is_public_account

DISCOVERY_GIVES_NO = "business discovery gives no {part}: {entity_id} is a public account the token does not manage"


def _connect(credentials: ApiCredentials) -> NetworkClient:
    return InstagramClient(credentials)


def _unserved(entity_id: str) -> dict[str, str]:
    """A public account (``@username``) is read through business discovery: its media and counts only."""
    if not is_public_account(entity_id):
        return {}
    return {part: DISCOVERY_GIVES_NO.format(part=part, entity_id=entity_id) for part in ("comments", "stories")}


NETWORK = NetworkSpec(
    name="instagram",
    api_conn_id="instagram_api",
    connect=_connect,
    post_stubs=mapping.post_stubs,
    normalize=mapping.normalize,
    scopes=frozenset({"profile", "posts", "comments", "stories"}),
    # An account the token manages by its numeric Graph id; a public professional account by @username.
    entity_id_pattern=r"^([0-9]{1,32}|@[A-Za-z0-9._]{1,30})$",
    # Graph's limits are per app and hour and grow with the accounts it serves: 20,000 calls an hour
    # by default, a deployment's own with the connection's ``quota_units``. Within the hour its usage
    # headers pace the calls. A first sync costs about 1.3 calls a post (media and comment pages).
    quota=Quota(units=20_000, per=timedelta(hours=1), first_sync_units=50.0, units_per_post=1.3),
    lists=(ProfileList(kind="stories", part="stories"),),
    unserved=_unserved,
    kept_product_types=frozenset({mapping.STORY}),
    not_given={part: "instagram's Graph API gives counts only (followers_count, follows_count and each post's "
                     f"like_count, kept in metrics): no list of {what}"
               for part, what in (("likes", "likers"), ("subscriptions", "followers or followed accounts"))},
    description="Instagram Graph API: owned accounts (profiles, media, comments with replies, stories) and "
                "public professional accounts through business discovery (profiles, media).",
)
