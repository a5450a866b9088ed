"""Who follows whom: the follows table (YouTube subscriptions; TikTok followers and following next).

Revision ID: 0005_follows
Revises: 0004_tracked_accounts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import socialsync.storage.types

revision = "0005_follows"
down_revision = "0004_tracked_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "follows",
        sa.Column("network", sa.String(length=32), nullable=False),
        sa.Column("follower_id", sa.String(length=128), nullable=False),
        sa.Column("followee_id", sa.String(length=128), nullable=False),
        sa.Column("follower_name", sa.String(length=512), nullable=True),
        sa.Column("followee_name", sa.String(length=512), nullable=True),
        sa.Column("first_seen_at", socialsync.storage.types.UtcDateTime(), nullable=False),
        sa.Column("removed_at", socialsync.storage.types.UtcDateTime(), nullable=True),
        sa.Column("synced_at", socialsync.storage.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("network", "follower_id", "followee_id"),
    )
    op.create_index("ix_follows_followee", "follows", ["network", "followee_id"])


def downgrade() -> None:
    op.drop_index("ix_follows_followee", table_name="follows")
    op.drop_table("follows")
