"""What a tracked profile liked: the likes table (TikTok's liked videos).

Revision ID: 0006_likes
Revises: 0005_follows
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import socialsync.storage.types

revision = "0006_likes"
down_revision = "0005_follows"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "likes",
        sa.Column("network", sa.String(length=32), nullable=False),
        sa.Column("post_id", sa.String(length=128), nullable=False),
        sa.Column("author_id", sa.String(length=128), nullable=False),
        sa.Column("post_author_id", sa.String(length=128), nullable=True),
        sa.Column("caption", sa.Text(), nullable=True),
        sa.Column("first_seen_at", socialsync.storage.types.UtcDateTime(), nullable=False),
        sa.Column("removed_at", socialsync.storage.types.UtcDateTime(), nullable=True),
        sa.Column("synced_at", socialsync.storage.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("network", "post_id", "author_id"),
    )
    op.create_index("ix_likes_author", "likes", ["network", "author_id"])


def downgrade() -> None:
    op.drop_index("ix_likes_author", table_name="likes")
    op.drop_table("likes")
