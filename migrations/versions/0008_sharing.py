"""Sharing agreements between agencies: categories, places, validity window, personal data.

Revision ID: 0008_sharing
Revises: 0007_audit
Create Date: 2026-11-22 18:50:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008_sharing"
down_revision = "0007_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sharing_agreements",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("from_agency", sa.String(32), sa.ForeignKey("agencies.code"), nullable=False),
        sa.Column("to_agency", sa.String(32), sa.ForeignKey("agencies.code")),
        sa.Column("to_sector_zone_id", sa.Integer(), sa.ForeignKey("zones.id", ondelete="CASCADE")),
        sa.Column("alert_kinds", postgresql.ARRAY(sa.String(24)), server_default="{}", nullable=False),
        sa.Column("incident_categories", postgresql.ARRAY(sa.String(32)), server_default="{}", nullable=False),
        sa.Column("zone_ids", postgresql.ARRAY(sa.Integer()), server_default="{}", nullable=False),
        sa.Column("segment_ids", postgresql.ARRAY(sa.Integer()), server_default="{}", nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True)),
        sa.Column("personal_data", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
        sa.Column("withdrawn_by", sa.String(64)),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint("(to_agency IS NULL) <> (to_sector_zone_id IS NULL)", name="sharing_one_recipient"),
        sa.CheckConstraint("to_agency IS NULL OR to_agency <> from_agency", name="sharing_to_a_partner"),
        sa.CheckConstraint("valid_until IS NULL OR valid_until > valid_from", name="sharing_window_ordered"),
        sa.CheckConstraint("(withdrawn_at IS NULL) = (withdrawn_by IS NULL)", name="sharing_withdrawn_by_whom"),
    )
    op.create_index("ix_sharing_agreements_from", "sharing_agreements", ["from_agency", "id"])
    op.create_index("ix_sharing_agreements_to", "sharing_agreements", ["to_agency"])
    op.create_index("ix_sharing_agreements_sector", "sharing_agreements", ["to_sector_zone_id"])


def downgrade() -> None:
    op.drop_table("sharing_agreements")
