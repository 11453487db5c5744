"""Cheaper ingest: geofencing on small pieces, the raw payload kept as received, a lighter time index.

* Geofencing looks points up in a grid instead of an R-tree: ``zone_cells`` holds, per grid cell
  of 0.02 degrees, the zones that meet it (``inside`` when the cell lies wholly in the zone, else
  the zone's piece in the cell), and ``fence_cells`` the pieces of fence edges within 0.01 degrees
  of the cell (the hysteresis band). A batch's points join these on the cell number (a B-tree
  look-up) and test only small pieces, where a GiST probe per point walked hundreds of boxes.
  Triggers keep both in step with ``zones`` and ``fence_edges``; fence edges themselves are now
  stored in pieces of at most 32 vertices. The ingest looks a batch's points up while it stores
  them (``sensors/service.py``), and ``track_positions.zone_ids`` keeps the zones of each track's
  last position, so a zone entry is told from array membership, not from a second geometry test.
* ``detections.raw`` becomes ``json``: the payload's text exactly as received (key order, spacing),
  checked as JSON but not rebuilt into jsonb for every detection.
* ``detections.observed_at`` gets a BRIN index instead of a B-tree: detections arrive in time
  order, so block ranges bound a time filter as well, for a fraction of the work per insert
  (queries of one agency use the (agency_code, observed_at) B-tree).
* ``track_positions`` is rewritten for every fix of every track: its spatial index now holds only
  vessels (the rendezvous rule's search), and the agency index goes, so moving a person or a
  vehicle forward touches the primary key alone.

Revision ID: 0010_ingest_storage
Revises: 0009_evidence
Create Date: 2026-11-22 19:20:00
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0010_ingest_storage"
down_revision = "0009_evidence"
branch_labels = None
depends_on = None

# Vertices per piece of a zone (before it is cut into grid cells) and of a fence edge.
ZONE_PART_VERTICES = 64
EDGE_PART_VERTICES = 32
# The grid: cell (i, j) covers [i * GRID, (i + 1) * GRID) x [j * GRID, (j + 1) * GRID) degrees,
# as ST_SquareGrid numbers them. Edge pieces are kept for every cell within EDGE_MARGIN degrees
# (about 1 km here), which bounds the hysteresis band (core.settings caps it at 1,000 m).
GRID = 0.02
EDGE_MARGIN = 0.01
VESSELS = "class IN ('boat', 'vessel')"

FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION bw_fence_edges_from_segment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    DELETE FROM fence_edges WHERE source = 'segment' AND ref_id = OLD.id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO fence_edges (source, ref_id, geom)
    SELECT 'segment', NEW.id, ST_Multi(part) FROM ST_Subdivide(NEW.geom, {EDGE_PART_VERTICES}) AS part;
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
    SELECT 'zone', NEW.id, ST_Multi(part) FROM ST_Subdivide(ST_Boundary(NEW.geom), {EDGE_PART_VERTICES}) AS part;
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION bw_cell(v float8) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT floor(v / {GRID})::int $$;

-- A zone's cells: its pieces of at most {ZONE_PART_VERTICES} vertices cut along the grid.
CREATE OR REPLACE FUNCTION bw_fill_zone_cells(zone_id int, zone_geom geometry) RETURNS void LANGUAGE sql AS $$
  INSERT INTO zone_cells (zone_id, i, j, inside, geom)
  SELECT zone_id, g.i, g.j, c.inside, CASE WHEN c.inside THEN NULL ELSE ST_Intersection(p.part, g.geom) END
  FROM ST_Subdivide(zone_geom, {ZONE_PART_VERTICES}) AS p(part)
  CROSS JOIN LATERAL ST_SquareGrid({GRID}, p.part) AS g
  CROSS JOIN LATERAL (SELECT ST_Covers(p.part, g.geom) AS inside) c
  WHERE ST_Intersects(p.part, g.geom)
$$;

CREATE OR REPLACE FUNCTION bw_zone_cells() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.geom IS NOT DISTINCT FROM OLD.geom THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'UPDATE' THEN
    DELETE FROM zone_cells WHERE zone_id = OLD.id;
  END IF;
  PERFORM bw_fill_zone_cells(NEW.id, NEW.geom);
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION bw_fence_cells() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO fence_cells (edge_id, i, j, geom)
  SELECT NEW.id, g.i, g.j, ST_Intersection(NEW.geom, ST_Expand(g.geom, {EDGE_MARGIN}))
  FROM ST_SquareGrid({GRID}, ST_Expand(NEW.geom, {EDGE_MARGIN})) AS g
  WHERE ST_Intersects(NEW.geom, ST_Expand(g.geom, {EDGE_MARGIN}));
  RETURN NULL;
END $$;
"""


