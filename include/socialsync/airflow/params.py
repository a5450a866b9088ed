"""The run parameters: a form in the UI, a JSON schema that REST ``conf`` must satisfy."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

ISO_DATETIME = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$"
SCOPES = ("profile", "posts", "comments", "likes", "all")

# What each scope asks extract to do; a network serves the part of it it supports.
SCOPE_PARTS: dict[str, frozenset[str]] = {
    "profile": frozenset({"profile"}),
    "posts": frozenset({"profile", "posts"}),
    "comments": frozenset({"posts", "comments"}),
    "likes": frozenset({"likes"}),
    "all": frozenset({"profile", "posts", "comments", "likes"}),
}


def sync_params() -> dict[str, Param]:
    nullable_id: dict[str, Any] = {"type": ["null", "string"], "minLength": 1, "maxLength": 128}
    return {
        "entity_ids": Param(
            None, type=["null", "array"], minItems=1, maxItems=100_000, uniqueItems=True,
            items={"type": "string", "pattern": r"^[A-Za-z0-9_.-]{1,128}$"},
            title="Entity ids",
            description="Profiles to sync now (network ids). Empty: every tracked profile that is due.",
        ),
        "scope": Param("all", type="string", enum=list(SCOPES), title="Scope",
                       description="What to sync: profile, posts (with the profile), comments, likes or all."),
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
    }


def rebuild_params() -> dict[str, Param]:
    return {
        "batch_size": Param(None, type=["null", "integer"], minimum=1, maximum=10_000, title="Batch size",
                            description="Entities per mapped task; empty: chosen from the number of entities."),
    }
