"""socialsync's connection types, as data: one per network API and one per enrichment job service.

Airflow reads them from the provider info (``socialsync.provider``): each type's ``conn-fields`` (a
form field for every extra the code reads, with its description and default) and its
``ui-field-behaviour`` (the standard fields relabelled by what they hold, the unused ones hidden,
placeholders), without importing the hooks (``socialsync.airflow.hooks``). This module imports
nothing of Airflow's, so that reading the provider info stays cheap in every Airflow process.

A plain ``http`` connection with the same extras keeps working: the sync reads a connection's host,
login, password and extras, whatever its type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

FieldKind = Literal["string", "integer", "number"]


@dataclass(frozen=True)
class ExtraField:
    """One extra of a connection: its name in the extras, how the form shows it, what applies unset."""

    name: str
    label: str
    description: str
    kind: FieldKind = "integer"
    default: int | float | str | None = None
    secret: bool = False  # a password field, masked in the UI and in logs


    def conn_field(self) -> dict[str, Any]:
        """The provider info's ``conn-fields`` entry (Airflow 3.2+): a JSON schema for the form."""
        schema: dict[str, Any] = {"type": [self.kind, "null"]}
        if self.kind != "string":
            schema["minimum"] = 0
        if self.secret:
            schema["format"] = "password"
        return {"label": self.label, "description": self._described(), "schema": schema}

    def _described(self) -> str:
        return self.description + (f" Default: {self.default}." if self.default is not None else "")


# What every network client reads (socialsync.extract.calls, .budget; the quota in airflow.tasks).
CALL_FIELDS = (
    ExtraField("quota_units", "Quota units per period",
               "This deployment's own API quota per period (a day, or an hour for Graph); unset: the API's "
               "documented default.", "number"),
    ExtraField("max_in_flight", "Requests in flight", "Requests a task keeps in flight at once.", default=32),
    ExtraField("max_requests_per_second", "Requests per second",
               "A ceiling on the request rate of each task; unset: none but the API's own answers.", "number"),
    ExtraField("slow_down_at_percent", "Slow down at (% of usage)",
               "Usage (from the API's usage headers) past which requests are spaced out.", default=80),
    ExtraField("max_pause_s", "Longest pause (s)", "The longest a task waits out a throttle before it "
               "gives the rest of its profiles back to the next run.", "number", 30.0),
    ExtraField("timeout", "Request timeout (s)", "Connect and read timeout of one request.", "number", 30.0),
    ExtraField("deadline_s", "Request deadline (s)", "How long one request may take, its retries included. "
               "Default: 4 times the request timeout.", "number"),
    ExtraField("max_attempts", "Attempts per request", "Tries of one request before its job ends partial.",
               default=6),
    ExtraField("backoff_s", "First backoff (s)", "Wait before the first retry; it grows exponentially.",
               "number", 0.5),
    ExtraField("max_wait_s", "Longest backoff (s)", "The longest wait between two tries.", "number", 60.0),
    ExtraField("max_list_items", "Longest profile list",
               "Followers, following or subscriptions: a longer list is not walked (the job says so).",
               default=5_000),
    ExtraField("full_list_days", "Full list walk every (days)",
               "How often a newest-first list is walked to its end, the only walk that proves removals.",
               default=7),
)


@dataclass(frozen=True)
class ConnectionType:
    conn_type: str
    hook_name: str
    default_conn_id: str
    fields: tuple[ExtraField, ...]
    relabeling: dict[str, str]
    placeholders: dict[str, str]
    hidden: tuple[str, ...] = ("schema", "port")

    def provider_info(self, hook_class_name: str) -> dict[str, Any]:
        return {
            "connection-type": self.conn_type,
            "hook-class-name": hook_class_name,
            "hook-name": self.hook_name,
            "ui-field-behaviour": {"hidden-fields": list(self.hidden), "relabeling": dict(self.relabeling),
                                   "placeholders": dict(self.placeholders)},
            "conn-fields": {f.name: f.conn_field() for f in self.fields},
        }


INSTAGRAM = ConnectionType(
    "socialsync_instagram", "socialsync: Instagram Graph API", "instagram_api",
    (ExtraField("ig_user_id", "IG user id of the token",
                "The Instagram professional account the token belongs to: business discovery (accounts the "
                "team does not own) is asked through it.", "string"),
     ExtraField("page_size", "Media page size", "Media a page asks for (Graph serves at most 100).", default=100),
     ExtraField("comments_page_size", "Comments page size", "Comments a page asks for (at most 50).", default=50),
     ExtraField("inline_replies", "Replies inline", "Replies asked inline with each comment (at most 50).",
                default=50),
     *CALL_FIELDS),
    relabeling={"host": "Graph API base URL", "password": "Access token"},
    placeholders={"host": "https://graph.facebook.com/v21.0", "password": "a long-lived user or system-user token"},
    hidden=("schema", "port", "login"),
)
YOUTUBE = ConnectionType(
    "socialsync_youtube", "socialsync: YouTube Data API", "youtube_api",
    (ExtraField("page_size", "Uploads page size", "Videos a playlistItems page asks for (at most 50).", default=50),
     ExtraField("comments_page_size", "Comments page size", "Threads a commentThreads page asks for (at most 100).",
                default=100),
     *CALL_FIELDS),
    relabeling={"host": "API base URL", "password": "API key"},
    placeholders={"host": "https://www.googleapis.com/youtube/v3", "password": "an API key of the Google project"},
    hidden=("schema", "port", "login"),
)
TIKTOK = ConnectionType(
    "socialsync_tiktok", "socialsync: TikTok Research API", "tiktok_api",
    (ExtraField("quota_records", "Quota records per day",
                "The records (videos, comments, list entries) the project's grant allows a day; unset: TikTok's "
                "documented 100,000.", "number"),
     ExtraField("horizon_days", "Horizon (days)", "How far back a first sync or a full refresh looks for videos.",
                default=730),
     ExtraField("page_size", "Videos page size", "Videos a query page asks for (at most 100).", default=100),
     ExtraField("comments_page_size", "Comments page size", "Comments a page asks for (at most 100).", default=100),
     *CALL_FIELDS),
    relabeling={"host": "API base URL", "login": "Client key", "password": "Client secret"},
    placeholders={"host": "https://open.tiktokapis.com/v2", "login": "the app's client key"},
)
JOB_FIELDS = (
    ExtraField("X-Api-Key", "API key", "Sent as the X-Api-Key header (every extra is a request header).",
               "string", secret=True),
)


def _job_service(name: str, title: str) -> ConnectionType:
    return ConnectionType(f"socialsync_{name}", f"socialsync: {title} job service", f"{name}_api", JOB_FIELDS,
                          relabeling={"host": "Service base URL"},
                          placeholders={"host": f"https://{name}.example.com/v1"},
                          hidden=("schema", "port", "login", "password"))


ML = _job_service("ml", "ML")
VISION = _job_service("vision", "image recognition")
