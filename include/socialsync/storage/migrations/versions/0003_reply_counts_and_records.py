"""TikTok and incremental comment walks: a thread's stored reply count, records counted per quota period.

Revision ID: 0003_reply_counts_and_records
Revises: 0002_quota_and_replies
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_reply_counts_and_records"
down_revision = "0002_quota_and_replies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("comments") as batch_op:
        batch_op.add_column(sa.Column("reply_count", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("api_usage") as batch_op:
        batch_op.add_column(sa.Column("records", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("api_usage") as batch_op:
        batch_op.drop_column("records")
    with op.batch_alter_table("comments") as batch_op:
        batch_op.drop_column("reply_count")
