"""Evidence on incidents and its chain of custody: evidence_items, custody_events (chained by SHA-256,
append-only by trigger).

Revision ID: 0009_evidence
Revises: 0008_sharing
Create Date: 2026-11-22 18:45:00
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0009_evidence"
down_revision = "0008_sharing"
branch_labels = None
depends_on = None

# As for audit_log: whoever sends an UPDATE, DELETE or TRUNCATE is refused. The table's owner can
# still disable the trigger; the hash chain (`borderwatch evidence verify`) is what shows such edits.
APPEND_ONLY = """
CREATE FUNCTION bw_custody_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'custody_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER custody_events_append_only BEFORE UPDATE OR DELETE ON custody_events
  FOR EACH ROW EXECUTE FUNCTION bw_custody_events_append_only();
CREATE TRIGGER custody_events_no_truncate BEFORE TRUNCATE ON custody_events
  FOR EACH STATEMENT EXECUTE FUNCTION bw_custody_events_append_only();
"""

ITEM_KINDS = ("snapshot", "clip", "document", "seized_item", "other")
ITEM_STATUSES = ("in_custody", "in_transit", "released", "destroyed", "returned")
EVENT_KINDS = (
    "collected",
    "handover",
    "received",
    "handover_declined",
    "sealed",
    "unsealed",
    "examined",
    "released",
    "destroyed",
    "returned",
)


def upgrade() -> None:
    op.create_table(
        "evidence_items",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), sa.ForeignKey("incidents.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("agency_code", sa.String(32), sa.ForeignKey("agencies.code"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("content_uri", sa.Text()),
        sa.Column("content_sha256", sa.String(64)),
        sa.Column("content_size", sa.BigInteger()),
        sa.Column("media_type", sa.String(127)),
        sa.Column("content_stored_at", sa.DateTime(timezone=True)),
        sa.Column("quantity", sa.String(64)),
        sa.Column("seal_number", sa.String(64)),
        sa.Column("sealed", sa.Boolean(), nullable=False),
        sa.Column("collected_by", sa.String(128), nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
        sa.Column("custodian_agency", sa.String(32), sa.ForeignKey("agencies.code"), nullable=False),
        sa.Column("custodian", sa.String(128), nullable=False),
        sa.Column("custodian_unit_id", sa.BigInteger(), sa.ForeignKey("patrol_units.id", ondelete="SET NULL")),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("pending_agency", sa.String(32), sa.ForeignKey("agencies.code")),
        sa.Column("pending_custodian", sa.String(128)),
        sa.Column("pending_unit_id", sa.BigInteger(), sa.ForeignKey("patrol_units.id", ondelete="SET NULL")),
        sa.Column("agencies", postgresql.ARRAY(sa.String(32)), nullable=False),
        sa.Column("head_seq", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint(f"kind IN {ITEM_KINDS!r}", name="evidence_kind_known"),
        sa.CheckConstraint(f"status IN {ITEM_STATUSES!r}", name="evidence_status_known"),
        sa.CheckConstraint("content_sha256 ~ '^[0-9a-f]{64}$'", name="evidence_sha256_hex"),
        sa.CheckConstraint("content_size >= 0", name="evidence_size_positive"),
        sa.CheckConstraint(
            "(status = 'in_transit') = (pending_agency IS NOT NULL)", name="evidence_pending_in_transit"
        ),
    )
    op.create_index("ix_evidence_items_incident", "evidence_items", ["incident_id", "id"])
    op.create_index("ix_evidence_items_agencies", "evidence_items", ["agencies"], postgresql_using="gin")
    op.create_table(
        "custody_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("item_id", sa.BigInteger(), sa.ForeignKey("evidence_items.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("actor_agency", sa.String(32), nullable=False),
        sa.Column("from_agency", sa.String(32)),
        sa.Column("from_custodian", sa.String(128)),
        sa.Column("to_agency", sa.String(32)),
        sa.Column("to_custodian", sa.String(128)),
        sa.Column("note", sa.Text()),
        sa.Column("details", postgresql.JSONB(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("item_id", "seq", name="custody_events_item_seq_key"),
        sa.UniqueConstraint("hash", name="custody_events_hash_key"),
        sa.CheckConstraint("seq >= 1", name="custody_seq_positive"),
        sa.CheckConstraint(f"kind IN {EVENT_KINDS!r}", name="custody_kind_known"),
        sa.CheckConstraint("hash ~ '^[0-9a-f]{64}$' AND prev_hash ~ '^[0-9a-f]{64}$'", name="custody_hash_hex"),
    )
    op.execute(APPEND_ONLY)


def downgrade() -> None:
    op.drop_table("custody_events")
    op.execute("DROP FUNCTION IF EXISTS bw_custody_events_append_only()")
    op.drop_table("evidence_items")
