"""Tamper-evident audit trail: audit_log, chained by SHA-256, append-only by trigger; pushes of alerts
and incidents to partner agencies (the liaison hotline); persons involved in incidents.

Revision ID: 0007_audit
Revises: 0006_standards
Create Date: 2026-11-22 16:40:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007_audit"
down_revision = "0006_standards"
branch_labels = None
depends_on = None

# Refuses every UPDATE, DELETE and TRUNCATE, whoever sends it. The table's owner (the
# application's role runs the migrations, so it owns the table) or a superuser can still
# disable or drop the trigger: the hash chain, checked by `borderwatch audit verify`, is what
# reveals such edits, and an anchor kept outside the database what reveals a rewritten chain.
APPEND_ONLY = """
CREATE FUNCTION bw_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION bw_audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION bw_audit_log_append_only();
"""


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agencies", postgresql.ARRAY(sa.String(32)), nullable=False),
        sa.Column("actor", sa.String(96), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(96), nullable=False),
        sa.Column("details", postgresql.JSONB(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("hash", name="audit_log_hash_key"),
        sa.CheckConstraint("seq >= 1", name="audit_seq_positive"),
        sa.CheckConstraint("hash ~ '^[0-9a-f]{64}$' AND prev_hash ~ '^[0-9a-f]{64}$'", name="audit_hash_hex"),
    )
    op.create_index("ix_audit_log_agencies", "audit_log", ["agencies"], postgresql_using="gin")
    op.create_index("ix_audit_log_entity", "audit_log", ["entity_type", "entity_id"])
    op.execute(APPEND_ONLY)
    op.create_table(
        "partner_pushes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("from_agency", sa.String(32), sa.ForeignKey("agencies.code"), nullable=False),
        sa.Column("to_agency", sa.String(32), sa.ForeignKey("agencies.code"), nullable=False),
        sa.Column("item_type", sa.String(16), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("pushed_by", sa.String(64), nullable=False),
        sa.Column("pushed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("item", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint("item_type IN ('alert', 'incident')", name="partner_push_item_type_known"),
        sa.CheckConstraint("from_agency <> to_agency", name="partner_push_to_a_partner"),
    )
    op.create_index("ix_partner_pushes_to", "partner_pushes", ["to_agency", "id"])
    op.create_index("ix_partner_pushes_from", "partner_pushes", ["from_agency", "id"])
    op.create_table(
        "incident_persons",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("agency_code", sa.String(32), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("sex", sa.String(16), nullable=False),
        sa.Column("age_group", sa.String(16), nullable=False),
        sa.Column("nationality", sa.String(2)),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint("role IN ('victim', 'suspect', 'witness')", name="person_role_known"),
        sa.CheckConstraint("sex IN ('female', 'male', 'other', 'unknown')", name="person_sex_known"),
        sa.CheckConstraint(
            "age_group IN ('0-11', '12-17', '18-29', '30-49', '50+', 'unknown')", name="person_age_group_known"
        ),
        sa.CheckConstraint("nationality ~ '^[A-Z]{2}$'", name="person_nationality_iso2"),
    )
    op.create_index("ix_incident_persons_incident", "incident_persons", ["incident_id"])
    op.create_index("ix_incident_persons_agency", "incident_persons", ["agency_code"])


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS incident_persons")
    op.execute("DROP TABLE IF EXISTS partner_pushes")
    op.drop_table("audit_log")
    op.execute("DROP FUNCTION IF EXISTS bw_audit_log_append_only()")