def _revision_module(filename: str):
    """Another revision of this folder, loaded by path (revision files are not an importable package)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(f"bw_revision_{filename[:4]}", Path(__file__).with_name(filename))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    op.execute("ALTER TABLE detections ALTER COLUMN raw TYPE json USING raw::json")
    op.drop_index("ix_detections_observed_at", table_name="detections")
    op.execute("CREATE INDEX ix_detections_observed_brin ON detections USING brin (observed_at)")
    op.drop_index("ix_track_positions_agency_code", table_name="track_positions")
    op.execute("DROP INDEX idx_track_positions_geom")
    op.execute(f"CREATE INDEX ix_track_positions_vessel_geom ON track_positions USING gist (geom) WHERE {VESSELS}")
    op.execute("ALTER TABLE track_positions SET (fillfactor = 70)")
    op.create_table(
        "zone_cells",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("zone_id", sa.Integer(), sa.ForeignKey("zones.id", ondelete="CASCADE"), nullable=False),
        sa.Column("i", sa.Integer(), nullable=False),
        sa.Column("j", sa.Integer(), nullable=False),
        sa.Column("inside", sa.Boolean(), nullable=False),
        sa.Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False)),
    )
    op.create_index("ix_zone_cells_cell", "zone_cells", ["i", "j", "zone_id"])
    op.create_index("ix_zone_cells_zone_id", "zone_cells", ["zone_id"])
    op.create_table(
        "fence_cells",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("edge_id", sa.Integer(), sa.ForeignKey("fence_edges.id", ondelete="CASCADE"), nullable=False),
        sa.Column("i", sa.Integer(), nullable=False),
        sa.Column("j", sa.Integer(), nullable=False),
        sa.Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
    )
    op.create_index("ix_fence_cells_cell", "fence_cells", ["i", "j"])
    op.create_index("ix_fence_cells_edge_id", "fence_cells", ["edge_id"])
    op.execute(FUNCTIONS)
    op.execute(
        "CREATE TRIGGER bw_zone_cells AFTER INSERT OR UPDATE OF geom ON zones "
        "FOR EACH ROW EXECUTE FUNCTION bw_zone_cells()"
    )
    op.execute(
        "CREATE TRIGGER bw_fence_cells AFTER INSERT ON fence_edges FOR EACH ROW EXECUTE FUNCTION bw_fence_cells()"
    )
    # the zones there are already
    op.execute("SELECT bw_fill_zone_cells(id, geom) FROM zones")
    op.add_column("track_positions", sa.Column("zone_ids", sa.ARRAY(sa.Integer()), nullable=False, server_default="{}"))
    op.execute(
        "UPDATE track_positions tp SET zone_ids = ARRAY(SELECT DISTINCT c.zone_id FROM zone_cells c "
        "WHERE c.i = bw_cell(ST_X(tp.geom)) AND c.j = bw_cell(ST_Y(tp.geom)) "
        "AND (c.inside OR ST_Intersects(c.geom, tp.geom)))"
    )
    # fence edges again, in pieces (the insert trigger cuts them into cells)
    op.execute("DELETE FROM fence_edges")
    op.execute(
        f"INSERT INTO fence_edges (source, ref_id, geom) SELECT 'segment', s.id, ST_Multi(part) "
        f"FROM border_segments s, ST_Subdivide(s.geom, {EDGE_PART_VERTICES}) AS part"
    )
    op.execute(
        f"INSERT INTO fence_edges (source, ref_id, geom) SELECT 'zone', z.id, ST_Multi(part) "
        f"FROM zones z, ST_Subdivide(ST_Boundary(z.geom), {EDGE_PART_VERTICES}) AS part WHERE z.entry_alert"
    )


def downgrade() -> None:
    op.drop_column("track_positions", "zone_ids")
    op.execute("ALTER TABLE track_positions RESET (fillfactor)")
    op.execute("DROP INDEX ix_track_positions_vessel_geom")
    op.execute("CREATE INDEX idx_track_positions_geom ON track_positions USING gist (geom)")
    op.create_index("ix_track_positions_agency_code", "track_positions", ["agency_code"])
    op.execute("DROP INDEX ix_detections_observed_brin")
    op.create_index("ix_detections_observed_at", "detections", ["observed_at"])
    op.execute("ALTER TABLE detections ALTER COLUMN raw TYPE jsonb USING raw::jsonb")
    op.execute("DROP TRIGGER IF EXISTS bw_zone_cells ON zones")
    op.execute("DROP TRIGGER IF EXISTS bw_fence_cells ON fence_edges")
    op.drop_table("fence_cells")
    op.drop_table("zone_cells")
    op.execute("DROP FUNCTION IF EXISTS bw_zone_cells()")
    op.execute("DROP FUNCTION IF EXISTS bw_fill_zone_cells(int, geometry)")
    op.execute("DROP FUNCTION IF EXISTS bw_fence_cells()")
    op.execute("DROP FUNCTION IF EXISTS bw_cell(float8)")
    # fence edges back to one row per segment or zone outline: 0003's trigger functions
    op.execute(_revision_module("0003_analytics.py").FENCE_EDGE_FUNCTIONS)
    op.execute("DELETE FROM fence_edges")
    op.execute(
        "INSERT INTO fence_edges (source, ref_id, geom) SELECT 'segment', id, ST_Multi(geom) FROM border_segments"
    )
    op.execute(
        "INSERT INTO fence_edges (source, ref_id, geom) SELECT 'zone', id, ST_Multi(ST_Boundary(geom)) "
        "FROM zones WHERE entry_alert"
    )
