"""Boundary import: the shipped borders as the session fixture loaded them, `import_features` on
files written at test time (GeoJSON, GeoPackage, Shapefile; reprojection, repair, rejection,
upsert) and `borderwatch import-borders` end to end. Real PostGIS, no mocks; geometry truth
comes from the state polygons in the database."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import geopandas as gpd
import pytest
from shapely import wkt
from shapely.geometry import LineString, MultiLineString, Point, Polygon
from sqlalchemy import text

from core.errors import InvalidInput
from core.settings import REPO_ROOT
from geo import service
from tests.conftest import unique

HAT_YAI = (100.47, 7.01)
ALOR_SETAR = (100.37, 6.12)
BUFFER_M = 5000.0
# Near Sadao, in Thailand, about 8 km north of the Natural Earth line.
SADAO_LINE = [(100.40, 6.60), (100.45, 6.61)]
SADAO_SQUARE = [(100.40, 6.60), (100.42, 6.60), (100.42, 6.62), (100.40, 6.62)]
SADAO_BOWTIE = [(100.40, 6.60), (100.42, 6.62), (100.42, 6.60), (100.40, 6.62)]

# The point 300 m to the left (turn -pi/2) or right (+pi/2) of a segment where the straight line
# (x0, y0)-(x1, y1) crosses it, the direction taken over about 100 m of the segment.
_SIDE_POINT = """
    WITH x AS (
        SELECT s.geom, ST_LineLocatePoint(s.geom, ST_GeometryN(ST_Intersection(s.geom, c.geom), 1)) AS f
        FROM border_segments s,
             (SELECT ST_SetSRID(ST_MakeLine(ST_MakePoint(:x0, :y0), ST_MakePoint(:x1, :y1)), 4326) AS geom) c
        WHERE s.id = :segment_id
    )
    SELECT ST_AsText(ST_Project(
        ST_LineInterpolatePoint(geom, f)::geography, 300,
        ST_Azimuth(ST_LineInterpolatePoint(geom, greatest(f - 0.0002, 0))::geography,
                   ST_LineInterpolatePoint(geom, least(f + 0.0002, 1))::geography) + :turn
    )::geometry)
    FROM x
"""


def _rows(session, sql: str, **params) -> list:
    return session.execute(text(sql), params).all()


def _scalar(session, sql: str, **params):
    return session.execute(text(sql), params).scalar()


def _frame(features: list[dict], crs: int | str = 4326) -> gpd.GeoDataFrame:
    """A GeoDataFrame from dicts with a ``geometry`` key; attributes a feature lacks become null."""
    attrs = [{k: v for k, v in f.items() if k != "geometry"} for f in features]
    return gpd.GeoDataFrame(attrs, geometry=[f["geometry"] for f in features], crs=crs)


def _flat(coords) -> list[float]:
    """Coordinates as a flat list, for pytest.approx (which does not compare nested tuples)."""
    return [c for xy in coords for c in xy]


def _write(frame: gpd.GeoDataFrame, path: Path, **kwargs) -> Path:
    frame.to_file(path, **kwargs)
    return path


def _th_my_main(session):
    """The shipped TH-MY land segment that the straight line from Hat Yai to Alor Setar crosses."""
    rows = _rows(
        session,
        "SELECT id, name, left_state, right_state, impact_level FROM border_segments "
        "WHERE kind = 'land' AND ST_Intersects(geom, ST_SetSRID(ST_MakeLine(ST_MakePoint(:x0, :y0), "
        "ST_MakePoint(:x1, :y1)), 4326))",
        x0=HAT_YAI[0],
        y0=HAT_YAI[1],
        x1=ALOR_SETAR[0],
        y1=ALOR_SETAR[1],
    )
    th_my = [r for r in rows if {r.left_state, r.right_state} == {"TH", "MY"}]
    assert len(th_my) == 1, rows
    return th_my[0]


def _state_at(session, point_wkt: str) -> list[str]:
    return list(
        session.scalars(
            text("SELECT code FROM states WHERE ST_Contains(geom, ST_GeomFromText(:p, 4326)) ORDER BY code"),
            {"p": point_wkt},
        )
    )


def _counts(session) -> dict[str, int]:
    return {
        table: _scalar(session, f"SELECT count(*) FROM {table}")
        for table in ("agencies", "states", "border_segments", "zones")
    }


# -- 1. the shipped data, as the session fixture loaded it ------------------------------------
def test_shipped_states_and_agencies_exist(session):
    states = dict(_rows(session, "SELECT code, name FROM states"))
    assert set(states) == {"TH", "MY", "MM", "LA", "KH", "ID", "SG", "PH", "BN", "VN", "TL"}
    assert states["TH"] == "Thailand" and states["MY"] == "Malaysia"
    assert _scalar(session, "SELECT bool_and(ST_IsValid(geom) AND NOT ST_IsEmpty(geom)) FROM states")
    agencies = set(session.scalars(text("SELECT code FROM agencies")))
    assert {"TH-RTP", "TH-RTN", "MY-PDRM", "MY-MMEA", "ID-BAKAMLA", "SG-PCG", "PH-PCG"} <= agencies


def test_th_my_land_segment_crosses_hat_yai_alor_setar_with_left_state_on_the_left(session):
    segment = _th_my_main(session)
    assert segment.impact_level == "high"
    params = dict(segment_id=segment.id, x0=HAT_YAI[0], y0=HAT_YAI[1], x1=ALOR_SETAR[0], y1=ALOR_SETAR[1])
    left = _scalar(session, _SIDE_POINT, turn=-math.pi / 2, **params)
    right = _scalar(session, _SIDE_POINT, turn=math.pi / 2, **params)
    assert _state_at(session, left) == [segment.left_state]
    assert _state_at(session, right) == [segment.right_state]
    assert _state_at(session, f"POINT({HAT_YAI[0]} {HAT_YAI[1]})") == ["TH"]
    assert _state_at(session, f"POINT({ALOR_SETAR[0]} {ALOR_SETAR[1]})") == ["MY"]


def test_every_shipped_segment_has_its_left_state_on_the_left(session):
    """At each segment's middle: 300 m left in left_state's land (or territorial sea), right in right_state's."""
    rows = _rows(
        session,
        """
        WITH p AS (
            SELECT name, kind, left_state, right_state, ST_LineInterpolatePoint(geom, 0.5)::geography AS at,
                   ST_Azimuth(ST_LineInterpolatePoint(geom, 0.4999)::geography,
                              ST_LineInterpolatePoint(geom, 0.5001)::geography) AS az
            FROM border_segments WHERE source LIKE 'Natural Earth%'
        ), q AS (
            SELECT name, kind, left_state, right_state, ST_Project(at, 300, az - pi() / 2)::geometry AS l,
                   ST_Project(at, 300, az + pi() / 2)::geometry AS r FROM p
        )
        SELECT name, left_state, right_state,
               CASE kind WHEN 'land' THEN (SELECT array_agg(code) FROM states WHERE ST_Contains(geom, l))
                    ELSE (SELECT array_agg(state) FROM zones WHERE kind = 'territorial_sea' AND ST_Contains(geom, l))
               END AS on_left,
               CASE kind WHEN 'land' THEN (SELECT array_agg(code) FROM states WHERE ST_Contains(geom, r))
                    ELSE (SELECT array_agg(state) FROM zones WHERE kind = 'territorial_sea' AND ST_Contains(geom, r))
               END AS on_right
        FROM q
        """,
    )
    assert len(rows) == 24
    wrong = [r for r in rows if r.on_left != [r.left_state] or r.on_right != [r.right_state]]
    assert not wrong


