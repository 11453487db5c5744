"""Patrols: units and positions, incidents and their timeline, taskings, joint patrols, idempotent requests.

Revision ID: 0002_patrols
Revises: 0001
Create Date: 2026-11-22 15:34:14.943347
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0002_patrols"
down_revision = "0001"
branch_labels = None
depends_on = None

CURRENT_XID = "(pg_current_xact_id()::text)::bigint"
CHANGED_TABLES = ("patrol_units", "incidents", "taskings")

# Every update of a unit, incident or tasking records the writing transaction (for since= and
# the live feed), bumps the version (for ETags) and the update time.
TOUCH_FUNCTION = f"""
CREATE OR REPLACE FUNCTION bw_touch_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.change_xid := {CURRENT_XID};
  NEW.version := OLD.version + 1;
  NEW.updated_at := now();
  RETURN NEW;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "idempotent_requests",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("username", "key"),
    )
    op.create_index("ix_idempotent_requests_created", "idempotent_requests", ["created_at"], unique=False)
    op.create_geospatial_table(
        "incidents",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("agency_code", sa.String(length=32), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="new", nullable=False),
        sa.Column("domain", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=2), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("change_xid", sa.BigInteger(), server_default=sa.text(CURRENT_XID), nullable=False),
        sa.CheckConstraint(
            "category IN ('trafficking_in_persons', 'people_smuggling', 'drugs', 'arms', 'piracy', 'wildlife_timber', 'other')",
            name="incident_category_known",
        ),
        sa.CheckConstraint("domain IN ('land', 'maritime')", name="incident_domain_known"),
        sa.CheckConstraint("priority IN ('low', 'medium', 'high', 'critical')", name="incident_priority_known"),
        sa.CheckConstraint(
            "status IN ('new', 'assigned', 'en_route', 'on_scene', 'resolved', 'false_alarm', 'closed')",
            name="incident_status_known",
        ),
        sa.ForeignKeyConstraint(
            ["agency_code"],
            ["agencies.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_incidents_agency", "incidents", ["agency_code", "id"], unique=False)
    op.create_geospatial_index(
        "ix_incidents_geom", "incidents", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_table(
        "incident_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("clock_timestamp()"), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status_from", sa.String(length=16), nullable=True),
        sa.Column("status_to", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.CheckConstraint(
            "kind IN ('created', 'alert_linked', 'note', 'status', 'tasking')", name="incident_event_kind_known"
        ),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_incident_events_incident", "incident_events", ["incident_id", "id"], unique=False)
    op.create_geospatial_table(
        "joint_patrols",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("owner_agency", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=False),
        sa.Column("agencies", sa.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "route",
            Geometry(
                geometry_type="LINESTRING",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name="joint_patrol_window"),
        sa.ForeignKeyConstraint(
            ["owner_agency"],
            ["agencies.code"],
        ),
        sa.ForeignKeyConstraint(
            ["zone_id"],
            ["zones.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_joint_patrols_agencies", "joint_patrols", ["agencies"], unique=False, postgresql_using="gin")
    op.create_geospatial_table(
        "patrol_units",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("agency_code", sa.String(length=32), nullable=False),
        sa.Column("callsign", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("capabilities", sa.ARRAY(sa.String(length=32)), server_default="{}", nullable=False),
        sa.Column("cruising_speed_kmh", sa.REAL(), nullable=False),
        sa.Column(
            "home_base",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("position_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="available", nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("mqtt_password_hash", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("change_xid", sa.BigInteger(), server_default=sa.text(CURRENT_XID), nullable=False),
        sa.CheckConstraint("kind IN ('land', 'maritime', 'air')", name="unit_kind_known"),
        sa.CheckConstraint(
            "status IN ('available', 'en_route', 'on_scene', 'returning', 'off_duty')", name="unit_status_known"
        ),
        sa.CheckConstraint("cruising_speed_kmh > 0 AND cruising_speed_kmh <= 2000", name="unit_speed_range"),
        sa.ForeignKeyConstraint(
            ["agency_code"],
            ["agencies.code"],
        ),
        sa.ForeignKeyConstraint(["username"], ["users.username"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agency_code", "callsign", name="uq_patrol_units_callsign"),
        sa.UniqueConstraint("username"),
    )
    op.create_index("ix_patrol_units_agency", "patrol_units", ["agency_code", "id"], unique=False)
    op.create_geospatial_index(
        "ix_patrol_units_available_geom",
        "patrol_units",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_where=sa.text("status = 'available'"),
        postgresql_ops={},
    )
    op.create_geospatial_index(
        "ix_patrol_units_geom", "patrol_units", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_geospatial_table(
        "handover_points",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("patrol_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("from_agency", sa.String(length=32), nullable=False),
        sa.Column("to_agency", sa.String(length=32), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["patrol_id"], ["joint_patrols.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_handover_points_patrol_id"), "handover_points", ["patrol_id"], unique=False)
    op.create_table(
        "incident_alerts",
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("alert_id"),
    )
    op.create_index(op.f("ix_incident_alerts_incident_id"), "incident_alerts", ["incident_id"], unique=False)
    op.create_table(
        "joint_patrol_units",
        sa.Column("patrol_id", sa.BigInteger(), nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["patrol_id"], ["joint_patrols.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["unit_id"], ["patrol_units.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("patrol_id", "unit_id"),
    )
    op.create_table(
        "taskings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=False),
        sa.Column("agency_code", sa.String(length=32), nullable=False),
        sa.Column("unit_agency_code", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="assigned", nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("eta_s", sa.REAL(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("change_xid", sa.BigInteger(), server_default=sa.text(CURRENT_XID), nullable=False),
        sa.CheckConstraint(
            "status IN ('assigned', 'accepted', 'declined', 'completed', 'cancelled')", name="tasking_status_known"
        ),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["unit_id"], ["patrol_units.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_taskings_incident", "taskings", ["incident_id"], unique=False)
    op.create_index("ix_taskings_unit_change", "taskings", ["unit_id", "change_xid"], unique=False)
    op.create_index(
        "uq_taskings_open_unit",
        "taskings",
        ["unit_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('assigned', 'accepted')"),
    )
    op.create_geospatial_table(
        "unit_positions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=False),
        sa.Column("agency_code", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("speed_kmh", sa.Double(), nullable=True),
        sa.Column("heading_deg", sa.Double(), nullable=True),
        sa.Column("accuracy_m", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(["unit_id"], ["patrol_units.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("unit_id", "client_id", name="uq_unit_positions_client"),
    )
    op.create_index("ix_unit_positions_agency_observed", "unit_positions", ["agency_code", "observed_at"], unique=False)
    op.create_geospatial_index(
        "ix_unit_positions_geom", "unit_positions", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index("ix_unit_positions_unit_observed", "unit_positions", ["unit_id", "observed_at"], unique=False)
    op.execute(TOUCH_FUNCTION)
    for table in CHANGED_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_touch BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION bw_touch_change()"
        )
        op.create_index(f"ix_{table}_change_xid", table, ["change_xid"])


def downgrade() -> None:
    for table in CHANGED_TABLES:
        op.drop_index(f"ix_{table}_change_xid", table_name=table)
        op.execute(f"DROP TRIGGER IF EXISTS {table}_touch ON {table}")
    op.drop_index("ix_unit_positions_unit_observed", table_name="unit_positions")
    op.drop_geospatial_index(
        "ix_unit_positions_geom", table_name="unit_positions", postgresql_using="gist", column_name="geom"
    )
    op.drop_index("ix_unit_positions_agency_observed", table_name="unit_positions")
    op.drop_geospatial_table("unit_positions")
    op.drop_index(
        "uq_taskings_open_unit", table_name="taskings", postgresql_where=sa.text("status IN ('assigned', 'accepted')")
    )
    op.drop_index("ix_taskings_unit_change", table_name="taskings")
    op.drop_index("ix_taskings_incident", table_name="taskings")
    op.drop_table("taskings")
    op.drop_table("joint_patrol_units")
    op.drop_index(op.f("ix_incident_alerts_incident_id"), table_name="incident_alerts")
    op.drop_table("incident_alerts")
    op.drop_index(op.f("ix_handover_points_patrol_id"), table_name="handover_points")
    op.drop_geospatial_table("handover_points")
    op.drop_geospatial_index(
        "ix_patrol_units_geom", table_name="patrol_units", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_index(
        "ix_patrol_units_available_geom",
        table_name="patrol_units",
        postgresql_using="gist",
        postgresql_where=sa.text("status = 'available'"),
        column_name="geom",
    )
    op.drop_index("ix_patrol_units_agency", table_name="patrol_units")
    op.drop_geospatial_table("patrol_units")
    op.drop_index("ix_joint_patrols_agencies", table_name="joint_patrols", postgresql_using="gin")
    op.drop_geospatial_table("joint_patrols")
    op.drop_index("ix_incident_events_incident", table_name="incident_events")
    op.drop_table("incident_events")
    op.drop_geospatial_index("ix_incidents_geom", table_name="incidents", postgresql_using="gist", column_name="geom")
    op.drop_index("ix_incidents_agency", table_name="incidents")
    op.drop_geospatial_table("incidents")
    op.drop_index("ix_idempotent_requests_created", table_name="idempotent_requests")
    op.drop_table("idempotent_requests")
    op.execute("DROP FUNCTION IF EXISTS bw_touch_change()")
