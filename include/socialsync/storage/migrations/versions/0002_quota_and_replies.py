"""YouTube: quota units per page, job, profile and day; comment replies.

Revision ID: 0002_quota_and_replies
Revises: 0001_baseline
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import socialsync.storage.types

revision = "0002_quota_and_replies"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_usage",
        sa.Column("network", sa.String(length=32), nullable=False),
        sa.Column("period_start", socialsync.storage.types.UtcDateTime(), nullable=False),
        sa.Column("units", sa.Float(), nullable=False),
        sa.Column("updated_at", socialsync.storage.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("network", "period_start"),
    )
    with op.batch_alter_table("comments") as batch_op:
        batch_op.add_column(sa.Column("parent_comment_id", sa.String(length=128), nullable=True))
    with op.batch_alter_table("raw_pages") as batch_op:
        # Every page stored before quotas were counted was one call.
        batch_op.add_column(sa.Column("units", sa.Float(), nullable=False, server_default="1"))
    with op.batch_alter_table("sync_jobs") as batch_op:
        batch_op.add_column(sa.Column("units", sa.Float(), nullable=True))
    with op.batch_alter_table("tracked_entities") as batch_op:
        batch_op.add_column(sa.Column("est_units", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tracked_entities") as batch_op:
        batch_op.drop_column("est_units")
    with op.batch_alter_table("sync_jobs") as batch_op:
        batch_op.drop_column("units")
    with op.batch_alter_table("raw_pages") as batch_op:
        batch_op.drop_column("units")
    with op.batch_alter_table("comments") as batch_op:
        batch_op.drop_column("parent_comment_id")
    op.drop_table("api_usage")
