"""The warehouse tables: raw pages, normalized entities, enrichments and the sync audit trail."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from socialsync.storage.types import JsonDocument, UtcDateTime

# BIGINT ids on PostgreSQL, INTEGER (the rowid alias, autoincrementing) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

STATUSES = ("pending", "running", "succeeded", "failed", "partial", "skipped")

# --- audit trail: seed 003, field for field -----------------------------------------------------
sync_jobs = Table(
    "sync_jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("network", String(32), nullable=False),
    Column("entity_id", String(128), nullable=False),
    Column("cursor", JsonDocument, nullable=False, default=dict),
    Column("status", String(16), nullable=False, default="pending"),
    Column("error_type", String(128)),
    Column("error_message", Text),
    # The job this one continues. No foreign key here, in sync_batches or in entity_leases: plan writes
    # all three in the transaction that creates the jobs, a million rows each on a large day, and a
    # foreign key checks each row with a query of its own (half of plan's time at a million profiles).
    Column("previous_job_id", Id),
    # The Airflow run that opened the job: kept when the run is cleared and planned again.
    Column("run_id", String(250)),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("units", Float),  # what its pages cost of the API's quota, set when the job is closed
    Index("ix_sync_jobs_entity", "network", "entity_id", "id"),
    Index("ix_sync_jobs_run", "network", "run_id"),
)

sync_tasks = Table(
    "sync_tasks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_id", Id, ForeignKey("sync_jobs.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("external_id", String(128), nullable=False),
    Column("status", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("last_synced_at", UtcDateTime),
    # What a finished sub-sync saw (a post's comment count): normalize turns it into the item's
    # watermark in the transaction that loads the rows, never before.
    Column("seen", JsonDocument),
    Index("ux_sync_tasks_job_kind_external", "job_id", "kind", "external_id", unique=True),
)

# Which jobs an Airflow run opened, cut into the batches its mapped tasks work on.
sync_batches = Table(
    "sync_batches",
    metadata,
    Column("network", String(32), primary_key=True),
    Column("run_id", String(250), primary_key=True),
    Column("job_id", Id, primary_key=True),  # written by plan with its job (see sync_jobs.previous_job_id)
    Column("batch_no", Integer, nullable=False),
    Index("ix_sync_batches_batch", "network", "run_id", "batch_no"),
)

tracked_entities = Table(
    "tracked_entities",
    metadata,
    Column("network", String(32), primary_key=True),
    Column("entity_id", String(128), primary_key=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("added_at", UtcDateTime, nullable=False),
    Column("last_synced_at", UtcDateTime),
    # Consecutive runs in which the API said the entity does not exist; past a bound it is deactivated.
    Column("misses", Integer, nullable=False, default=0),
    Column("deactivated_reason", Text),
    # What its last succeeded job cost of the API's quota: plan's estimate for the next one.
    Column("est_units", Float),
    # The Airflow connection that reads it (its own token); NULL: the network's connection.
    Column("conn_id", String(250)),
    # What the API calls it, once an answer named it: the id its rows are keyed by (an Instagram
    # account tracked as @username) and its username.
    Column("profile_id", String(128)),
    Column("username", String(256)),
)

# Quota units spent per network and quota period (a day from midnight in the API's zone, or an hour).
api_usage = Table(
    "api_usage",
    metadata,
    Column("network", String(32), primary_key=True),
    Column("period_start", UtcDateTime, primary_key=True),
    Column("units", Float, nullable=False),
    Column("records", Float, nullable=False, default=0.0),  # items the answers held (TikTok counts them too)
    Column("updated_at", UtcDateTime, nullable=False),
)

# A rebuild and a sync of one network never run over each other: both plans lock this row first.
network_locks = Table(
    "network_locks",
    metadata,
    Column("network", String(32), primary_key=True),
    Column("rebuild_run_id", String(250)),
    Column("acquired_at", UtcDateTime),
)

# --- raw: every page as received -----------------------------------------------------------------
raw_pages = Table(
    "raw_pages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("network", String(32), nullable=False),
    Column("job_id", Id, ForeignKey("sync_jobs.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("parent_id", String(128), nullable=False),
    Column("request", JsonDocument, nullable=False),
    Column("cursor", String(512)),
    Column("next_cursor", String(512)),
    Column("status_code", Integer, nullable=False),
    Column("item_count", Integer, nullable=False),
    Column("units", Float, nullable=False, default=1.0),  # what the calls behind it cost of the quota
    Column("payload", JsonDocument, nullable=False),
    Column("fetched_at", UtcDateTime, nullable=False),
    Index("ix_raw_pages_job", "job_id", "id"),
    Index("ix_raw_pages_parent", "network", "kind", "parent_id"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("network", String(32), nullable=False),
    Column("raw_page_id", Id, ForeignKey("raw_pages.id"), nullable=False),
    Column("record_kind", String(32), nullable=False),
    Column("record_id", String(128)),
    Column("reason", Text, nullable=False),
    Column("record", JsonDocument, nullable=False),
    Column("quarantined_at", UtcDateTime, nullable=False),
    Index("ux_quarantine_page_record", "raw_page_id", "record_kind", "record_id", unique=True),
)

# What the last complete sub-sync of an item saw (e.g. a post's comment count when its comments
# were last fetched in full): decides whether the next run needs to fetch it again.
sync_state = Table(
    "sync_state",
    metadata,
    Column("network", String(32), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("external_id", String(128), primary_key=True),
    Column("state", JsonDocument, nullable=False),
    Column("synced_at", UtcDateTime, nullable=False),
)

# One run at a time works an entity: the job holding its lease.
entity_leases = Table(
    "entity_leases",
    metadata,
    Column("network", String(32), primary_key=True),
    Column("entity_id", String(128), primary_key=True),
    Column("job_id", Id, nullable=False),  # written by plan with its job (see sync_jobs.previous_job_id)
    Column("run_id", String(250), nullable=False),
    Column("acquired_at", UtcDateTime, nullable=False),
)

# --- normalized: one format across networks, natural keys include the network ---------------------
# Rows hold only what the payloads say and ``synced_at``, the as-of time of the job that wrote them
# (never run-variant lineage such as raw page ids): re-running a run or rebuilding from raw
# reproduces them exactly. A row is only ever replaced by one at least as new, so replaying jobs
# in any order (a cleared old run, a rebuild) leaves the newest values, never stale ones.
profiles = Table(
    "profiles",
    metadata,
    Column("network", String(32), primary_key=True),
    Column("profile_id", String(128), primary_key=True),
    Column("username", String(256), nullable=False),
    Column("display_name", String(512)),
    Column("bio", Text),
    Column("followers_count", BigInteger),
    Column("following_count", BigInteger),
    Column("posts_count", BigInteger),
    Column("avatar_url", Text),
    Column("website", Text),
    Column("synced_at", UtcDateTime, nullable=False),
)

posts = Table(
    "posts",
    metadata,
    Column("network", String(32), primary_key=True),
    Column("post_id", String(128), primary_key=True),
    Column("profile_id", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("product_type", String(32)),
    Column("caption", Text),
    Column("permalink", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("like_count", BigInteger),
    Column("comments_count", BigInteger),
    Column("view_count", BigInteger),
    # On the profile's pinned list: NULL until a walk of that list said (a posts page does not).
    Column("pinned", Boolean),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("synced_at", UtcDateTime, nullable=False),
    Index("ix_posts_profile", "network", "profile_id", "created_at"),
    info={"kept_when_null": ("pinned",)},
)

media = Table(
    "media",
    metadata,
    Column("network", String(32), primary_key=True),
    Column("media_id", String(128), primary_key=True),
    Column("post_id", String(128), nullable=False),
    Column("position", Integer, nullable=False),
    Column("media_type", String(16), nullable=False),
    Column("url", Text),
    Column("thumbnail_url", Text),
    Column("synced_at", UtcDateTime, nullable=False),
    Index("ix_media_post", "network", "post_id", "position"),
)

comments = Table(
    "comments",
    metadata,
    Column("network", String(32), primary_key=True),
    Column("comment_id", String(128), primary_key=True),
    Column("post_id", String(128), nullable=False),
    # The comment this one replies to (a YouTube reply's thread); NULL for a top-level comment.
    Column("parent_comment_id", String(128)),
    Column("author_id", String(128)),
    Column("author_username", String(256)),
    Column("content", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("like_count", BigInteger),
    # A thread's replies when it was listed: an incremental walk fetches only replies whose count moved.
    Column("reply_count", BigInteger),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("synced_at", UtcDateTime, nullable=False),
    Index("ix_comments_post", "network", "post_id", "created_at"),
)

# Who follows whom: a tracked profile's followers are rows with its id as ``followee_id``, the accounts it
# follows (a YouTube channel's subscriptions) rows with its id as ``follower_id``. ``first_seen_at`` is the
# as-of time of the first job that listed it (kept by every later upsert), ``synced_at`` the last one's;
# ``removed_at`` is set by a complete walk of a list that no longer holds it.
follows = Table(
    "follows",
    metadata,
    Column("network", String(32), primary_key=True),
    Column("follower_id", String(128), primary_key=True),
    Column("followee_id", String(128), primary_key=True),
    Column("follower_name", String(512)),
    Column("followee_name", String(512)),
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("removed_at", UtcDateTime),
    Column("synced_at", UtcDateTime, nullable=False),
    Index("ix_follows_followee", "network", "followee_id"),
    info={"earliest": ("first_seen_at",), "kept_when_null": ("follower_name", "followee_name")},
)

# What a tracked profile liked (seed 003: post_id, author_id = the profile that liked), with the liked
# post's own author and caption as listed; first seen, last seen, and removed by a complete walk.
likes = Table(
    "likes",
    metadata,
    Column("network", String(32), primary_key=True),
    Column("post_id", String(128), primary_key=True),
    Column("author_id", String(128), primary_key=True),
    Column("post_author_id", String(128)),
    Column("caption", Text),
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("removed_at", UtcDateTime),
    Column("synced_at", UtcDateTime, nullable=False),
    Index("ix_likes_author", "network", "author_id"),
    info={"earliest": ("first_seen_at",), "kept_when_null": ("post_author_id", "caption")},
)

# One snapshot of a count per entity per day: re-running a day overwrites it.
metrics = Table(
    "metrics",
    metadata,
    Column("network", String(32), primary_key=True),
    Column("entity_kind", String(32), primary_key=True),
    Column("entity_id", String(128), primary_key=True),
    Column("metric", String(64), primary_key=True),
    Column("captured_on", Date, primary_key=True),
    Column("value", Float, nullable=False),
    Column("synced_at", UtcDateTime, nullable=False),
)

enrichments = Table(
    "enrichments",
    metadata,
    Column("network", String(32), primary_key=True),
    Column("item_kind", String(32), primary_key=True),
    Column("item_id", String(128), primary_key=True),
    Column("service", String(32), primary_key=True),
    Column("result", JsonDocument, nullable=False),
    Column("external_job_id", String(128), nullable=False),
    Column("enriched_at", UtcDateTime, nullable=False),
)

NORMALIZED_TABLES = (profiles, posts, media, comments, follows, likes, metrics, enrichments)
