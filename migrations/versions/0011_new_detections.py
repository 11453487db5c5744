"""The rows a batch has just stored, as the geofence and the track rules read them.

``sensors.service.store_detections`` keeps a batch's new detections, placed on the geofencing grid,
in the temporary table ``new_detections`` of its connection (made there on first use, emptied when
the transaction ends). ``bw_new_detections(batch)`` returns one batch's rows. Through a function
the planner counts on a fixed number of rows (as it did for the JSON document this replaces), so
the plan a prepared statement keeps suits a batch of one row as well as one of thousands; read
directly, a temporary table without statistics would be planned for the few rows it held when the
plan was made.

Revision ID: 0011_new_detections
Revises: 0010_ingest_storage
Create Date: 2026-11-22 22:40:00
"""

from alembic import op

revision = "0011_new_detections"
down_revision = "0010_ingest_storage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION bw_new_detections(p_batch bigint)
        RETURNS TABLE (id bigint, observed_at timestamptz, sensor_id text, agency_code text, event_id text,
                       track_key text, class text, confidence real, speed_mps real, identifiers jsonb,
                       lon float8, lat float8, zone_ids int[], edge_m float8)
        LANGUAGE plpgsql STABLE ROWS 100 AS $$
        BEGIN
            RETURN QUERY
            SELECT n.id, n.observed_at, n.sensor_id, n.agency_code, n.event_id, n.track_key, n.class,
                   n.confidence, n.speed_mps, n.identifiers, n.lon, n.lat, n.zone_ids, n.edge_m
            FROM pg_temp.new_detections n
            WHERE n.batch = p_batch;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION bw_new_detections(bigint)")