def test_maritime_segments_in_the_straits_and_the_sulu_celebes_sea(session):
    def pairs_in(lon0, lat0, lon1, lat1):
        rows = _rows(
            session,
            "SELECT name, left_state, right_state FROM border_segments WHERE kind = 'maritime' "
            "AND ST_CoveredBy(geom, ST_MakeEnvelope(:lon0, :lat0, :lon1, :lat1, 4326))",
            lon0=lon0,
            lat0=lat0,
            lon1=lon1,
            lat1=lat1,
        )
        return {r.name: frozenset((r.left_state, r.right_state)) for r in rows}

    straits = pairs_in(95.0, -1.5, 105.5, 7.0)
    sulu = pairs_in(116.0, 0.0, 126.0, 8.5)
    assert {frozenset(p) for p in ({"MY", "TH"}, {"ID", "MY"}, {"MY", "SG"}, {"ID", "SG"})} <= set(straits.values())
    assert any("Malacca Strait" in n for n in straits) and any("Singapore Strait" in n for n in straits)
    assert set(sulu.values()) == {frozenset({"ID", "MY"}), frozenset({"MY", "PH"})}
    assert all("Sulu–Celebes Sea" in n for n in sulu)
    assert len(straits) + len(sulu) == _scalar(session, "SELECT count(*) FROM border_segments WHERE kind = 'maritime'")


