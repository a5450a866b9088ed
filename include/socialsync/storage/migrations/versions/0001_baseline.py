"""The warehouse as the first release made it (issues 1 to 7: Instagram), before any migration existed.

A warehouse created by ``create_all`` at that release is stamped at this revision (``migrate``).

Revision ID: 0001_baseline
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import socialsync.storage.types

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('comments',
    sa.Column('network', sa.String(length=32), nullable=False),
    sa.Column('comment_id', sa.String(length=128), nullable=False),
    sa.Column('post_id', sa.String(length=128), nullable=False),
    sa.Column('author_id', sa.String(length=128), nullable=True),
    sa.Column('author_username', sa.String(length=256), nullable=True),
    sa.Column('content', sa.Text(), nullable=True),
    sa.Column('created_at', socialsync.storage.types.UtcDateTime(), nullable=False),
    sa.Column('like_count', sa.BigInteger(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('synced_at', socialsync.storage.types.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('network', 'comment_id')
    )
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.create_index('ix_comments_post', ['network', 'post_id', 'created_at'], unique=False)

    op.create_table('enrichments',
    sa.Column('network', sa.String(length=32), nullable=False),
    sa.Column('item_kind', sa.String(length=32), nullable=False),
    sa.Column('item_id', sa.String(length=128), nullable=False),
    sa.Column('service', sa.String(length=32), nullable=False),
    sa.Column('result', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('external_job_id', sa.String(length=128), nullable=False),
    sa.Column('enriched_at', socialsync.storage.types.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('network', 'item_kind', 'item_id', 'service')
    )
    op.create_table('entity_leases',
    sa.Column('network', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.String(length=128), nullable=False),
    sa.Column('job_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('run_id', sa.String(length=250), nullable=False),
    sa.Column('acquired_at', socialsync.storage.types.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('network', 'entity_id')
    )
    op.create_table('media',
    sa.Column('network', sa.String(length=32), nullable=False),
    sa.Column('media_id', sa.String(length=128), nullable=False),
    sa.Column('post_id', sa.String(length=128), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('media_type', sa.String(length=16), nullable=False),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('thumbnail_url', sa.Text(), nullable=True),
    sa.Column('synced_at', socialsync.storage.types.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('network', 'media_id')
    )
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.create_index('ix_media_post', ['network', 'post_id', 'position'], unique=False)

    op.create_table('metrics',
    sa.Column('network', sa.String(length=32), nullable=False),
    sa.Column('entity_kind', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.String(length=128), nullable=False),
    sa.Column('metric', sa.String(length=64), nullable=False),
    sa.Column('captured_on', sa.Date(), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('synced_at', socialsync.storage.types.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('network', 'entity_kind', 'entity_id', 'metric', 'captured_on')
    )
    op.create_table('network_locks',
    sa.Column('network', sa.String(length=32), nullable=False),
    sa.Column('rebuild_run_id', sa.String(length=250), nullable=True),
    sa.Column('acquired_at', socialsync.storage.types.UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('network')
    )
    op.create_table('posts',
    sa.Column('network', sa.String(length=32), nullable=False),
    sa.Column('post_id', sa.String(length=128), nullable=False),
    sa.Column('profile_id', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('product_type', sa.String(length=32), nullable=True),
    sa.Column('caption', sa.Text(), nullable=True),
    sa.Column('permalink', sa.Text(), nullable=True),
    sa.Column('created_at', socialsync.storage.types.UtcDateTime(), nullable=False),
    sa.Column('like_count', sa.BigInteger(), nullable=True),
    sa.Column('comments_count', sa.BigInteger(), nullable=True),
    sa.Column('view_count', sa.BigInteger(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('synced_at', socialsync.storage.types.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('network', 'post_id')
    )
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.create_index('ix_posts_profile', ['network', 'profile_id', 'created_at'], unique=False)

    op.create_table('profiles',
    sa.Column('network', sa.String(length=32), nullable=False),
    sa.Column('profile_id', sa.String(length=128), nullable=False),
    sa.Column('username', sa.String(length=256), nullable=False),
    sa.Column('display_name', sa.String(length=512), nullable=True),
    sa.Column('bio', sa.Text(), nullable=True),
    sa.Column('followers_count', sa.BigInteger(), nullable=True),
    sa.Column('following_count', sa.BigInteger(), nullable=True),
    sa.Column('posts_count', sa.BigInteger(), nullable=True),
    sa.Column('avatar_url', sa.Text(), nullable=True),
    sa.Column('website', sa.Text(), nullable=True),
    sa.Column('synced_at', socialsync.storage.types.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('network', 'profile_id')
    )
    op.create_table('sync_batches',
    sa.Column('network', sa.String(length=32), nullable=False),
    sa.Column('run_id', sa.String(length=250), nullable=False),
    sa.Column('job_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('batch_no', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('network', 'run_id', 'job_id')
    )
    with op.batch_alter_table('sync_batches', schema=None) as batch_op:
        batch_op.create_index('ix_sync_batches_batch', ['network', 'run_id', 'batch_no'], unique=False)

    op.create_table('sync_jobs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('network', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.String(length=128), nullable=False),
    sa.Column('cursor', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error_type', sa.String(length=128), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('previous_job_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('run_id', sa.String(length=250), nullable=True),
    sa.Column('started_at', socialsync.storage.types.UtcDateTime(), nullable=True),
    sa.Column('finished_at', socialsync.storage.types.UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sync_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_sync_jobs_entity', ['network', 'entity_id', 'id'], unique=False)
        batch_op.create_index('ix_sync_jobs_run', ['network', 'run_id'], unique=False)

    op.create_table('sync_state',
    sa.Column('network', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('external_id', sa.String(length=128), nullable=False),
    sa.Column('state', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('synced_at', socialsync.storage.types.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('network', 'kind', 'external_id')
    )
    op.create_table('tracked_entities',
    sa.Column('network', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.String(length=128), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('added_at', socialsync.storage.types.UtcDateTime(), nullable=False),
    sa.Column('last_synced_at', socialsync.storage.types.UtcDateTime(), nullable=True),
    sa.Column('misses', sa.Integer(), nullable=False),
    sa.Column('deactivated_reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('network', 'entity_id')
    )
    op.create_table('raw_pages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('network', sa.String(length=32), nullable=False),
    sa.Column('job_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('parent_id', sa.String(length=128), nullable=False),
    sa.Column('request', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('cursor', sa.String(length=512), nullable=True),
    sa.Column('next_cursor', sa.String(length=512), nullable=True),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('item_count', sa.Integer(), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('fetched_at', socialsync.storage.types.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['sync_jobs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('raw_pages', schema=None) as batch_op:
        batch_op.create_index('ix_raw_pages_job', ['job_id', 'id'], unique=False)
        batch_op.create_index('ix_raw_pages_parent', ['network', 'kind', 'parent_id'], unique=False)

    op.create_table('sync_tasks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('external_id', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_synced_at', socialsync.storage.types.UtcDateTime(), nullable=True),
    sa.Column('seen', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['sync_jobs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sync_tasks', schema=None) as batch_op:
        batch_op.create_index('ux_sync_tasks_job_kind_external', ['job_id', 'kind', 'external_id'], unique=True)

    op.create_table('quarantine',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('network', sa.String(length=32), nullable=False),
    sa.Column('raw_page_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('record_kind', sa.String(length=32), nullable=False),
    sa.Column('record_id', sa.String(length=128), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('record', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('quarantined_at', socialsync.storage.types.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['raw_page_id'], ['raw_pages.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index('ux_quarantine_page_record', ['raw_page_id', 'record_kind', 'record_id'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index('ux_quarantine_page_record')

    op.drop_table('quarantine')
    with op.batch_alter_table('sync_tasks', schema=None) as batch_op:
        batch_op.drop_index('ux_sync_tasks_job_kind_external')

    op.drop_table('sync_tasks')
    with op.batch_alter_table('raw_pages', schema=None) as batch_op:
        batch_op.drop_index('ix_raw_pages_parent')
        batch_op.drop_index('ix_raw_pages_job')

    op.drop_table('raw_pages')
    op.drop_table('tracked_entities')
    op.drop_table('sync_state')
    with op.batch_alter_table('sync_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_jobs_run')
        batch_op.drop_index('ix_sync_jobs_entity')

    op.drop_table('sync_jobs')
    with op.batch_alter_table('sync_batches', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_batches_batch')

    op.drop_table('sync_batches')
    op.drop_table('profiles')
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_index('ix_posts_profile')

    op.drop_table('posts')
    op.drop_table('network_locks')
    op.drop_table('metrics')
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.drop_index('ix_media_post')

    op.drop_table('media')
    op.drop_table('entity_leases')
    op.drop_table('enrichments')
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_index('ix_comments_post')

    op.drop_table('comments')
