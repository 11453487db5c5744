"""Core schema: agencies, users, borders, zones, sensors, partitioned detections, alerts.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 07:00:01.918099
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Severity of an alert: the segment's or zone's impact level, raised for a crossing,
# lowered for animals/unknown objects and for low-confidence detections.
SEVERITY_FUNCTION = """
CREATE OR REPLACE FUNCTION bw_severity(impact text, alert_kind text, object_class text, confidence real)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (ARRAY['info', 'low', 'medium', 'high', 'critical'])[1 + greatest(0, least(4,
      CASE impact WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END
    + CASE alert_kind WHEN 'crossing' THEN 1 ELSE 0 END
    + CASE WHEN object_class IN ('animal', 'unknown') THEN -1 ELSE 0 END
    + CASE WHEN confidence < 0.5 THEN -1 ELSE 0 END))]
$$
"""

# Monthly partitions of detections (UTC month bounds); returns how many were created.
PARTITION_FUNCTION = """
CREATE OR REPLACE FUNCTION bw_ensure_detection_partitions(first_month date, months int)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  m date;
  part text;
  created int := 0;
BEGIN
  FOR i IN 0..months - 1 LOOP
    m := (date_trunc('month', first_month) + make_interval(months => i))::date;
    part := format('detections_%s', to_char(m, 'YYYY_MM'));
    IF to_regclass(part) IS NULL THEN
      EXECUTE format(
        'CREATE TABLE %I PARTITION OF detections FOR VALUES FROM (%L) TO (%L)',
        part, m::text || ' 00:00:00+00', (m + interval '1 month')::date::text || ' 00:00:00+00');
      created := created + 1;
    END IF;
  END LOOP;
  RETURN created;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "agencies",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("code ~ '^[A-Z]{2}-[A-Z0-9]{2,24}$'", name="agency_code_format"),
        sa.CheckConstraint("country ~ '^[A-Z]{2}$'", name="agency_country_iso2"),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "alert_cooldowns",
        sa.Column("track_key", sa.Text(), nullable=False),
        sa.Column("target", sa.String(length=40), nullable=False),
        sa.Column("last_observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("track_key", "target"),
    )
    op.create_geospatial_table(
        "border_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("left_state", sa.String(length=2), nullable=False),
        sa.Column("right_state", sa.String(length=2), nullable=False),
        sa.Column("impact_level", sa.String(length=8), server_default="medium", nullable=False),
        sa.Column("source", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="LINESTRING",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("impact_level IN ('low', 'medium', 'high')", name="segment_impact_known"),
        sa.CheckConstraint("kind IN ('land', 'maritime')", name="segment_kind_known"),
        sa.CheckConstraint("left_state <> right_state", name="segment_two_states"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_geospatial_index(
        "idx_border_segments_geom",
        "border_segments",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload_size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_dead_letters_received_at", "dead_letters", ["received_at"], unique=False)
    op.create_table(
        "detection_keys",
        sa.Column("sensor_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sensor_id", "event_id"),
    )
    op.create_index(op.f("ix_detection_keys_observed_at"), "detection_keys", ["observed_at"], unique=False)
    op.create_geospatial_table(
        "detections",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("sensor_id", sa.String(length=64), nullable=False),
        sa.Column("agency_code", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
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
        sa.Column("located_by", sa.String(length=8), nullable=False),
        sa.Column("class", sa.String(length=16), nullable=False),
        sa.Column("confidence", sa.Float(precision=24), nullable=False),
        sa.Column("track_id", sa.String(length=128), nullable=True),
        sa.Column("track_key", sa.String(length=200), nullable=True),
        sa.Column("speed_mps", sa.Float(precision=24), nullable=True),
        sa.Column("heading_deg", sa.Float(precision=24), nullable=True),
        sa.Column("identifiers", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("id", "observed_at"),
        postgresql_partition_by="RANGE (observed_at)",
    )
    op.create_index("ix_detections_agency_observed", "detections", ["agency_code", "observed_at"], unique=False)
    op.create_geospatial_index(
        "ix_detections_geom", "detections", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index("ix_detections_observed_at", "detections", ["observed_at"], unique=False)
    op.create_index("ix_detections_sensor_observed", "detections", ["sensor_id", "observed_at"], unique=False)
    op.create_index("ix_detections_track_observed", "detections", ["track_key", "observed_at"], unique=False)
    op.create_geospatial_table(
        "states",
        sa.Column("code", sa.String(length=2), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_geospatial_index(
        "idx_states_geom", "states", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_geospatial_table(
        "track_positions",
        sa.Column("track_key", sa.String(length=200), nullable=False),
        sa.Column("agency_code", sa.String(length=32), nullable=False),
        sa.Column("sensor_id", sa.String(length=64), nullable=False),
        sa.Column("detection_id", sa.BigInteger(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("class", sa.String(length=16), nullable=False),
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
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("track_key"),
    )
    op.create_geospatial_index(
        "idx_track_positions_geom",
        "track_positions",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_track_positions_agency_code"), "track_positions", ["agency_code"], unique=False)
    op.create_table(
        "gateways",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("agency_code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), server_default="", nullable=False),
        sa.Column("mqtt_password_hash", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="unknown", nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("id ~ '^[a-z0-9][a-z0-9_-]{1,63}$'", name="gateway_id_format"),
        sa.ForeignKeyConstraint(
            ["agency_code"],
            ["agencies.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_gateways_agency_code"), "gateways", ["agency_code"], unique=False)
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("agency_code", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "role IN ('admin', 'supervisor', 'operator', 'patrol_unit', 'liaison')", name="user_role_known"
        ),
        sa.ForeignKeyConstraint(
            ["agency_code"],
            ["agencies.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_index(op.f("ix_users_agency_code"), "users", ["agency_code"], unique=False)
    op.create_geospatial_table(
        "zones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("state", sa.String(length=2), nullable=True),
        sa.Column("owner_agency", sa.String(length=32), nullable=False),
        sa.Column("member_agencies", sa.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("impact_level", sa.String(length=8), server_default="medium", nullable=False),
        sa.Column("entry_alert", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("impact_level IN ('low', 'medium', 'high')", name="zone_impact_known"),
        sa.CheckConstraint(
            "kind IN ('border_buffer', 'territorial_sea', 'joint_patrol_sector', 'restricted_area', 'crossing_point')",
            name="zone_kind_known",
        ),
        sa.ForeignKeyConstraint(
            ["owner_agency"],
            ["agencies.code"],
        ),
        sa.ForeignKeyConstraint(["segment_id"], ["border_segments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_geospatial_index(
        "idx_zones_geom", "zones", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index("ix_zones_member_agencies", "zones", ["member_agencies"], unique=False, postgresql_using="gin")
    op.create_index(op.f("ix_zones_owner_agency"), "zones", ["owner_agency"], unique=False)
    op.create_geospatial_table(
        "alerts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("agency_code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("sensor_id", sa.String(length=64), nullable=False),
        sa.Column("track_key", sa.String(length=200), nullable=True),
        sa.Column("class", sa.String(length=16), nullable=False),
        sa.Column("detection_id", sa.BigInteger(), nullable=False),
        sa.Column("detection_ids", sa.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("zone_id", sa.Integer(), nullable=True),
        sa.Column("from_state", sa.String(length=2), nullable=True),
        sa.Column("to_state", sa.String(length=2), nullable=True),
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
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.CheckConstraint("kind IN ('crossing', 'zone_entry')", name="alert_kind_known"),
        sa.CheckConstraint("severity IN ('info', 'low', 'medium', 'high', 'critical')", name="alert_severity_known"),
        sa.ForeignKeyConstraint(["segment_id"], ["border_segments.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["zone_id"], ["zones.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_geospatial_index(
        "idx_alerts_geom", "alerts", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index("ix_alerts_agency_observed", "alerts", ["agency_code", "observed_at"], unique=False)
    op.create_index(
        "uq_alerts_rule_detection",
        "alerts",
        [
            "kind",
            "detection_id",
            sa.literal_column("coalesce(segment_id, 0)"),
            sa.literal_column("coalesce(zone_id, 0)"),
        ],
        unique=True,
    )
    op.create_geospatial_table(
        "sensors",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("agency_code", sa.String(length=32), nullable=False),
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "location",
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
            "coverage",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("id ~ '^[a-z0-9][a-z0-9_-]{1,63}$'", name="sensor_id_format"),
        sa.CheckConstraint(
            "kind IN ('camera', 'ground_sensor', 'radar', 'anpr', 'ais_receiver', 'other')", name="sensor_kind_known"
        ),
        sa.ForeignKeyConstraint(
            ["agency_code"],
            ["agencies.code"],
        ),
        sa.ForeignKeyConstraint(
            ["gateway_id"],
            ["gateways.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_geospatial_index(
        "idx_sensors_coverage", "sensors", ["coverage"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_geospatial_index(
        "idx_sensors_location", "sensors", ["location"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index(op.f("ix_sensors_agency_code"), "sensors", ["agency_code"], unique=False)
    op.create_index(op.f("ix_sensors_gateway_id"), "sensors", ["gateway_id"], unique=False)

    op.execute(SEVERITY_FUNCTION)
    op.execute(PARTITION_FUNCTION)
    op.execute("CREATE TABLE detections_default PARTITION OF detections DEFAULT")
    op.execute("SELECT bw_ensure_detection_partitions((now() AT TIME ZONE 'UTC')::date - 62, 6)")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS bw_ensure_detection_partitions(date, int)")
    op.execute("DROP FUNCTION IF EXISTS bw_severity(text, text, text, real)")
    op.drop_index(op.f("ix_sensors_gateway_id"), table_name="sensors")
    op.drop_index(op.f("ix_sensors_agency_code"), table_name="sensors")
    op.drop_geospatial_index(
        "idx_sensors_location", table_name="sensors", postgresql_using="gist", column_name="location"
    )
    op.drop_geospatial_index(
        "idx_sensors_coverage", table_name="sensors", postgresql_using="gist", column_name="coverage"
    )
    op.drop_geospatial_table("sensors")
    op.drop_index("uq_alerts_rule_detection", table_name="alerts")
    op.drop_index("ix_alerts_agency_observed", table_name="alerts")
    op.drop_geospatial_index("idx_alerts_geom", table_name="alerts", postgresql_using="gist", column_name="geom")
    op.drop_geospatial_table("alerts")
    op.drop_index(op.f("ix_zones_owner_agency"), table_name="zones")
    op.drop_index("ix_zones_member_agencies", table_name="zones", postgresql_using="gin")
    op.drop_geospatial_index("idx_zones_geom", table_name="zones", postgresql_using="gist", column_name="geom")
    op.drop_geospatial_table("zones")
    op.drop_index(op.f("ix_users_agency_code"), table_name="users")
    op.drop_table("users")
    op.drop_index(op.f("ix_gateways_agency_code"), table_name="gateways")
    op.drop_table("gateways")
    op.drop_index(op.f("ix_track_positions_agency_code"), table_name="track_positions")
    op.drop_geospatial_index(
        "idx_track_positions_geom", table_name="track_positions", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("track_positions")
    op.drop_geospatial_index("idx_states_geom", table_name="states", postgresql_using="gist", column_name="geom")
    op.drop_geospatial_table("states")
    op.drop_index("ix_detections_track_observed", table_name="detections")
    op.drop_index("ix_detections_sensor_observed", table_name="detections")
    op.drop_index("ix_detections_observed_at", table_name="detections")
    op.drop_geospatial_index("ix_detections_geom", table_name="detections", postgresql_using="gist", column_name="geom")
    op.drop_index("ix_detections_agency_observed", table_name="detections")
    op.drop_geospatial_table("detections")
    op.drop_index(op.f("ix_detection_keys_observed_at"), table_name="detection_keys")
    op.drop_table("detection_keys")
    op.drop_index("ix_dead_letters_received_at", table_name="dead_letters")
    op.drop_table("dead_letters")
    op.drop_geospatial_index(
        "idx_border_segments_geom", table_name="border_segments", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("border_segments")
    op.drop_table("alert_cooldowns")
    op.drop_table("agencies")
