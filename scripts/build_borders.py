#!/usr/bin/env python
"""Rebuild the demo border data in geo/data/ from Natural Earth 1:10m (world-atlas 2.x).

Steps:
  1. ``npm ci`` in scripts/borders and ``node extract.mjs`` there: ASEAN country polygons and the
     shared land boundary of every ASEAN pair (topojson mesh) as intermediate GeoJSON.
  2. Land boundary segments: one LineString per contiguous part, left/right states by offset tests.
  3. Per demo area (Malacca + Singapore Straits, Sulu-Celebes Sea), in an azimuthal equidistant
     projection centred on the area: 12 nm territorial seas (buffer of land minus land), split
     between states by a Voronoi diagram of densified coastline points, and the equidistance lines
     where two territorial seas overlap.
  4. Zones: territorial seas, two joint patrol sectors, land border crossing points.
  5. Write RFC 7946 GeoJSON (EPSG:4326, 6 decimals, deterministic), check it, print a summary.

Run: .venv/bin/python scripts/build_borders.py   (see --help)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Geod, Proj, Transformer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "scripts" / "borders"
DEFAULT_OUT = ROOT / "geo" / "data"

SOURCE = "Natural Earth 1:10m admin-0 (world-atlas 2.x)"
TERRITORIAL_SEA_M = 22_224.0  # 12 nautical miles
MIN_SEGMENT_M = 200.0  # parts of boundary lines shorter than this are dropped
SIDE_OFFSET_M = 50.0  # perpendicular offset for the left/right tests
COAST_SPACING_M = 250.0  # densification of coastlines before the Voronoi diagram
LAND_MARGIN_DEG = 1.0  # land this far outside an area's bbox still counts (coasts, buffers)
MIN_ZONE_PART_M2 = 1_000.0  # polygon parts smaller than this (slivers) are dropped from zones
MIN_SECTOR_PART_M2 = 1_000_000.0  # sector parts under 1 km2 (pockets) are dropped
COUNTRIES_MAX_BYTES = 4_000_000  # simplify the non-core states only above this size
KEEP_FULL_DETAIL = {"TH", "MY", "SG", "BN"}
PRECISION_DEG = 1e-6

GEOD = Geod(ellps="WGS84")
WGS84 = CRS.from_epsg(4326)

# ASEAN member states in a fixed order (this order names the pairs: "Thailand–Malaysia").
STATES = {
    "TH": "Thailand",
    "MY": "Malaysia",
    "MM": "Myanmar",
    "LA": "Laos",
    "KH": "Cambodia",
    "ID": "Indonesia",
    "SG": "Singapore",
    "PH": "Philippines",
    "BN": "Brunei",
    "VN": "Vietnam",
    "TL": "Timor-Leste",
}
ORDER = {code: i for i, code in enumerate(STATES)}

LAND_IMPACT = {
    frozenset({"TH", "MY"}): "high",
    frozenset({"TH", "MM"}): "high",
    frozenset({"MY", "ID"}): "high",
    frozenset({"TH", "KH"}): "medium",
    frozenset({"TH", "LA"}): "medium",
}
SEA_IMPACT = {"Malacca Strait": "high", "Singapore Strait": "high", "Sulu–Celebes Sea": "high"}
MARITIME_AGENCY = {"TH": "TH-RTN", "MY": "MY-MMEA", "ID": "ID-BAKAMLA", "SG": "SG-PCG", "PH": "PH-PCG"}


@dataclass(frozen=True)
class Area:
    key: str
    title: str
    bbox: tuple[float, float, float, float]  # lon/lat
    center: tuple[float, float]  # lon, lat of the azimuthal equidistant projection

    @property
    def crs(self) -> CRS:
        lon, lat = self.center
        return CRS.from_proj4(f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m +no_defs")

    def sea_name(self, lon: float, lat: float) -> str:
        """The name of the water body a maritime segment lies in (by its representative point)."""
        if self.key == "malacca":
            if lon >= 103.35 and lat <= 1.7:
                return "Singapore Strait"
            if lon >= 101.5 and lat >= 4.0:
                return "Gulf of Thailand"
            return "Malacca Strait"
        if lat >= 6.8 and lon <= 117.6:
            return "Balabac Strait"
        return "Sulu–Celebes Sea"


AREAS = (
    Area("malacca", "Malacca–Singapore Straits area", (95.0, -1.5, 105.5, 7.0), (100.25, 2.75)),
    Area("sulu", "Sulu–Celebes Sea area", (116.0, 0.0, 126.0, 8.5), (121.0, 4.25)),
)

# Hand-drawn demo sector outlines (lon, lat); land is cut out afterwards, so vertices on land are fine.
MALACCA_SECTOR = [
    (95.30, 5.75),  # off Banda Aceh (IHO northern limit of the strait, Sumatra end)
    (98.30, 7.00),  # towards Phuket (IHO northern limit, clipped to the area)
    (100.80, 7.00),  # inland southern Thailand
    (101.20, 4.00),  # inland Perak
    (103.00, 2.00),  # inland Johor
    (104.00, 1.75),  # inland Johor
    (104.55, 1.45),  # eastern entrance of the Singapore Strait
    (104.60, 1.00),  # Bintan
    (103.60, 0.60),  # south of the Riau islands (Karimun, Kundur)
    (102.80, 0.80),  # inland Riau (Sumatra)
    (100.50, 1.80),  # inland Riau (Sumatra)
    (98.80, 3.40),  # inland North Sumatra
    (97.00, 4.80),  # inland Aceh
    (95.30, 5.40),  # inland Aceh (Banda Aceh)
]
SULU_SECTOR = [
    (116.90, 7.45),  # Balabac Strait, north of Banggi
    (118.50, 7.30),  # Sulu Sea
    (120.80, 7.20),  # Sulu Sea, west of Zamboanga
    (122.30, 7.20),  # inland Zamboanga peninsula
    (122.30, 6.40),  # east of Basilan
    (121.60, 5.30),  # Celebes Sea, south-east of Jolo
    (120.20, 4.20),  # Celebes Sea, south of Tawi-Tawi
    (119.00, 3.40),  # Celebes Sea
    (118.00, 2.60),  # off Berau (north-east Kalimantan)
    (117.20, 2.70),  # inland north-east Kalimantan
    (116.80, 4.40),  # inland Sabah/Kalimantan border
    (116.60, 6.40),  # inland Sabah
]
SECTORS = (
    (
        "Malacca Straits Patrol sector",
        "malacca",
        MALACCA_SECTOR,
        "MY-MMEA",
        ["MY-MMEA", "ID-BAKAMLA", "SG-PCG", "TH-RTN"],
    ),
    ("Sulu–Celebes trilateral sector", "sulu", SULU_SECTOR, "PH-PCG", ["PH-PCG", "MY-MMEA", "ID-BAKAMLA"]),
)

# Official land border crossing points (Thai side owns them); approximate to ~1 km.
CROSSINGS = (
    ("Sadao–Bukit Kayu Hitam crossing point", ("TH", "MY"), 100.421, 6.514),
    ("Padang Besar crossing point", ("TH", "MY"), 100.319, 6.662),
    ("Sungai Kolok–Rantau Panjang crossing point", ("TH", "MY"), 101.972, 6.025),
    ("Mae Sot–Myawaddy crossing point", ("TH", "MM"), 98.512, 16.699),
    ("Nong Khai–Vientiane Friendship Bridge crossing point", ("TH", "LA"), 102.716, 17.877),
    ("Aranyaprathet–Poipet crossing point", ("TH", "KH"), 102.559, 13.658),
)
CROSSING_RADIUS_M = 300.0


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def pair_name(a: str, b: str) -> str:
    return f"{STATES[a]}–{STATES[b]}"


def ordered_pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if ORDER[a] < ORDER[b] else (b, a)


def polygons_only(geom) -> MultiPolygon:
    """Valid MultiPolygon made of the polygonal parts of geom (empty MultiPolygon if none)."""
    if geom is None or geom.is_empty:
        return MultiPolygon()
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
    if not parts:
        return MultiPolygon()
    merged = shapely.union_all(parts)
    polys = [p for p in shapely.get_parts(merged) if p.geom_type == "Polygon" and not p.is_empty]
    return MultiPolygon(polys)


def lines_only(geom) -> list[LineString]:
    if geom is None or geom.is_empty:
        return []
    lines = [g for g in shapely.get_parts(geom) if g.geom_type in ("LineString", "MultiLineString")]
    if not lines:
        return []
    merged = shapely.line_merge(shapely.union_all(lines))
    return [g for g in shapely.get_parts(merged) if g.geom_type == "LineString" and not g.is_empty]


def geodesic_length(line: LineString) -> float:
    return float(GEOD.geometry_length(line))


def drop_small_parts(mp, min_area: float) -> MultiPolygon:
    return MultiPolygon([p for p in shapely.get_parts(mp) if p.geom_type == "Polygon" and p.area >= min_area])


def snap_polygon(geom) -> MultiPolygon:
    """Snap to the 1e-6 degree grid (keeps validity), orient per RFC 7946 (exterior counter-clockwise)."""
    snapped = polygons_only(shapely.set_precision(geom, PRECISION_DEG))
    return shapely.orient_polygons(snapped, exterior_cw=False)


def snap_line(line: LineString) -> LineString | None:
    coords = np.round(np.asarray(line.coords), 6)
    keep = np.ones(len(coords), dtype=bool)
    keep[1:] = np.any(coords[1:] != coords[:-1], axis=1)
    coords = coords[keep]
    return LineString(coords) if len(coords) >= 2 else None


def transformer(src: CRS, dst: CRS):
    tr = Transformer.from_crs(src, dst, always_xy=True)

    def apply(xy: np.ndarray) -> np.ndarray:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return lambda geom: shapely.transform(geom, apply)


def geodesic_circle(lon: float, lat: float, radius_m: float, n: int = 48) -> Polygon:
    azimuths = np.linspace(0.0, 360.0, n, endpoint=False)
    lons, lats, _ = GEOD.fwd(np.full(n, lon), np.full(n, lat), azimuths, np.full(n, radius_m))
    ring = list(zip(lons.tolist(), lats.tolist()))
    return Polygon(ring[::-1])  # fwd walks clockwise (by azimuth); reverse for counter-clockwise


# --------------------------------------------------------------------------------------------
# side tests
# --------------------------------------------------------------------------------------------


def side_votes_lonlat(line: LineString, regions: dict[str, object]) -> tuple[Counter, Counter]:
    """Offset the midpoint of every segment SIDE_OFFSET_M to the left and to the right (geodesic)
    and count which region contains each offset point."""
    xy = np.asarray(line.coords)
    lon0, lat0, lon1, lat1 = xy[:-1, 0], xy[:-1, 1], xy[1:, 0], xy[1:, 1]
    az, _, dist = GEOD.inv(lon0, lat0, lon1, lat1)
    mlon, mlat, _ = GEOD.fwd(lon0, lat0, az, np.asarray(dist) / 2.0)
    mask = np.asarray(dist) > 2 * SIDE_OFFSET_M / 10
    mlon, mlat, az = np.asarray(mlon)[mask], np.asarray(mlat)[mask], np.asarray(az)[mask]
    n = len(mlon)
    llon, llat, _ = GEOD.fwd(mlon, mlat, az - 90.0, np.full(n, SIDE_OFFSET_M))
    rlon, rlat, _ = GEOD.fwd(mlon, mlat, az + 90.0, np.full(n, SIDE_OFFSET_M))
    return _votes(np.asarray(llon), np.asarray(llat), regions), _votes(np.asarray(rlon), np.asarray(rlat), regions)


def _votes(x: np.ndarray, y: np.ndarray, regions: dict[str, object]) -> Counter:
    votes: Counter = Counter()
    hit = np.zeros(len(x), dtype=bool)
    for code, geom in regions.items():
        inside = shapely.contains_xy(geom, x, y)
        votes[code] += int(inside.sum())
        hit |= inside
    votes[None] += int((~hit).sum())
    return votes


def decide_sides(line: LineString, pair: tuple[str, str], regions: dict[str, object], label: str) -> tuple[str, str]:
    left_votes, right_votes = side_votes_lonlat(line, regions)
    left = max((c for c in left_votes if c is not None), key=lambda c: (left_votes[c], c), default=None)
    right = max((c for c in right_votes if c is not None), key=lambda c: (right_votes[c], c), default=None)
    assert left is not None and right is not None, f"{label}: no state found beside the line"
    assert left != right, f"{label}: same state ({left}) on both sides"
    assert {left, right} == set(pair), f"{label}: sides {left}/{right} do not match the pair {pair}"
    # the majority must be clear: the other state of the pair may only win a minority of tests
    assert left_votes[left] > left_votes[right] and right_votes[right] > right_votes[left], (
        f"{label}: ambiguous sides {dict(left_votes)} / {dict(right_votes)}"
    )
    return left, right


# --------------------------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------------------------


def run_extractor(work: Path, *, install: bool, console: Console) -> dict:
    npm = shutil.which("npm")
    node = shutil.which("node")
    if not npm or not node:
        raise SystemExit("node and npm are needed (to read the world-atlas TopoJSON)")
    if install or not (NODE_DIR / "node_modules" / "world-atlas").exists():
        cmd = [npm, "ci" if (NODE_DIR / "package-lock.json").exists() else "install", "--no-audit", "--no-fund"]
        result = subprocess.run(cmd, cwd=NODE_DIR, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    result = subprocess.run([node, "extract.mjs", str(work)], cwd=NODE_DIR, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"node extract.mjs failed:\n{result.stdout}\n{result.stderr}")
    console.log(result.stdout.strip())
    return json.loads((work / "meta.json").read_text())


def load_countries(work: Path) -> tuple[dict[str, MultiPolygon], dict[str, MultiPolygon]]:
    frame = gpd.read_file(work / "countries.geojson")
    states = {row.state: polygons_only(row.geometry) for row in frame.itertuples()}
    assert set(states) == set(STATES), f"missing states: {set(STATES) - set(states)}"
    states = {code: states[code] for code in STATES}
    neighbours_frame = gpd.read_file(work / "neighbours.geojson")
    others: dict[str, MultiPolygon] = {}
    for row in neighbours_frame.itertuples():
        key = f"other:{row.name}"
        geom = polygons_only(row.geometry)
        others[key] = polygons_only(shapely.union(others[key], geom)) if key in others else geom
    return states, dict(sorted(others.items()))


def build_countries(states: dict[str, MultiPolygon], console: Console) -> list[dict]:
    features = [
        {"properties": {"state": code, "name": STATES[code]}, "geometry": snap_polygon(geom)}
        for code, geom in states.items()
    ]
    size = len(dumps_collection(features))
    if size > COUNTRIES_MAX_BYTES:  # not reached with world-atlas 2.0.2 (about 1.3 MB)
        console.log(
            f"countries.geojson would be {size / 1e6:.1f} MB: simplifying states outside {sorted(KEEP_FULL_DETAIL)}"
        )
        for f in features:
            if f["properties"]["state"] not in KEEP_FULL_DETAIL:
                f["geometry"] = snap_polygon(shapely.simplify(f["geometry"], 0.002, preserve_topology=True))
    return features


def build_land_segments(work: Path, states: dict[str, MultiPolygon], others: dict[str, MultiPolygon]) -> list[dict]:
    meshes = gpd.read_file(work / "land_meshes.geojson")
    regions = {**states, **others}
    features = []
    for row in meshes.itertuples():
        a, b = ordered_pair(row.a, row.b)
        parts = []
        for part in lines_only(row.geometry):
            snapped = snap_line(part)
            if snapped is None:
                continue
            length = geodesic_length(snapped)
            if length >= MIN_SEGMENT_M:
                parts.append((length, snapped))
        parts.sort(key=lambda p: (-p[0], p[1].coords[0]))
        for i, (length, line) in enumerate(parts, start=1):
            name = f"{pair_name(a, b)} {i}"
            left, right = decide_sides(line, (a, b), {a: regions[a], b: regions[b]}, name)
            # cross-check against every other country too: nothing else may win a side
            all_left, all_right = side_votes_lonlat(line, regions)
            assert all_left.most_common(1)[0][0] == left and all_right.most_common(1)[0][0] == right, name
            features.append(
                {
                    "properties": {
                        "name": name,
                        "kind": "land",
                        "left_state": left,
                        "right_state": right,
                        "impact_level": LAND_IMPACT.get(frozenset({a, b}), "low"),
                        "source": SOURCE,
                    },
                    "geometry": line,
                    "_length_m": length,
                }
            )
    return features


@dataclass
class AreaResult:
    area: Area
    territorial_seas: dict[str, MultiPolygon]  # lon/lat
    segments: list[dict]
    sector_land: object  # projected land of the area (for the sector)
    to_lonlat: object
    to_proj: object
    gap_m2: float
    overlap_m2: float


def build_area(area: Area, states: dict[str, MultiPolygon], others: dict[str, MultiPolygon]) -> AreaResult:
    to_proj = transformer(WGS84, area.crs)
    to_lonlat = transformer(area.crs, WGS84)
    x0, y0, x1, y1 = area.bbox
    m = LAND_MARGIN_DEG
    wide_ll = shapely.segmentize(box(x0 - m, y0 - m, x1 + m, y1 + m), 0.05)
    area_ll = shapely.segmentize(box(x0, y0, x1, y1), 0.05)
    wide = to_proj(wide_ll)
    area_box = to_proj(area_ll)

    # land of every country near the area, projected
    land: dict[str, MultiPolygon] = {}
    for code, geom in {**states, **others}.items():
        clipped = polygons_only(shapely.intersection(geom, wide_ll))
        if not clipped.is_empty:
            land[code] = polygons_only(to_proj(clipped))
    land_all = shapely.union_all(list(land.values()))
    land_all_boundary = land_all.boundary
    frame_line = wide.boundary.buffer(1.0)

    # raw 12 nm territorial seas: buffer of land minus all land, within the area
    raw: dict[str, MultiPolygon] = {}
    for code, geom in land.items():
        if code not in STATES:
            continue
        ts = shapely.difference(shapely.buffer(geom, TERRITORIAL_SEA_M, quad_segs=16), land_all)
        ts = polygons_only(shapely.intersection(ts, area_box))
        if not ts.is_empty:
            raw[code] = ts

    # pairwise overlaps (the only places where the split matters)
    codes = list(raw)
    overlaps: dict[tuple[str, str], MultiPolygon] = {}
    for i, a in enumerate(codes):
        for b in codes[i + 1 :]:
            ov = polygons_only(shapely.intersection(raw[a], raw[b]))
            if not ov.is_empty and ov.area > MIN_ZONE_PART_M2:
                overlaps[ordered_pair(a, b)] = ov
    overlap_all = shapely.union_all(list(overlaps.values())) if overlaps else MultiPolygon()

    # Voronoi diagram of densified coastline points labelled by state
    points, labels = [], []
    for code, geom in land.items():
        coast = shapely.intersection(geom.boundary, land_all_boundary)  # drops shared land boundaries
        coast = shapely.difference(coast, frame_line)  # drops the artificial edges of the clip frame
        coast = shapely.segmentize(coast, COAST_SPACING_M)
        xy = shapely.get_coordinates(coast)
        points.append(xy)
        labels.extend([code] * len(xy))
    xy = np.concatenate(points)
    label_arr = np.asarray(labels, dtype=object)
    _, first = np.unique(np.round(xy, 3), axis=0, return_index=True)
    first.sort()  # first occurrence wins (fixed state order) -> deterministic
    xy, label_arr = xy[first], label_arr[first]

    territorial: dict[str, MultiPolygon] = {}
    cells_by_state: dict[str, object] = {}
    if overlaps:
        cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(xy), extend_to=wide, ordered=True))
        assert len(cells) == len(xy), "voronoi cells are not one per point"
        tree = shapely.STRtree(cells)
        hits = np.sort(tree.query(overlap_all, predicate="intersects"))
        for code in sorted(set(label_arr[hits]), key=lambda c: (c not in ORDER, ORDER.get(c, 0), c)):
            cells_by_state[code] = shapely.union_all(cells[hits[label_arr[hits] == code]])
    for code, ts in raw.items():
        if overlap_all.is_empty:
            part = ts
        else:
            outside = shapely.difference(ts, overlap_all)
            inside = shapely.intersection(shapely.intersection(ts, overlap_all), cells_by_state.get(code, Polygon()))
            part = shapely.union(outside, inside)
        territorial[code] = drop_small_parts(polygons_only(part), MIN_ZONE_PART_M2)
    union_raw = shapely.union_all(list(raw.values()))
    union_final = shapely.union_all(list(territorial.values()))
    gap = float(shapely.difference(union_raw, union_final).area)
    overlap_after = 0.0
    tcodes = list(territorial)
    for i, a in enumerate(tcodes):
        for b in tcodes[i + 1 :]:
            overlap_after += float(shapely.intersection(territorial[a], territorial[b]).area)

    # equidistance lines: shared Voronoi edges of the two states inside their overlap
    segments = []
    for (a, b), ov in overlaps.items():
        if a not in cells_by_state or b not in cells_by_state:
            continue
        edge = shapely.intersection(cells_by_state[a].boundary, cells_by_state[b].boundary)
        edge = shapely.intersection(shapely.union_all(lines_only(edge)), ov) if lines_only(edge) else None
        for line in lines_only(edge):
            segments.append({"pair": (a, b), "geometry_proj": line})

    ts_lonlat = {code: snap_polygon(to_lonlat(geom)) for code, geom in territorial.items()}
    return AreaResult(area, ts_lonlat, segments, land_all, to_lonlat, to_proj, gap, overlap_after)


def name_maritime_segments(results: list[AreaResult]) -> list[dict]:
    features = []
    groups: dict[tuple[str, str, str], list[tuple[float, LineString]]] = {}
    owner: dict[tuple[str, str, str], AreaResult] = {}
    for res in results:
        for seg in res.segments:
            line = snap_line(res.to_lonlat(seg["geometry_proj"]))
            if line is None:
                continue
            length = geodesic_length(line)
            if length < MIN_SEGMENT_M:
                continue
            rp = line.interpolate(0.5, normalized=True)
            sea = res.area.sea_name(rp.x, rp.y)
            key = (*seg["pair"], sea)
            groups.setdefault(key, []).append((length, line))
            owner[key] = res
    for key in sorted(groups, key=lambda k: (ORDER[k[0]], ORDER[k[1]], k[2])):
        a, b, sea = key
        res = owner[key]
        parts = sorted(groups[key], key=lambda p: (-p[0], p[1].coords[0]))
        for i, (length, line) in enumerate(parts, start=1):
            name = f"{pair_name(a, b)} ({sea}) {i}"
            left, right = decide_sides(line, (a, b), {a: res.territorial_seas[a], b: res.territorial_seas[b]}, name)
            features.append(
                {
                    "properties": {
                        "name": name,
                        "kind": "maritime",
                        "left_state": left,
                        "right_state": right,
                        "impact_level": SEA_IMPACT.get(sea, "medium"),
                        "source": f"{SOURCE}; 12 nm equidistance computed by scripts/build_borders.py",
                    },
                    "geometry": line,
                    "_length_m": length,
                }
            )
    return features


def build_zones(results: list[AreaResult]) -> list[dict]:
    zones = []
    for res in results:
        for code, geom in res.territorial_seas.items():
            agency = MARITIME_AGENCY.get(code)
            if agency is None or geom.is_empty:
                continue
            zones.append(
                {
                    "properties": {
                        "name": f"{STATES[code]} territorial sea ({res.area.title})",
                        "kind": "territorial_sea",
                        "state": code,
                        "owner_agency": agency,
                        "member_agencies": [agency],
                        "impact_level": "medium",
                    },
                    "geometry": geom,
                }
            )
    by_key = {res.area.key: res for res in results}
    for name, key, outline, owner, members in SECTORS:
        res = by_key[key]
        x0, y0, x1, y1 = res.area.bbox
        shape = shapely.intersection(Polygon(outline), box(x0, y0, x1, y1))
        shape_proj = res.to_proj(shapely.segmentize(shape, 0.02))
        sea = polygons_only(shapely.difference(shape_proj, res.sector_land))
        sea = drop_small_parts(sea, MIN_SECTOR_PART_M2)
        zones.append(
            {
                "properties": {
                    "name": name,
                    "kind": "joint_patrol_sector",
                    "state": None,
                    "owner_agency": owner,
                    "member_agencies": members,
                    "impact_level": "high",
                },
                "geometry": snap_polygon(res.to_lonlat(sea)),
            }
        )
    for name, _pair, lon, lat in CROSSINGS:
        zones.append(
            {
                "properties": {
                    "name": name,
                    "kind": "crossing_point",
                    "state": "TH",
                    "owner_agency": "TH-RTP",
                    "member_agencies": ["TH-RTP"],
                    "impact_level": "low",
                },
                "geometry": snap_polygon(geodesic_circle(lon, lat, CROSSING_RADIUS_M)),
            }
        )
    return zones


# --------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------


def _num(v: float) -> str:
    r = round(float(v), 6)
    if r == 0:
        r = 0.0
    return repr(r)


def _ring(coords) -> str:
    return "[" + ",".join(f"[{_num(x)},{_num(y)}]" for x, y, *_ in coords) + "]"


def geometry_json(geom) -> str:
    if geom.geom_type == "LineString":
        return '{"type":"LineString","coordinates":' + _ring(geom.coords) + "}"
    if geom.geom_type == "Polygon":
        geom = MultiPolygon([geom])
    if geom.geom_type == "MultiPolygon":
        polys = []
        for poly in geom.geoms:
            rings = [_ring(poly.exterior.coords)] + [_ring(r.coords) for r in poly.interiors]
            polys.append("[" + ",".join(rings) + "]")
        return '{"type":"MultiPolygon","coordinates":[' + ",".join(polys) + "]}"
    raise ValueError(f"unexpected geometry {geom.geom_type}")


def dumps_collection(features: list[dict]) -> str:
    lines = []
    for f in features:
        props = json.dumps(f["properties"], ensure_ascii=False, separators=(",", ":"))
        lines.append('{"type":"Feature","properties":' + props + ',"geometry":' + geometry_json(f["geometry"]) + "}")
    return '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"


def write_collection(path: Path, features: list[dict]) -> str:
    text = dumps_collection(features)
    path.write_text(text, encoding="utf-8")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------
# provenance
# --------------------------------------------------------------------------------------------


def max_scale_error(area: Area) -> float:
    """Largest Tissot semi-major axis minus 1 of the area's projection over its bbox."""
    x0, y0, x1, y1 = area.bbox
    lon, lat = np.meshgrid(np.linspace(x0, x1, 41), np.linspace(y0, y1, 41))
    factors = Proj(area.crs).get_factors(lon.ravel(), lat.ravel())
    return float(np.max(factors.tissot_semimajor) - 1.0)