def test_shipped_territorial_seas_joint_sectors_and_crossing_points(session):
    seas = _rows(
        session,
        "SELECT state, owner_agency, member_agencies, entry_alert FROM zones WHERE kind = 'territorial_sea'",
    )
    owners = {"TH": "TH-RTN", "MY": "MY-MMEA", "ID": "ID-BAKAMLA", "SG": "SG-PCG", "PH": "PH-PCG"}
    assert len(seas) == 7
    assert {r.state for r in seas} == set(owners)
    assert all(r.owner_agency == owners[r.state] and r.member_agencies == [r.owner_agency] for r in seas)
    assert not any(r.entry_alert for r in seas)
    # A territorial sea is water: it does not overlap its own state's land (beyond the data's precision).
    assert (
        _scalar(
            session,
            "SELECT max(ST_Area(ST_Intersection(z.geom, s.geom)::geography)) FROM zones z "
            "JOIN states s ON s.code = z.state WHERE z.kind = 'territorial_sea'",
        )
        < 1e6
    )

    sectors = {
        r.name: (r.owner_agency, set(r.member_agencies), r.impact_level, r.state)
        for r in _rows(session, "SELECT * FROM zones WHERE kind = 'joint_patrol_sector'")
    }
    assert sectors == {
        "Malacca Straits Patrol sector": ("MY-MMEA", {"MY-MMEA", "ID-BAKAMLA", "SG-PCG", "TH-RTN"}, "high", None),
        "Sulu–Celebes trilateral sector": ("PH-PCG", {"PH-PCG", "MY-MMEA", "ID-BAKAMLA"}, "high", None),
    }

    crossings = _rows(
        session,
        "SELECT name, state, owner_agency, impact_level, entry_alert, "
        "ST_X(ST_Centroid(geom)) AS lon, ST_Y(ST_Centroid(geom)) AS lat FROM zones WHERE kind = 'crossing_point'",
    )
    assert len(crossings) == 6
    assert all(r.owner_agency == "TH-RTP" and r.impact_level == "low" and not r.entry_alert for r in crossings)
    sadao = next(r for r in crossings if r.name.startswith("Sadao"))
    assert sadao.lon == pytest.approx(100.421, abs=0.001) and sadao.lat == pytest.approx(6.514, abs=0.001)


def test_th_my_border_buffers_on_both_sides(session):
    segment = _th_my_main(session)
    buffers = _rows(
        session,
        """
        SELECT z.state, z.owner_agency, z.member_agencies, z.entry_alert, z.impact_level, z.segment_id,
               ST_CoveredBy(z.geom, ST_Buffer(st.geom, 0.0005)) AS inside_state,
               ST_Area(z.geom::geography) / ST_Length(s.geom::geography) AS width_m,
               ST_DWithin(z.geom::geography, s.geom::geography, 10) AS touches_segment,
               ST_CoveredBy(z.geom, ST_Buffer(s.geom::geography, :width + 50)::geometry) AS within_width
        FROM zones z JOIN states st ON st.code = z.state JOIN border_segments s ON s.id = z.segment_id
        WHERE z.kind = 'border_buffer' AND z.segment_id = :id
        """,
        id=segment.id,
        width=BUFFER_M,
    )
    by_state = {r.state: r for r in buffers}
    assert set(by_state) == {"TH", "MY"} and len(buffers) == 2
    for state, agency in (("TH", "TH-RTP"), ("MY", "MY-PDRM")):
        zone = by_state[state]
        assert zone.owner_agency == agency and zone.member_agencies == [agency]
        assert zone.entry_alert is True
        assert zone.impact_level == segment.impact_level
        assert zone.inside_state and zone.touches_segment and zone.within_width
        assert BUFFER_M / 1.5 < zone.width_m < BUFFER_M * 1.5


def test_every_shipped_land_segment_has_a_buffer_per_side(session):
    rows = _rows(
        session,
        """
        SELECT s.name, s.left_state, s.right_state, array_agg(z.state ORDER BY z.state) AS sides
        FROM border_segments s LEFT JOIN zones z ON z.segment_id = s.id AND z.kind = 'border_buffer'
        WHERE s.kind = 'land' AND s.source LIKE 'Natural Earth%' GROUP BY s.id
        """,
    )
    assert len(rows) == 14
    assert all(r.sides == sorted([r.left_state, r.right_state]) for r in rows)
    assert not _scalar(
        session, "SELECT count(*) FROM zones z JOIN border_segments s ON s.id = z.segment_id WHERE s.kind = 'maritime'"
    )


def test_load_shipped_borders_is_idempotent(session):
    before = _counts(session)
    ids = dict(_rows(session, "SELECT name, id FROM border_segments"))
    zone_ids = dict(_rows(session, "SELECT name, id FROM zones"))
    report = service.load_shipped_borders(session=session, buffer_m=BUFFER_M)
    assert report.states == 11 and report.segments == 24
    assert report.rejected == [] and report.repaired == []
    assert _counts(session) == before
    # Upsert keeps ids, so alerts and buffer zones still point at the same segments.
    assert dict(_rows(session, "SELECT name, id FROM border_segments")) == ids
    assert dict(_rows(session, "SELECT name, id FROM zones")) == zone_ids


# -- 2. read_features / import_features on files written at test time -------------------------
@pytest.mark.parametrize(("driver", "suffix"), [("GeoJSON", ".geojson"), ("GPKG", ".gpkg"), ("ESRI Shapefile", ".shp")])
def test_a_file_in_web_mercator_is_reprojected(session, tmp_path, driver, suffix):
    name = unique("mercator")
    lonlat = _frame([{"name": name, "left_state": "TH", "geometry": LineString(SADAO_LINE)}])
    path = _write(lonlat.to_crs(3857), tmp_path / f"lines{suffix}", driver=driver)

    frame = service.read_features(path)
    assert frame.crs.to_epsg() == 4326
    assert _flat(frame.geometry.iloc[0].coords) == pytest.approx(_flat(SADAO_LINE), abs=1e-7)

    # right_state does not fit a shapefile column name (10 characters): it comes from the defaults.
    report = service.import_features(session=session, frame=frame, source="test", defaults={"right_state": "MY"})
    assert (report.segments, report.rejected) == (1, [])
    row = _rows(
        session,
        "SELECT ST_SRID(geom) AS srid, ST_AsText(geom) AS g, left_state, right_state FROM border_segments "
        "WHERE name = :n",
        n=name,
    )[0]
    assert row.srid == 4326 and (row.left_state, row.right_state) == ("TH", "MY")
    assert _flat(wkt.loads(row.g).coords) == pytest.approx(_flat(SADAO_LINE), abs=1e-7)


