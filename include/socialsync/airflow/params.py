"""The run parameters: a form in the UI, a JSON schema that REST ``conf`` must satisfy."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from socialsync.extract.request import CONN_ID, ISO_DATETIME, MAX_CONF_IDS, POST_ID
from socialsync.networks.base import NetworkSpec

SCOPES = ("profile", "posts", "comments", "subscriptions", "likes", "all")

# What each scope asks extract to do; a network serves the part of it it supports. Stories (posts
# that expire) and the pinned list (which posts are pinned) are asked with the posts.
SCOPE_PARTS: dict[str, frozenset[str]] = {
    "profile": frozenset({"profile"}),
    "posts": frozenset({"profile", "posts", "stories", "pinned"}),
    "comments": frozenset({"posts", "comments"}),
    "subscriptions": frozenset({"profile", "subscriptions"}),
    "likes": frozenset({"likes"}),
    "all": frozenset({"profile", "posts", "comments", "stories", "pinned", "subscriptions", "likes"}),
}


def sync_params(entity_id_pattern: str = NetworkSpec.entity_id_pattern) -> dict[str, Param]:
    """The schema REST refuses with HTTP 400; ``plan`` checks the same rules (and unknown keys) again."""
    nullable_id: dict[str, Any] = {"type": ["null", "string"], "pattern": POST_ID}
    return {
        "entity_ids": Param(
            None, type=["null", "array"], minItems=1, maxItems=MAX_CONF_IDS,
            items={"anyOf": [
                {"type": "string", "pattern": entity_id_pattern},
                {"type": "object", "required": ["id", "conn_id"], "additionalProperties": False,
                 "properties": {"id": {"type": "string", "pattern": entity_id_pattern},
                                "conn_id": {"type": "string", "pattern": CONN_ID}}},
            ]},
            title="Entity ids",
            description=f"Profiles to sync now (network ids, at most {MAX_CONF_IDS}; longer lists go into "
                        "tracked_entities), each an id or {\"id\": ..., \"conn_id\": ...} to read it with a "
                        "connection (token) of its own. Empty: every tracked profile that is due.",
        ),
        "scope": Param("all", type="string", enum=list(SCOPES), title="Scope",
                       description="What to sync: profile, posts (with the profile), comments, subscriptions "
                                   "(followers and following, with the profile), likes or all."),
        "since_id": Param(None, **nullable_id, title="Since id",
                          description="Stop paging posts when this post id is reached (only newer ones)."),
        "until_id": Param(None, **nullable_id, title="Until id",
                          description="Recorded on the job's cursor; reserved for networks that page by id."),
        "last_synced_at": Param(None, type=["null", "string"], pattern=ISO_DATETIME, title="Last synced at",
                                description="ISO 8601 time; posts older than this end paging."),
        "full_refresh": Param(False, type="boolean", title="Full refresh",
                              description="Ignore every bound and fetch all posts and comments."),
        "lookback_days": Param(3, type="integer", minimum=0, maximum=365, title="Lookback (days)",
                               description="Recent posts whose counts and comments are refreshed every run; "
                                           "paging stops at the first known post older than this."),
        "enrich": Param(True, type="boolean", title="Enrich",
                        description="Submit ML and image-recognition jobs for items that lack them."),
        "batch_size": Param(None, type=["null", "integer"], minimum=1, maximum=10_000, title="Batch size",
                            description="Profiles per mapped task; empty: chosen from the number of profiles."),
        "max_failed_percent": Param(10, type="number", minimum=0, maximum=100, title="Max failed (%)",
                                    description="The run fails when more of its jobs failed than this "
                                                "percentage (0: any failed job fails it)."),
    }


def rebuild_params() -> dict[str, Param]:
    return {
        "batch_size": Param(None, type=["null", "integer"], minimum=1, maximum=10_000, title="Batch size",
                            description="Entities per mapped task; empty: chosen from the number of entities."),
    }
