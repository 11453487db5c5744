"""Maritime and track analytics: AIS static data and fragments, watch-lists, sensor health,
AIS gaps, encounters (rendezvous), loitering, zone dwell, fence edges for crossing hysteresis, new alert kinds.

Revision ID: 0003_analytics
Revises: 0002_patrols
Create Date: 2026-11-22 15:40:00
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0003_analytics"
down_revision = "0002_patrols"
branch_labels = None
depends_on = None

OLD_ALERT_KINDS = "('crossing', 'zone_entry')"
NEW_ALERT_KINDS = (
    "('crossing', 'zone_entry', 'watchlist_hit', 'dark_vessel', 'ais_gap', 'rendezvous', 'loitering', "
    "'sensor_offline', 'sensor_online')"
)
OLD_ZONE_KINDS = "('border_buffer', 'territorial_sea', 'joint_patrol_sector', 'restricted_area', 'crossing_point')"
NEW_ZONE_KINDS = (
    "('border_buffer', 'territorial_sea', 'joint_patrol_sector', 'restricted_area', 'crossing_point', 'port')"
)

# One normal form for watch-list values and the identifiers they are matched against.
NORMALISE_FUNCTION = r"""
CREATE OR REPLACE FUNCTION bw_watchlist_value(kind text, value text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE kind
    WHEN 'plate' THEN upper(regexp_replace(value, '[^[:alnum:]]', '', 'g'))
    WHEN 'mmsi' THEN regexp_replace(value, '[^0-9]', '', 'g')
    WHEN 'imo' THEN regexp_replace(value, '[^0-9]', '', 'g')
    ELSE upper(btrim(regexp_replace(value, '[^[:alnum:]]+', ' ', 'g')))
  END
$$
"""

# Border segments and the outlines of entry-alert zones, kept in step by triggers: a tracked
# position closer than the hysteresis distance to any of them does not count yet.
FENCE_EDGE_FUNCTIONS = """
CREATE OR REPLACE FUNCTION bw_fence_edges_from_segment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    DELETE FROM fence_edges WHERE source = 'segment' AND ref_id = OLD.id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO fence_edges (source, ref_id, geom) VALUES ('segment', NEW.id, ST_Multi(NEW.geom));
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION bw_fence_edges_from_zone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    DELETE FROM fence_edges WHERE source = 'zone' AND ref_id = OLD.id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.entry_alert THEN
    INSERT INTO fence_edges (source, ref_id, geom)
    SELECT 'zone', NEW.id, ST_Multi(ST_Boundary(NEW.geom));
  END IF;
  RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute("ALTER TABLE alerts DROP CONSTRAINT alert_kind_known")
    op.execute(f"ALTER TABLE alerts ADD CONSTRAINT alert_kind_known CHECK (kind IN {NEW_ALERT_KINDS})")
    # Alerts that no detection fired (sensor health) carry detection_id 0 and are not unique by it.
    op.execute("DROP INDEX uq_alerts_rule_detection")
    op.execute(
        "CREATE UNIQUE INDEX uq_alerts_rule_detection ON alerts "
        "(kind, detection_id, coalesce(segment_id, 0), coalesce(zone_id, 0)) WHERE detection_id > 0"
    )
    op.execute("ALTER TABLE zones DROP CONSTRAINT zone_kind_known")
    op.execute(f"ALTER TABLE zones ADD CONSTRAINT zone_kind_known CHECK (kind IN {NEW_ZONE_KINDS})")
    op.execute(NORMALISE_FUNCTION)

    op.create_table(
        "vessels",
        sa.Column("mmsi", sa.BigInteger(), primary_key=True),
        sa.Column("imo", sa.BigInteger()),
        sa.Column("name", sa.Text()),
        sa.Column("call_sign", sa.Text()),
        sa.Column("ship_type", sa.Integer()),
        sa.Column("ship_type_name", sa.Text()),
        sa.Column("flag", sa.String(2)),
        sa.Column("destination", sa.Text()),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index("ix_vessels_imo", "vessels", ["imo"])
    op.create_table(
        "ais_fragments",
        sa.Column("sensor_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(2), nullable=False),
        sa.Column("seq_id", sa.Integer(), nullable=False),
        sa.Column("frag_cnt", sa.Integer(), nullable=False),
        sa.Column("frag_num", sa.Integer(), nullable=False),
        sa.Column("sentence", sa.Text(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("sensor_id", "channel", "seq_id", "frag_cnt", "frag_num"),
    )
    op.create_index("ix_ais_fragments_received_at", "ais_fragments", ["received_at"])
    op.create_table(
        "watchlist_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("agency_code", sa.String(32), sa.ForeignKey("agencies.code"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("display_value", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False, server_default="high"),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind IN ('plate', 'mmsi', 'imo', 'vessel_name')", name="watchlist_kind_known"),
        sa.CheckConstraint("severity IN ('high', 'critical')", name="watchlist_severity_known"),
        sa.CheckConstraint("value <> ''", name="watchlist_value_not_empty"),
        sa.UniqueConstraint("agency_code", "kind", "value", name="uq_watchlist_agency_kind_value"),
    )
    op.create_index("ix_watchlist_kind_value", "watchlist_entries", ["kind", "value"])
    op.create_table(
        "sensor_health",
        sa.Column("sensor_id", sa.String(64), sa.ForeignKey("sensors.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("last_heard_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('online', 'offline')", name="sensor_health_state_known"),
    )
    op.create_table(
        "ais_gaps",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("agency_code", sa.String(32), nullable=False),
        sa.Column("track_key", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_detection_id", sa.BigInteger(), nullable=False),
        sa.Column("start_geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("end_detection_id", sa.BigInteger()),
        sa.Column("end_geom", Geometry("POINT", srid=4326, spatial_index=False)),
        sa.Column("alert_id", sa.BigInteger()),
        sa.UniqueConstraint("agency_code", "track_key", "started_at", name="uq_ais_gaps_track_start"),
    )
    op.create_index("ix_ais_gaps_open", "ais_gaps", ["track_key"], postgresql_where=sa.text("ended_at IS NULL"))
    op.create_table(
        "encounters",
        sa.Column("agency_code", sa.String(32), nullable=False),
        sa.Column("track_a", sa.String(200), nullable=False),
        sa.Column("track_b", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alert_id", sa.BigInteger()),
        sa.PrimaryKeyConstraint("agency_code", "track_a", "track_b"),
        sa.CheckConstraint("track_a < track_b", name="encounter_pair_ordered"),
    )
    op.create_table(
        "loiter_states",
        sa.Column("agency_code", sa.String(32), nullable=False),
        sa.Column("track_key", sa.String(200), nullable=False),
        sa.Column("zone_id", sa.Integer(), sa.ForeignKey("zones.id", ondelete="CASCADE"), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alerted", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.PrimaryKeyConstraint("agency_code", "track_key", "zone_id"),
    )
    op.create_table(
        "zone_presence",
        sa.Column("cooldown_key", sa.Text(), nullable=False),
        sa.Column("zone_id", sa.Integer(), sa.ForeignKey("zones.id", ondelete="CASCADE"), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alerted", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.PrimaryKeyConstraint("cooldown_key", "zone_id"),
    )
    op.create_table(
        "fence_edges",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column("geom", Geometry("MULTILINESTRING", srid=4326, spatial_index=False), nullable=False),
    )
    op.execute("CREATE INDEX ix_fence_edges_geom ON fence_edges USING gist (geom)")
    op.create_index("ix_fence_edges_ref", "fence_edges", ["source", "ref_id"])
    op.execute(FENCE_EDGE_FUNCTIONS)
    op.execute(
        "CREATE TRIGGER bw_fence_edges AFTER INSERT OR UPDATE OR DELETE ON border_segments "
        "FOR EACH ROW EXECUTE FUNCTION bw_fence_edges_from_segment()"
    )
    op.execute(
        "CREATE TRIGGER bw_fence_edges AFTER INSERT OR UPDATE OR DELETE ON zones "
        "FOR EACH ROW EXECUTE FUNCTION bw_fence_edges_from_zone()"
    )
    op.execute(
        "INSERT INTO fence_edges (source, ref_id, geom) SELECT 'segment', id, ST_Multi(geom) FROM border_segments"
    )
    op.execute(
        "INSERT INTO fence_edges (source, ref_id, geom) SELECT 'zone', id, "
        "ST_Multi(ST_Boundary(geom)) FROM zones WHERE entry_alert"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS bw_fence_edges ON zones")
    op.execute("DROP TRIGGER IF EXISTS bw_fence_edges ON border_segments")
    op.execute("DROP FUNCTION IF EXISTS bw_fence_edges_from_zone()")
    op.execute("DROP FUNCTION IF EXISTS bw_fence_edges_from_segment()")
    for table in (
        "fence_edges",
        "zone_presence",
        "loiter_states",
        "encounters",
        "ais_gaps",
        "sensor_health",
        "watchlist_entries",
        "ais_fragments",
        "vessels",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP FUNCTION IF EXISTS bw_watchlist_value(text, text)")
    op.execute("DELETE FROM zones WHERE kind = 'port'")
    op.execute("ALTER TABLE zones DROP CONSTRAINT zone_kind_known")
    op.execute(f"ALTER TABLE zones ADD CONSTRAINT zone_kind_known CHECK (kind IN {OLD_ZONE_KINDS})")
    op.execute("DROP INDEX uq_alerts_rule_detection")
    op.execute("DELETE FROM alerts WHERE kind NOT IN ('crossing', 'zone_entry')")
    op.execute(
        "CREATE UNIQUE INDEX uq_alerts_rule_detection ON alerts "
        "(kind, detection_id, coalesce(segment_id, 0), coalesce(zone_id, 0))"
    )
    op.execute("ALTER TABLE alerts DROP CONSTRAINT alert_kind_known")
    op.execute(f"ALTER TABLE alerts ADD CONSTRAINT alert_kind_known CHECK (kind IN {OLD_ALERT_KINDS})")