def test_a_file_without_crs_is_taken_as_lon_lat(tmp_path):
    path = _write(_frame([{"name": "a", "geometry": LineString(SADAO_LINE)}]), tmp_path / "nocrs.shp")
    path.with_suffix(".prj").unlink()
    frame = service.read_features(path)
    assert frame.crs.to_epsg() == 4326
    assert _flat(frame.geometry.iloc[0].coords) == pytest.approx(_flat(SADAO_LINE))


def test_unreadable_file_and_missing_layer_are_invalid_input(tmp_path):
    garbage = tmp_path / "garbage.geojson"
    garbage.write_text("this is not GeoJSON")
    with pytest.raises(InvalidInput, match="cannot read .*garbage.geojson"):
        service.read_features(garbage)
    gpkg = _write(_frame([{"name": "a", "geometry": LineString(SADAO_LINE)}]), tmp_path / "x.gpkg", layer="lines")
    with pytest.raises(InvalidInput, match="cannot read"):
        service.read_features(gpkg, layer="no_such_layer")


def test_geopackage_layer_by_name(session, tmp_path):
    prefix = unique("gpkg")
    path = tmp_path / "agency.gpkg"
    lines = _frame(
        [
            {
                "name": f"{prefix} line",
                "left_state": "TH",
                "right_state": "MY",
                "kind": "land",
                "impact_level": "high",
                "geometry": LineString(SADAO_LINE),
            },
        ]
    )
    zones = _frame(
        [
            {
                "name": f"{prefix} zone",
                "kind": "restricted_area",
                "state": "TH",
                "owner_agency": "TH-RTP",
                "member_agencies": "TH-RTP,MY-PDRM",
                "impact_level": "high",
                "geometry": Polygon(SADAO_SQUARE),
            },
        ]
    )
    _write(lines, path, layer="boundary_lines", driver="GPKG")
    _write(zones, path, layer="restricted", driver="GPKG")

    line_report = service.import_features(
        session=session, frame=service.read_features(path, layer="boundary_lines"), source="RTP survey 2026"
    )
    assert (line_report.segments, line_report.zones, line_report.rejected) == (1, 0, [])
    zone_report = service.import_features(
        session=session, frame=service.read_features(path, layer="restricted"), source="RTP survey 2026"
    )
    assert (zone_report.segments, zone_report.zones, zone_report.rejected) == (0, 1, [])

    seg = _rows(session, "SELECT * FROM border_segments WHERE name = :n", n=f"{prefix} line")[0]
    assert (seg.kind, seg.left_state, seg.right_state, seg.impact_level, seg.source) == (
        "land",
        "TH",
        "MY",
        "high",
        "RTP survey 2026",
    )
    zone = _rows(session, "SELECT *, ST_GeometryType(geom) AS gtype FROM zones WHERE name = :n", n=f"{prefix} zone")[0]
    assert (zone.kind, zone.state, zone.owner_agency, zone.impact_level) == ("restricted_area", "TH", "TH-RTP", "high")
    assert zone.member_agencies == ["TH-RTP", "MY-PDRM"]
    assert zone.entry_alert is True  # a restricted area alerts on entry unless the file says otherwise
    assert zone.gtype == "ST_MultiPolygon"


