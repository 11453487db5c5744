"""Track state per agency, and each sensor's range.

* ``track_positions`` is keyed by ``(agency_code, track_key)``: one agency's detections of a
  vessel (``mmsi:...``) or any other track no longer move another agency's track. A track that
  two agencies' sensors saw keeps its row for the agency that saw it last; the other agency's
  track starts again at its next fix (a crossing needs two fixes of the same agency).
* ``ais_gaps``: the open-gap index is per agency and track.
* ``sensors.range_m``: how far from its registered location a sensor can see (NULL: the default
  of its kind, ``BW_SENSOR_RANGE_<KIND>_M``); a detection placed further away is a dead letter
  (``outside_coverage``). Sensors registered with a coverage get the coverage's farthest point
  as their range.

Revision ID: 0014_track_scope
Revises: 0013_trust
Create Date: 2026-12-05 09:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_track_scope"
down_revision = "0013_trust"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("track_positions_pkey", "track_positions", type_="primary")
    op.create_primary_key("track_positions_pkey", "track_positions", ["agency_code", "track_key"])
    op.drop_index("ix_ais_gaps_open", table_name="ais_gaps")
    op.create_index(
        "ix_ais_gaps_open", "ais_gaps", ["agency_code", "track_key"], postgresql_where=sa.text("ended_at IS NULL")
    )
    op.add_column("sensors", sa.Column("range_m", sa.Float(), nullable=True))
    op.create_check_constraint("sensor_range_positive", "sensors", "range_m > 0")
    op.execute(
        "UPDATE sensors s SET range_m = (SELECT ceil(max(ST_Distance(s.location::geography, p.geom::geography)))"
        " FROM ST_DumpPoints(s.coverage) p) WHERE s.coverage IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_constraint("sensor_range_positive", "sensors", type_="check")
    op.drop_column("sensors", "range_m")
    op.drop_index("ix_ais_gaps_open", table_name="ais_gaps")
    op.create_index("ix_ais_gaps_open", "ais_gaps", ["track_key"], postgresql_where=sa.text("ended_at IS NULL"))
    # one row per track again: the newest fix of any agency
    op.execute(
        "DELETE FROM track_positions t USING track_positions n WHERE n.track_key = t.track_key"
        " AND (n.observed_at, n.agency_code) > (t.observed_at, t.agency_code)"
    )
    op.drop_constraint("track_positions_pkey", "track_positions", type_="primary")
    op.create_primary_key("track_positions_pkey", "track_positions", ["track_key"])