def crossing_offsets(land: list[dict], countries: list[dict]) -> list[tuple[str, float, float, float, str]]:
    """For each crossing point: its distance to the Natural Earth line of its pair, and the state
    whose Natural Earth polygon contains its centre."""
    rows = []
    for name, pair, lon, lat in CROSSINGS:
        lines = [
            f["geometry"] for f in land if {f["properties"]["left_state"], f["properties"]["right_state"]} == set(pair)
        ]
        dist = min(GEOD.inv(lon, lat, *nearest_lonlat(g, lon, lat))[2] for g in lines)
        inside = [c["properties"]["state"] for c in countries if c["geometry"].contains(Point(lon, lat))]
        rows.append((name, lon, lat, dist, inside[0] if inside else "-"))
    return rows


def write_provenance(
    out: Path,
    meta: dict,
    countries: list[dict],
    land: list[dict],
    maritime: list[dict],
    zones: list[dict],
    hashes: dict[str, str],
) -> None:
    step_lon, step_lat = meta["transform"]["scale"]
    kinds = Counter(z["properties"]["kind"] for z in zones)

    def seg_rows(features: list[dict]) -> str:
        rows = []
        for f in features:
            p = f["properties"]
            mid = f["geometry"].interpolate(0.5, normalized=True)
            rows.append(
                f"| {p['name']} | {p['left_state']} | {p['right_state']} | {p['impact_level']} | "
                f"{f['_length_m'] / 1000:,.1f} | {mid.x:.2f}, {mid.y:.2f} |"
            )
        return "\n".join(rows)

    crossing_rows = "\n".join(
        f"| {name} | {lon:.3f}, {lat:.3f} | {dist / 1000:.1f} km | {state} |"
        for name, lon, lat, dist, state in crossing_offsets(land, countries)
    )
    zone_rows = "\n".join(
        f"| {z['properties']['name']} | {z['properties']['kind']} | {z['properties']['state'] or '–'} | "
        f"{z['properties']['owner_agency']} | {', '.join(z['properties']['member_agencies'])} | "
        f"{z['properties']['impact_level']} |"
        for z in zones
    )

    sizes = {name: (out / name).stat().st_size for name in hashes}
    file_rows = "\n".join(f"| `{name}` | {sizes[name]:,} | `{digest}` |" for name, digest in hashes.items())
    areas = "\n".join(
        f"| {a.title} | lon {a.bbox[0]}–{a.bbox[2]}, lat {a.bbox[1]}–{a.bbox[3]} | "
        f"`+proj=aeqd +lat_0={a.center[1]} +lon_0={a.center[0]} +datum=WGS84` | {max_scale_error(a) * 100:.2f} % |"
        for a in AREAS
    )
    found: dict[str, set[str]] = {}
    for f in maritime:
        p = f["properties"]
        water = p["name"].split("(")[1].split(")")[0]
        found.setdefault(water, set()).add("–".join(sorted((p["left_state"], p["right_state"]))))
    overlap_note = (
        "Pairs with an overlap, by water: "
        + "; ".join(f"{water}: {', '.join(sorted(pairs))}" for water, pairs in sorted(found.items()))
        + ". "
    )
    missing = [p for p in ("ID–MY", "ID–SG", "MY–SG", "MY–PH", "ID–PH") if not any(p in v for v in found.values())]
    if missing:
        overlap_note += f"No overlap (so no line) for {', '.join(missing)} with these coastlines. "
    overlap_note += (
        "The 12 nm seas of Peninsular Malaysia and Sumatra, drawn from the Natural Earth coastline, "
        "overlap only where the Malacca Strait is narrowest; from real baselines the overlap is longer."
    )
    offsets = crossing_offsets(land, countries)
    worst = max(offsets, key=lambda r: r[3])
    text = f"""# Provenance of the shipped border data

These files are **demo data** for Borderwatch. They are generated; do not edit them by hand.
Rebuild with:

```sh
.venv/bin/python scripts/build_borders.py          # --help for options
```

The script runs `npm ci` and `node extract.mjs` in `scripts/borders/` (pinned npm packages
`world-atlas@{meta["world-atlas"]}` and `topojson-client@{meta["topojson-client"]}`, locked by
`scripts/borders/package-lock.json`), then does all geometry in Python (geopandas, shapely 2,
pyproj). It is deterministic: two runs give byte-identical files (sha256 below). It finishes with
checks of the written files and a summary table.

## Source and licence

- **Natural Earth** 1:10m Cultural Vectors, *Admin 0 – Countries* (version 4.1.0), public domain
  (<https://www.naturalearthdata.com/about/terms-of-use/>). Natural Earth shows *de facto*
  boundaries and takes no position on disputes.
- Redistributed as TopoJSON by the npm package **world-atlas** {meta["world-atlas"]}
  (`countries-10m.json`, ISC licence, © Michael Bostock), read with **topojson-client**
  {meta["topojson-client"]} (ISC licence). world-atlas does not simplify the 10m data, but it
  *quantises* it to a 10⁵ × 10⁵ grid: {step_lon:.5f}° of longitude × {step_lat:.5f}° of latitude,
  about 400 m × 190 m at the equator.
- Country ids in world-atlas are ISO 3166-1 numeric codes (TH 764, MY 458, MM 104, LA 418,
  KH 116, ID 360, SG 702, PH 608, BN 096, VN 704, TL 626); all eleven are present and are mapped
  to ISO alpha-2 codes by `extract.mjs` (with a fallback on the Natural Earth name).
- The crossing point locations are not from Natural Earth: they were set by hand from general
  knowledge of the crossings, to about 1 km.

## Files

| file | bytes | sha256 |
| --- | ---: | --- |
{file_rows}

All files are RFC 7946 GeoJSON FeatureCollections in EPSG:4326 (longitude, latitude), coordinates
rounded to 6 decimals (polygons snapped to that grid with `shapely.set_precision`, so they stay
valid), polygon exteriors counter-clockwise, every polygon a MultiPolygon, every segment a single
LineString.

### `countries.geojson` — {len(countries)} features

The ASEAN member states ({", ".join(f["properties"]["state"] for f in countries)}) as MultiPolygons with
properties `{{"state", "name"}}`, at full 1:10m detail (no simplification was needed: the file is
well under 4 MB). A few Natural Earth polygons are invalid after quantisation (self-intersections
in MM, ID, PH, VN); they are repaired with `shapely.make_valid`, keeping the polygonal parts.
Shared borders keep identical vertices on both sides (they come from the same TopoJSON arcs).

### `land_boundaries.geojson` — {len(land)} features (kind `land`)

For every pair of ASEAN states, `topojson.mesh(topology, countries, (a, b) => a !== b && <pair>)`
gives exactly the arcs the two countries share. Each mesh is split into contiguous parts (one
LineString each, numbered by decreasing length: "Thailand–Malaysia 1"); parts shorter than
{MIN_SEGMENT_M:.0f} m are dropped. Impact levels (demo): TH–MY, TH–MM, MY–ID high; TH–KH, TH–LA
medium; the other pairs low.

| name | left | right | impact | km | middle (lon, lat) |
| --- | --- | --- | --- | ---: | --- |
{seg_rows(land)}

### `maritime_boundaries.geojson` — {len(maritime)} features (kind `maritime`)

Equidistance (median) lines where two states' 12-nautical-mile (22,224 m) territorial seas, as
computed below, overlap, in two demo areas:

| area | bbox | projection used for all metric work | largest scale error in the bbox |
| --- | --- | --- | ---: |
{areas}

An azimuthal equidistant projection centred on each area is exact along lines through the centre
and stretches other directions by at most the factor above (in the bbox corners; under 0.1 % within
about 4.5° of the centre, where the overlaps are), i.e. at most about 50 m on a 22 km buffer.
Method:

1. Land of every country within 1° of the area bbox, projected.
2. Coastlines = country outlines minus shared land boundaries and minus the clip frame,
   densified every {COAST_SPACING_M:.0f} m; the points are labelled with their state.
3. `shapely.voronoi_polygons(..., ordered=True)` of those points; the cells are dissolved by state.
4. Raw territorial sea of a state = buffer of its land by 22,224 m minus all land, clipped to the
   area bbox. Where two raw territorial seas overlap, the shared edge of the two states' Voronoi
   regions inside the overlap is the equidistance line (one LineString per contiguous part,
   parts under {MIN_SEGMENT_M:.0f} m dropped).
5. Names: "<state>–<state> (<water>) n", the water named by the middle of the line (Malacca
   Strait, Singapore Strait, Gulf of Thailand, Sulu–Celebes Sea, Balabac Strait). Impact: Malacca
   and Singapore Straits and the Sulu–Celebes Sea high, other waters medium.

{overlap_note}

| name | left | right | impact | km | middle (lon, lat) |
| --- | --- | --- | --- | ---: | --- |
{seg_rows(maritime)}

### `zones.geojson` — {len(zones)} features

{", ".join(f"{n} `{k}`" for k, n in sorted(kinds.items()))}. Properties `{{"name", "kind", "state",
"owner_agency", "member_agencies", "impact_level"}}`.

- `territorial_sea`: each state's 12 nm sea in each demo area, from step 4 above, the overlaps
  split along the equidistance (a point belongs to the state whose coast is nearer), so the
  territorial seas of one area do not overlap and leave no gap. Owner: the state's maritime
  agency (TH-RTN, MY-MMEA, ID-BAKAMLA, SG-PCG, PH-PCG); impact medium.
- `joint_patrol_sector`: two demo sectors, drawn by hand as rough outlines (vertices in
  `build_borders.py`, land cut out afterwards, water pockets under 1 km² dropped):
  the Malacca Straits Patrol sector (the strait from the line Aceh–Phuket, clipped at lat 7°, to
  the eastern entrance of the Singapore Strait, including the Riau islands' waters) and the
  Sulu–Celebes trilateral sector (the sea between Sabah, the Sulu archipelago and north-east
  Kalimantan). They are not the agreed patrol areas. Impact high.
- `crossing_point`: circles of {CROSSING_RADIUS_M:.0f} m radius (geodesic, 48 vertices) around official
  land border crossings, owned by the Thai side (TH-RTP), impact low. Locations are approximate
  (about 1 km); because the Natural Earth line is generalised, a circle does not necessarily
  touch it:

| crossing | lon, lat | distance to the Natural Earth line | Natural Earth state at centre |
| --- | --- | ---: | --- |
{crossing_rows}

| name | kind | state | owner | members | impact |
| --- | --- | --- | --- | --- | --- |
{zone_rows}

## How left and right were determined

`left_state` / `right_state` are the states on the left and right hand when walking a line from
its first to its last vertex. For every segment of a line, the script takes the segment's
midpoint and moves {SIDE_OFFSET_M:.0f} m perpendicular to the left and to the right (geodesic, pyproj),
and counts which polygon contains each offset point: the two countries for land lines (and, as a
cross-check, every other country nearby), the two final territorial seas for maritime lines. The
majority wins; the script asserts that the two sides differ, are exactly the pair, and that the
majority is clear. The directions themselves are those of the TopoJSON arcs (land) and of the
Voronoi edges (sea); they are not normalised.

## Accuracy and limits

- **Generalisation**: 1:10m data is meant for maps at about 1:10,000,000; boundaries and
  coastlines are off by hundreds of metres to a few kilometres (the {worst[0].removesuffix(" crossing point")}
  crossing lies {worst[3] / 1000:.1f} km from the Natural Earth line), small islands are missing or simplified, and
  quantisation adds up to about 200 m. Do not use these lines to decide a real crossing.
- **Territorial seas** are measured from the Natural Earth coastline, not from the legal
  (normal or straight archipelagic) baselines of UNCLOS, so they are narrower than the real ones
  in many places (Indonesia and the Philippines are archipelagic states).
- **Maritime boundaries** are demo equidistance lines between these coastlines. They are not the
  agreed or claimed boundaries (e.g. the 1970 Indonesia–Malaysia Malacca Strait agreement, the
  Singapore Strait agreements), and they ignore disputes.
- The joint patrol sectors and crossing points are illustrations, not official areas.
"""
    (out / "PROVENANCE.md").write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------


