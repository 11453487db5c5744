"""Runtime database roles and signed checkpoints of the audit chain.

The role that runs the migrations owns the tables; the API's and the ingest worker's roles
(``BW_DB_API_ROLE``, ``BW_DB_INGEST_ROLE``) get only row rights, and on the append-only tables
only SELECT and INSERT (core/roles.py; each role only if it exists). ``audit_checkpoints`` keeps
the Ed25519-signed heads of the audit chain (audit/checkpoints.py), append-only like the chain.
``bw_ensure_detection_partitions`` runs with its owner's rights, so the ingest worker, which may
not create tables, still gets next month's partition (owned by the owner, like the others).

Revision ID: 0015_runtime_roles
Revises: 0014_track_scope
Create Date: 2026-12-06 05:30:00
"""

import sqlalchemy as sa
from alembic import op

from core.roles import grant_runtime_rights, revoke_runtime_rights
from core.settings import get_settings

revision = "0015_runtime_roles"
down_revision = "0014_track_scope"
branch_labels = None
depends_on = None

APPEND_ONLY = """
CREATE FUNCTION bw_audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_checkpoints is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION bw_audit_checkpoints_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION bw_audit_checkpoints_append_only();
"""


def _roles() -> dict[str, str]:
    settings = get_settings()
    return {"api_role": settings.db_api_role, "ingest_role": settings.db_ingest_role}


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint("seq >= 1", name="audit_checkpoint_seq_positive"),
        sa.CheckConstraint("hash ~ '^[0-9a-f]{64}$'", name="audit_checkpoint_hash_hex"),
    )
    op.create_index("ix_audit_checkpoints_seq", "audit_checkpoints", ["seq"])
    op.execute(APPEND_ONLY)
    op.execute(
        "ALTER FUNCTION bw_ensure_detection_partitions(date, int) SECURITY DEFINER SET search_path = public, pg_temp"
    )
    grant_runtime_rights(op.get_bind(), **_roles())


def downgrade() -> None:
    revoke_runtime_rights(op.get_bind(), **_roles())
    op.execute("ALTER FUNCTION bw_ensure_detection_partitions(date, int) SECURITY INVOKER RESET search_path")
    op.drop_table("audit_checkpoints")
    op.execute("DROP FUNCTION IF EXISTS bw_audit_checkpoints_append_only()")
