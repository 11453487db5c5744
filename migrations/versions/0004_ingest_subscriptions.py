"""Ingest subscriptions: the topic filters each ingest worker's broker session holds.

A worker's session on the broker outlives the worker (persistent session), subscriptions
included. When a worker comes back with another filter (a share group set or removed), it
unsubscribes the filters recorded here that it no longer wants, so its session does not
receive every message twice.

Revision ID: 0004_ingest_subscriptions
Revises: 0003_analytics
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_ingest_subscriptions"
down_revision = "0003_analytics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_subscriptions",
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("topic_filter", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "topic_filter"),
    )


def downgrade() -> None:
    op.drop_table("ingest_subscriptions")