def check_outputs(out: Path) -> list[tuple[str, str]]:
    """Re-read the written files and check them; returns (check, result) rows. Raises on failure."""
    rows = []
    countries = gpd.read_file(out / "countries.geojson")
    land = gpd.read_file(out / "land_boundaries.geojson")
    sea = gpd.read_file(out / "maritime_boundaries.geojson")
    zones = gpd.read_file(out / "zones.geojson")
    for name, frame in (("countries", countries), ("zones", zones)):
        bad = frame[~frame.is_valid]
        assert bad.empty, f"invalid polygons in {name}: {list(bad['name'])}"
        assert set(frame.geom_type) <= {"MultiPolygon"}, f"{name}: {set(frame.geom_type)}"
    rows.append(("all polygons valid MultiPolygons", "yes"))
    for name, frame in (("land", land), ("maritime", sea)):
        assert set(frame.geom_type) == {"LineString"}, f"{name}: {set(frame.geom_type)}"
        assert (frame.left_state != frame.right_state).all()
        assert frame["name"].is_unique
    assert zones["name"].is_unique
    rows.append(("segments are LineStrings, left≠right, names unique", "yes"))

    def state_at(lon: float, lat: float) -> str | None:
        hit = countries[countries.contains(Point(lon, lat))]
        return hit.iloc[0]["state"] if len(hit) else None

    for label, lon, lat, want in (
        ("Hat Yai", 100.47, 7.01, "TH"),
        ("Alor Setar", 100.37, 6.12, "MY"),
        ("Singapore", 103.85, 1.29, "SG"),
        ("Keningau", 116.16, 5.34, "MY"),
        ("Tarakan", 117.6, 3.3, "ID"),
        ("Jolo", 121.0, 6.05, "PH"),
    ):
        got = state_at(lon, lat)
        assert got == want, f"{label} ({lon}, {lat}) lies in {got}, expected {want}"
        rows.append((f"{label} ({lon}, {lat}) lies in", got))

    thmy = land[land["name"].str.startswith("Thailand–Malaysia")]
    assert len(thmy), "no Thailand–Malaysia land segment"
    minx, miny, maxx, maxy = thmy.total_bounds
    assert 100.0 <= minx and maxx <= 102.2 and 5.5 <= miny and maxy <= 7.0, thmy.total_bounds
    rows.append(("TH–MY land bounds", f"lon {minx:.3f}–{maxx:.3f}, lat {miny:.3f}–{maxy:.3f}"))

    walk = LineString([(100.47, 7.01), (100.37, 6.12)])
    crossed = thmy[thmy.intersects(walk)]
    assert len(crossed) == 1, "Hat Yai → Alor Setar must cross one TH–MY segment"
    seg = crossed.iloc[0]
    # which side is Hat Yai on? sign of the cross product at the crossing point
    line = seg.geometry
    at = line.project(
        line.intersection(walk) if line.intersection(walk).geom_type == "Point" else line.intersection(walk).geoms[0]
    )
    p0, p1 = line.interpolate(max(at - 1e-4, 0)), line.interpolate(min(at + 1e-4, line.length))
    cross = (p1.x - p0.x) * (7.01 - p0.y) - (p1.y - p0.y) * (100.47 - p0.x)
    hat_yai_side = seg.left_state if cross > 0 else seg.right_state
    assert hat_yai_side == "TH", f"Hat Yai is on the {hat_yai_side} side of {seg['name']}"
    rows.append(
        (
            f"Hat Yai→Alor Setar crosses {seg['name']}",
            f"left={seg.left_state} right={seg.right_state}; Hat Yai side = TH",
        )
    )

    kinds = Counter(zones["kind"])
    assert kinds["territorial_sea"] and kinds["joint_patrol_sector"] == 2 and kinds["crossing_point"] >= 6
    sea_pairs = {frozenset((r.left_state, r.right_state)) for r in sea.itertuples()}
    for pair in ({"MY", "ID"}, {"SG", "MY"}, {"SG", "ID"}, {"MY", "PH"}):
        assert frozenset(pair) in sea_pairs, f"no maritime segment {pair}"
    rows.append(("maritime pairs present", ", ".join(sorted("–".join(sorted(p)) for p in sea_pairs))))

    # crossing points: distance to the Natural Earth boundary of their pair
    for name, pair, lon, lat in CROSSINGS:
        segs = land[land.apply(lambda r: {r.left_state, r.right_state} == set(pair), axis=1)]
        dist = min(GEOD.inv(lon, lat, *nearest_lonlat(g, lon, lat))[2] for g in segs.geometry)
        rows.append((f"{name}: to NE boundary", f"{dist / 1000:.2f} km"))
    return rows