def test_shapefile_attributes_come_from_defaults_where_the_file_has_none(session, tmp_path):
    prefix = unique("shp")
    lines = _frame(
        [
            {"name": f"{prefix} a", "left_state": "TH", "geometry": LineString(SADAO_LINE)},
            {"name": f"{prefix} b", "left_state": "LA", "geometry": LineString(list(reversed(SADAO_LINE)))},
        ]
    )
    line_path = _write(lines, tmp_path / "lines.shp")
    # Shapefile field names have at most 10 characters: member_agencies is cut to member_age,
    # which the import maps back; owner_agency, right_state and impact_level come from defaults.
    polygons = _frame(
        [
            {
                "name": f"{prefix} zone",
                "kind": "restricted_area",
                "member_agencies": "TH-RTP,MY-PDRM",
                "geometry": Polygon(SADAO_SQUARE),
            },
        ]
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        polygon_path = _write(polygons, tmp_path / "zones.shp")
    assert any("truncated" in str(w.message) for w in caught)
    assert "member_agencies" not in service.read_features(polygon_path).columns

    defaults = {"left_state": "MM", "right_state": "MY", "impact_level": "high", "owner_agency": "TH-RTP"}
    report = service.import_features(
        session=session, frame=service.read_features(line_path), source="shp import", defaults=defaults
    )
    assert (report.segments, report.zones, report.rejected) == (2, 0, [])
    report = service.import_features(
        session=session, frame=service.read_features(polygon_path), source="shp import", defaults=defaults
    )
    assert (report.segments, report.zones, report.rejected) == (0, 1, [])

    segments = {
        r.name: (r.kind, r.left_state, r.right_state, r.impact_level, r.source)
        for r in _rows(session, "SELECT * FROM border_segments WHERE name LIKE :p", p=f"{prefix}%")
    }
    assert segments == {  # the file's left_state wins over the default
        f"{prefix} a": ("land", "TH", "MY", "high", "shp import"),
        f"{prefix} b": ("land", "LA", "MY", "high", "shp import"),
    }
    zone = _rows(session, "SELECT * FROM zones WHERE name = :n", n=f"{prefix} zone")[0]
    assert (zone.kind, zone.owner_agency, zone.member_agencies, zone.impact_level) == (
        "restricted_area",
        "TH-RTP",
        ["TH-RTP", "MY-PDRM"],
        "high",
    )


def test_invalid_features_are_repaired_or_rejected_with_a_message(session, tmp_path):
    p = unique("val")
    features = [
        {"name": f"{p} good line", "left_state": "TH", "right_state": "MY", "geometry": LineString(SADAO_LINE)},
        {
            "name": f"{p} good zone",
            "kind": "restricted_area",
            "owner_agency": "TH-RTP",
            "geometry": Polygon(SADAO_SQUARE),
        },
        {"name": f"{p} bowtie", "kind": "restricted_area", "owner_agency": "TH-RTP", "geometry": Polygon(SADAO_BOWTIE)},
        {"name": f"{p} empty", "kind": "restricted_area", "owner_agency": "TH-RTP", "geometry": Polygon()},
        {"name": f"{p} no right", "left_state": "TH", "geometry": LineString(SADAO_LINE)},
        {"name": f"{p} same", "left_state": "TH", "right_state": "TH", "geometry": LineString(SADAO_LINE)},
        {
            "name": f"{p} bad owner",
            "kind": "restricted_area",
            "owner_agency": "XX-NOPE",
            "geometry": Polygon(SADAO_SQUARE),
        },
        {"name": f"{p} bad kind", "kind": "watchtower", "owner_agency": "TH-RTP", "geometry": Polygon(SADAO_SQUARE)},
        {
            "name": f"{p} bad impact",
            "kind": "restricted_area",
            "owner_agency": "TH-RTP",
            "impact_level": "extreme",
            "geometry": Polygon(SADAO_SQUARE),
        },
        {
            "name": f"{p} bad member",
            "kind": "restricted_area",
            "owner_agency": "TH-RTP",
            "member_agencies": "TH-RTP,XX-NOPE",
            "geometry": Polygon(SADAO_SQUARE),
        },
        {
            "name": f"{p} bad segment kind",
            "left_state": "TH",
            "right_state": "MY",
            "kind": "river",
            "geometry": LineString(SADAO_LINE),
        },
    ]
    path = _write(_frame(features), tmp_path / "mixed.geojson", driver="GeoJSON")
    frame = service.read_features(path)
    ticks = []
    report = service.import_features(session=session, frame=frame, source="test", progress=ticks.append)

    assert sum(ticks) == len(features)
    assert (report.segments, report.zones) == (1, 2)
    assert report.repaired == [f"feature 2 ({p} bowtie): repaired invalid geometry (Self-intersection[100.41 6.61])"]
    expected = {
        3: "empty geometry",
        4: "left_state and right_state must be two different ISO codes",
        5: "left_state and right_state must be two different ISO codes",
        6: "owner_agency 'XX-NOPE' is not a known agency",
        7: "zone kind must be one of border_buffer, territorial_sea, joint_patrol_sector, restricted_area, "
        "crossing_point, port",
        8: "impact_level must be one of low, medium, high",
        9: "unknown member agencies XX-NOPE",
        10: "a segment's kind is land or maritime, not river",
    }
    assert report.rejected == [f"feature {i} ({features[i]['name']}): {why}" for i, why in expected.items()]

    assert set(session.scalars(text("SELECT name FROM border_segments WHERE name LIKE :p"), {"p": f"{p}%"})) == {
        f"{p} good line"
    }
    assert set(session.scalars(text("SELECT name FROM zones WHERE name LIKE :p"), {"p": f"{p}%"})) == {
        f"{p} good zone",
        f"{p} bowtie",
    }
    bowtie = _rows(
        session,
        "SELECT ST_IsValid(geom) AS valid, ST_NumGeometries(geom) AS parts, ST_Area(geom) AS area "
        "FROM zones WHERE name = :n",
        n=f"{p} bowtie",
    )[0]
    # The two triangles of the bow tie, a quarter of the square each.
    assert bowtie.valid and bowtie.parts == 2 and bowtie.area == pytest.approx(0.02 * 0.02 / 2)


def test_feature_without_name_or_with_wrong_geometry_type_is_rejected(session, tmp_path):
    p = unique("anon")
    frame = _frame(
        [
            {"name": None, "left_state": "TH", "right_state": "MY", "geometry": LineString(SADAO_LINE)},
            {"name": f"{p} point", "kind": "restricted_area", "owner_agency": "TH-RTP", "geometry": Point(100.4, 6.6)},
        ]
    )
    report = service.import_features(session=session, frame=frame, source="test")
    assert (report.segments, report.zones) == (0, 0)
    assert report.rejected == ["feature 0: no name", f"feature 1 ({p} point): expected a polygon, got Point"]


def test_multilinestring_segment_becomes_numbered_parts(session, tmp_path):
    name = unique("multi")
    second = [(100.46, 6.61), (100.50, 6.62)]
    frame = _frame(
        [
            {
                "name": name,
                "left_state": "TH",
                "right_state": "MY",
                "kind": "land",
                "geometry": MultiLineString([SADAO_LINE, second]),
            }
        ]
    )
    path = _write(frame, tmp_path / "multi.gpkg", layer="segments")
    report = service.import_features(
        session=session, frame=service.read_features(path, layer="segments"), source="test"
    )
    assert report.segments == 2 and report.rejected == []
    rows = _rows(
        session,
        "SELECT name, ST_GeometryType(geom) AS gtype, ST_AsText(geom) AS g FROM border_segments WHERE name LIKE :p "
        "ORDER BY name",
        p=f"{name}%",
    )
    assert [r.name for r in rows] == [f"{name} part 1", f"{name} part 2"]
    assert all(r.gtype == "ST_LineString" for r in rows)
    assert [list(wkt.loads(r.g).coords) for r in rows] == [SADAO_LINE, second]


def test_import_twice_upserts_by_name(session, tmp_path):
    p = unique("upsert")
    path = tmp_path / "agency.geojson"

    def write(impact: str, owner: str, shift: float) -> gpd.GeoDataFrame:
        line = LineString([(x + shift, y) for x, y in SADAO_LINE])
        _write(
            _frame(
                [
                    {
                        "name": f"{p} line",
                        "left_state": "TH",
                        "right_state": "MY",
                        "impact_level": impact,
                        "geometry": line,
                    },
                    {
                        "name": f"{p} zone",
                        "kind": "restricted_area",
                        "owner_agency": owner,
                        "impact_level": impact,
                        "geometry": Polygon(SADAO_SQUARE),
                    },
                ]
            ),
            path,
            driver="GeoJSON",
        )
        return service.read_features(path)

    first = service.import_features(session=session, frame=write("low", "TH-RTP", 0.0), source="v1")
    ids = dict(_rows(session, "SELECT name, id FROM border_segments WHERE name LIKE :p", p=f"{p}%"))
    second = service.import_features(session=session, frame=write("high", "TH-RTN", 0.01), source="v2")
    assert (first.segments, first.zones) == (second.segments, second.zones) == (1, 1)

    segments = _rows(
        session,
        "SELECT id, name, impact_level, source, ST_XMin(geom) AS x FROM border_segments WHERE name LIKE :p",
        p=f"{p}%",
    )
    assert len(segments) == 1
    seg = segments[0]
    assert (seg.id, seg.impact_level, seg.source) == (ids[f"{p} line"], "high", "v2")
    assert seg.x == pytest.approx(SADAO_LINE[0][0] + 0.01)
    zones = _rows(
        session, "SELECT owner_agency, member_agencies, impact_level FROM zones WHERE name LIKE :p", p=f"{p}%"
    )
    assert [tuple(z) for z in zones] == [("TH-RTN", ["TH-RTN"], "high")]


def test_state_codes_are_upper_cased(session):
    name = unique("lower")
    frame = _frame([{"name": name, "left_state": "th", "right_state": "my", "geometry": LineString(SADAO_LINE)}])
    report = service.import_features(session=session, frame=frame, source="test")
    assert report.segments == 1
    assert tuple(_rows(session, "SELECT left_state, right_state FROM border_segments WHERE name = :n", n=name)[0]) == (
        "TH",
        "MY",
    )


def test_build_border_buffers_for_an_imported_segment(session):
    name = unique("sadao")
    main = _th_my_main(session)
    part = _scalar(
        session, "SELECT ST_AsText(ST_LineSubstring(geom, 0.13, 0.19)) FROM border_segments WHERE id = :i", i=main.id
    )
    frame = _frame(
        [{"name": name, "left_state": main.left_state, "right_state": main.right_state, "geometry": wkt.loads(part)}]
    )
    assert service.import_features(session=session, frame=frame, source="test").segments == 1
    before = _scalar(session, "SELECT count(*) FROM zones WHERE kind = 'border_buffer'")
    assert service.build_border_buffers(session=session, width_m=BUFFER_M) == before + 2
    _assert_buffers(session, name)


def _assert_buffers(session, segment_name: str) -> None:
    zones = _rows(
        session,
        """
        SELECT z.name, z.state, z.owner_agency, z.entry_alert, z.kind,
               ST_CoveredBy(z.geom, ST_Buffer(st.geom, 0.0005)) AS inside_state,
               ST_Area(z.geom::geography) / ST_Length(s.geom::geography) AS width_m
        FROM zones z JOIN border_segments s ON s.id = z.segment_id JOIN states st ON st.code = z.state
        WHERE s.name = :n
        """,
        n=segment_name,
    )
    assert {z.name: (z.state, z.owner_agency) for z in zones} == {
        f"{segment_name} buffer TH": ("TH", "TH-RTP"),
        f"{segment_name} buffer MY": ("MY", "MY-PDRM"),
    }
    for z in zones:
        assert z.kind == "border_buffer" and z.entry_alert is True and z.inside_state
        # The end caps make a short segment's strip look wider than 5 km; within a factor 1.5.
        assert BUFFER_M / 1.5 < z.width_m < BUFFER_M * 1.5


# -- attribute edge cases: case, null geometry, defaults, missing flags ------------------------
def test_same_state_in_different_case_is_rejected_not_a_crash(session):
    p = unique("case")
    frame = _frame(
        [
            {"name": f"{p} ok", "left_state": "TH", "right_state": "MY", "geometry": LineString(SADAO_LINE)},
            {"name": f"{p} same", "left_state": "th", "right_state": "TH", "geometry": LineString(SADAO_LINE)},
        ]
    )
    report = service.import_features(session=session, frame=frame, source="test")
    assert report.segments == 1
    assert report.rejected == [f"feature 1 ({p} same): left_state and right_state must be two different ISO codes"]


def test_null_geometry_is_rejected_not_a_crash(session, tmp_path):
    p = unique("null")
    path = _write(
        _frame(
            [
                {"name": f"{p} ok", "left_state": "TH", "right_state": "MY", "geometry": LineString(SADAO_LINE)},
                {"name": f"{p} null", "left_state": "TH", "right_state": "MY", "geometry": None},
            ]
        ),
        tmp_path / "null.geojson",
        driver="GeoJSON",
    )
    report = service.import_features(session=session, frame=service.read_features(path), source="test")
    assert report.segments == 1
    assert report.rejected == [f"feature 1 ({p} null): empty geometry"]


def test_defaults_fill_a_feature_that_lacks_an_attribute_others_have(session):
    p = unique("dflt")
    frame = _frame(
        [
            {"name": f"{p} a", "left_state": "TH", "right_state": "MY", "geometry": LineString(SADAO_LINE)},
            {"name": f"{p} b", "left_state": "TH", "geometry": LineString(SADAO_LINE)},
        ]
    )
    report = service.import_features(session=session, frame=frame, source="test", defaults={"right_state": "MY"})
    assert (report.segments, report.rejected) == (2, [])


def test_entry_alert_of_a_feature_without_one_follows_its_kind(session):
    p = unique("entry")
    frame = _frame(
        [
            {
                "name": f"{p} restricted",
                "kind": "restricted_area",
                "owner_agency": "TH-RTP",
                "entry_alert": False,
                "geometry": Polygon(SADAO_SQUARE),
            },
            {
                "name": f"{p} crossing",
                "kind": "crossing_point",
                "owner_agency": "TH-RTP",
                "geometry": Polygon(SADAO_SQUARE),
            },
        ]
    )
    assert service.import_features(session=session, frame=frame, source="test").zones == 2
    alerts = dict(_rows(session, "SELECT name, entry_alert FROM zones WHERE name LIKE :p", p=f"{p}%"))
    assert alerts == {f"{p} restricted": False, f"{p} crossing": False}


# -- 3. `borderwatch import-borders` end to end (commits to the test database) ----------------
@pytest.fixture
def committed(engine):
    """A unique name prefix; whatever the CLI committed under it is deleted afterwards."""
    prefix = unique("cli")
    yield prefix
    with engine.begin() as conn:
        # Buffer zones go with their segment (ON DELETE CASCADE).
        conn.execute(text("DELETE FROM zones WHERE name LIKE :p"), {"p": f"{prefix}%"})
        conn.execute(text("DELETE FROM border_segments WHERE name LIKE :p"), {"p": f"{prefix}%"})


def _cli(*args: str) -> subprocess.CompletedProcess:
    # A wide console so rich does not wrap the messages the tests look for.
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "cli", "import-borders", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
    )


