"""Whether a post is on its profile's pinned list: posts.pinned (TikTok's pinned videos).

Revision ID: 0007_pinned_posts
Revises: 0006_likes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_pinned_posts"
down_revision = "0006_likes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for every row held: no walk of a pinned list has said yet.
    op.add_column("posts", sa.Column("pinned", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("posts") as batch:  # SQLite drops a column by rebuilding the table
        batch.drop_column("pinned")