def nearest_lonlat(line: LineString, lon: float, lat: float) -> tuple[float, float]:
    p = line.interpolate(line.project(Point(lon, lat)))
    return p.x, p.y


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "Rebuild geo/data/{countries,land_boundaries,maritime_boundaries,zones}.geojson from Natural "
            "Earth 1:10m (npm world-atlas 2.x via topojson-client). Deterministic: the same inputs give "
            "byte-identical files."
        ),
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="directory for the intermediate GeoJSON (default: a temporary directory, removed afterwards)",
    )
    parser.add_argument(
        "--skip-npm", action="store_true", help="do not run npm ci if scripts/borders/node_modules exists"
    )
    parser.add_argument("--no-check", action="store_true", help="skip the checks of the written files")
    args = parser.parse_args(argv)

    console = Console(stderr=True)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    tmp = None
    if args.work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="borders-")
        work = Path(tmp.name)
    else:
        work = args.work_dir
        work.mkdir(parents=True, exist_ok=True)

    steps = ["npm ci + node extract.mjs", "countries", "land boundaries"]
    steps += [f"area: {a.title}" for a in AREAS]
    steps += ["maritime boundaries", "zones", "write files + PROVENANCE.md", "check files"]
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("building", total=len(steps))

            def step(i: int) -> None:
                progress.update(task, description=steps[i])

            step(0)
            meta = run_extractor(work, install=not args.skip_npm, console=console)
            progress.advance(task)

            step(1)
            states, others = load_countries(work)
            countries = build_countries(states, console)
            progress.advance(task)

            step(2)
            land = build_land_segments(work, states, others)
            progress.advance(task)

            results = []
            for i, area in enumerate(AREAS):
                step(3 + i)
                results.append(build_area(area, states, others))
                progress.advance(task)

            step(3 + len(AREAS))
            maritime = name_maritime_segments(results)
            progress.advance(task)

            step(4 + len(AREAS))
            zones = build_zones(results)
            progress.advance(task)

            step(5 + len(AREAS))
            hashes = {
                "countries.geojson": write_collection(out / "countries.geojson", countries),
                "land_boundaries.geojson": write_collection(out / "land_boundaries.geojson", land),
                "maritime_boundaries.geojson": write_collection(out / "maritime_boundaries.geojson", maritime),
                "zones.geojson": write_collection(out / "zones.geojson", zones),
            }
            write_provenance(out, meta, countries, land, maritime, zones, hashes)
            progress.advance(task)

            step(6 + len(AREAS))
            checks = [] if args.no_check else check_outputs(out)
            progress.advance(task)
    finally:
        if tmp is not None:
            tmp.cleanup()

    # summary
    table = Table(
        title=f"geo data built from world-atlas {meta['world-atlas']} / topojson-client {meta['topojson-client']}"
    )
    for col in ("file", "kind", "features", "detail"):
        table.add_column(col)
    table.add_row(
        "countries.geojson", "state", str(len(countries)), " ".join(f["properties"]["state"] for f in countries)
    )
    for kind, feats in (("land", land), ("maritime", maritime)):
        pairs = Counter(f"{f['properties']['left_state']}/{f['properties']['right_state']}" for f in feats)
        km = sum(f["_length_m"] for f in feats) / 1000
        fname = "land_boundaries.geojson" if kind == "land" else "maritime_boundaries.geojson"
        table.add_row(
            fname, kind, str(len(feats)), f"{km:,.0f} km; " + ", ".join(f"{k}×{v}" for k, v in sorted(pairs.items()))
        )
    for kind, n in sorted(Counter(z["properties"]["kind"] for z in zones).items()):
        table.add_row("zones.geojson", kind, str(n), "")
    console.print(table)

    seg_table = Table(title="segments")
    for col in ("name", "kind", "left", "right", "impact", "km"):
        seg_table.add_column(col)
    for f in land + maritime:
        p = f["properties"]
        seg_table.add_row(
            p["name"], p["kind"], p["left_state"], p["right_state"], p["impact_level"], f"{f['_length_m'] / 1000:,.1f}"
        )
    console.print(seg_table)

    area_table = Table(title="territorial sea split")
    for col in ("area", "states", "unassigned m²", "double-assigned m²"):
        area_table.add_column(col)
    for res in results:
        area_table.add_row(
            res.area.title, " ".join(res.territorial_seas), f"{res.gap_m2:,.0f}", f"{res.overlap_m2:,.0f}"
        )
    console.print(area_table)

    if checks:
        check_table = Table(title="checks")
        check_table.add_column("check")
        check_table.add_column("result")
        for c, r in checks:
            check_table.add_row(c, r)
        console.print(check_table)

    files = Table(title=f"files in {out}")
    for col in ("file", "bytes", "sha256"):
        files.add_column(col)
    total = 0
    for name, digest in hashes.items():
        size = (out / name).stat().st_size
        total += size
        files.add_row(name, f"{size:,}", digest[:16])
    files.add_row("total", f"{total:,}", "")
    console.print(files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