def _sadao_border(engine, name: str) -> dict:
    """A piece of the shipped TH-MY line near Sadao, as a feature of a new segment."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT left_state, right_state, ST_AsText(ST_LineSubstring(geom, 0.13, 0.19)) AS g "
                "FROM border_segments WHERE name = 'Thailand–Malaysia 1'"
            )
        ).one()
    return {"name": name, "left_state": row.left_state, "right_state": row.right_state, "geometry": wkt.loads(row.g)}


def test_cli_help():
    result = _cli("--help")
    assert result.returncode == 0, result.stderr
    for option in (
        "--layer",
        "--source",
        "--kind",
        "--left-state",
        "--right-state",
        "--owner-agency",
        "--impact-level",
        "--buffer-m",
    ):
        assert option in result.stdout


def test_cli_imports_good_features_reports_rejected_and_builds_buffers(engine, committed, tmp_path):
    good = _sadao_border(engine, f"{committed} Sadao")
    bad = {"name": f"{committed} bad", "left_state": "TH", "geometry": LineString(SADAO_LINE)}
    path = _write(_frame([good, bad]), tmp_path / "rtp.geojson", driver="GeoJSON")

    result = _cli(str(path), "--source", "RTP survey 2026")
    assert result.returncode == 0, result.stderr
    assert f"feature 1 ({committed} bad): left_state and right_state must be two different ISO codes" in result.stderr
    assert "1 segments and 0 zones imported, 1 rejected" in result.stderr

    with engine.connect() as conn:
        rows = _rows(
            conn,
            "SELECT name, source, left_state, right_state FROM border_segments WHERE name LIKE :p",
            p=f"{committed}%",
        )
        assert [tuple(r) for r in rows] == [(f"{committed} Sadao", "RTP survey 2026", "TH", "MY")]
        _assert_buffers(conn, f"{committed} Sadao")


def test_cli_layer_and_default_options(engine, settings, committed, tmp_path):
    path = tmp_path / "agency.gpkg"
    segment = _sadao_border(engine, f"{committed} line")
    del segment["left_state"], segment["right_state"]
    _write(_frame([segment]), path, layer="lines", driver="GPKG")
    _write(
        _frame([{"name": f"{committed} zone", "geometry": Polygon(SADAO_SQUARE)}]), path, layer="areas", driver="GPKG"
    )

    lines = _cli(
        str(path),
        "--layer",
        "lines",
        "--left-state",
        "TH",
        "--right-state",
        "MY",
        "--kind",
        "land",
        "--impact-level",
        "high",
        "--buffer-m",
        str(settings.border_buffer_m),
    )
    assert lines.returncode == 0, lines.stderr
    assert "1 segments and 0 zones imported, 0 rejected" in lines.stderr
    areas = _cli(str(path), "--layer", "areas", "--kind", "restricted_area", "--owner-agency", "MY-PDRM")
    assert areas.returncode == 0, areas.stderr
    assert "0 segments and 1 zones imported, 0 rejected" in areas.stderr

    with engine.connect() as conn:
        seg = conn.execute(text("SELECT * FROM border_segments WHERE name = :n"), {"n": f"{committed} line"}).one()
        zone = conn.execute(text("SELECT * FROM zones WHERE name = :n"), {"n": f"{committed} zone"}).one()
    assert (seg.kind, seg.left_state, seg.right_state, seg.impact_level, seg.source) == (
        "land",
        "TH",
        "MY",
        "high",
        "agency.gpkg",
    )
    assert (zone.kind, zone.owner_agency, zone.member_agencies, zone.impact_level, zone.entry_alert) == (
        "restricted_area",
        "MY-PDRM",
        ["MY-PDRM"],
        "medium",
        True,
    )


def test_cli_exits_1_when_every_feature_is_rejected(engine, committed, tmp_path):
    path = _write(
        _frame(
            [
                {"name": f"{committed} no states", "geometry": LineString(SADAO_LINE)},
                {
                    "name": f"{committed} bad kind",
                    "kind": "watchtower",
                    "owner_agency": "TH-RTP",
                    "geometry": Polygon(SADAO_SQUARE),
                },
            ]
        ),
        tmp_path / "bad.geojson",
        driver="GeoJSON",
    )
    result = _cli(str(path))
    assert result.returncode == 1
    assert (
        f"feature 0 ({committed} no states): left_state and right_state must be two different ISO codes"
        in result.stderr
    )
    assert f"feature 1 ({committed} bad kind): zone kind must be one of" in result.stderr
    assert "0 segments and 0 zones imported, 2 rejected" in result.stderr
    with engine.connect() as conn:
        assert not conn.execute(text("SELECT count(*) FROM zones WHERE name LIKE :p"), {"p": f"{committed}%"}).scalar()


def test_cli_unreadable_or_missing_file(tmp_path):
    garbage = tmp_path / "garbage.geojson"
    garbage.write_text("this is not GeoJSON")
    result = _cli(str(garbage))
    assert result.returncode == 1
    assert "error:" in result.stderr and f"cannot read {garbage}" in result.stderr
    assert "Traceback" not in result.stderr

    missing = _cli(str(tmp_path / "missing.geojson"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr


def test_shapefile_short_field_names_are_read(session, tmp_path):
    p = unique("shp")
    path = _write(
        _frame(
            [
                {
                    "name": f"{p} line",
                    "left_state": "TH",
                    "right_state": "MY",
                    "impact_level": "high",
                    "geometry": LineString(SADAO_LINE),
                },
            ]
        ),
        tmp_path / "short.shp",
        driver="ESRI Shapefile",
    )
    report = service.import_features(session=session, frame=service.read_features(path), source="test")
    assert (report.segments, report.rejected) == (1, [])
    row = _rows(session, "SELECT right_state, impact_level FROM border_segments WHERE name = :n", n=f"{p} line")
    assert [tuple(r) for r in row] == [("MY", "high")]
