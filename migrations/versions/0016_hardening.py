"""Dead letters counted per gateway and day (``dead_letter_counts``): past a gateway's daily quota
only a sample of its rejected messages is kept whole, but every one is counted.

Revision ID: 0016_hardening
Revises: 0015_runtime_roles
Create Date: 2026-12-06 05:35:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_hardening"
down_revision = "0015_runtime_roles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letter_counts",
        sa.Column("gateway_id", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("gateway_id", "day"),
    )


def downgrade() -> None:
    op.drop_table("dead_letter_counts")
