"""Instagram as deployments read it: the connection that reads a tracked entity, its profile id and username.

Revision ID: 0004_tracked_accounts
Revises: 0003_reply_counts_and_records
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_tracked_accounts"
down_revision = "0003_reply_counts_and_records"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tracked_entities") as batch_op:
        batch_op.add_column(sa.Column("conn_id", sa.String(length=250), nullable=True))
        batch_op.add_column(sa.Column("profile_id", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("username", sa.String(length=256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tracked_entities") as batch_op:
        batch_op.drop_column("username")
        batch_op.drop_column("profile_id")
        batch_op.drop_column("conn_id")
