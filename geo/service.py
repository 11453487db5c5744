"""The spatial core's services: agencies and states, border segments and zones, boundary import."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from geo.models import IMPACT_LEVELS, ZONE_KINDS

DATA_DIR = Path(__file__).resolve().parent / "data"
SHIPPED_FILES = ("countries.geojson", "land_boundaries.geojson", "maritime_boundaries.geojson", "zones.geojson")
# Zones whose entry is an alert by default; the others serve scoping and display.
ENTRY_ALERT_KINDS = {"border_buffer", "restricted_area"}


@dataclass
class ImportReport:
    """What an import did, feature by feature."""

    segments: int = 0
    zones: int = 0
    states: int = 0
    repaired: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def ensure_agencies(*, session: Session, agencies: Iterable[dict] | None = None) -> int:
    """Create the agencies listed (default: the shipped ASEAN agency list) that do not exist yet."""
    if agencies is None:
        agencies = json.loads((DATA_DIR / "agencies.json").read_text())
    rows = [{"code": a["code"], "country": a["country"], "name": a["name"]} for a in agencies]
    if not rows:
        return 0
    result = session.execute(
        text(
            "INSERT INTO agencies (code, country, name) "
            "SELECT * FROM unnest(CAST(:codes AS text[]), CAST(:countries AS text[]), CAST(:names AS text[])) "
            "ON CONFLICT (code) DO NOTHING"
        ),
        {
            "codes": [r["code"] for r in rows],
            "countries": [r["country"] for r in rows],
            "names": [r["name"] for r in rows],
        },
    )
    return result.rowcount


def land_agencies() -> dict[str, str]:
    """The agency that owns land-border zones of each state (shipped list)."""
    agencies = json.loads((DATA_DIR / "agencies.json").read_text())
    return {a["country"]: a["code"] for a in agencies if a["domain"] == "land"}


def read_features(path: Path, *, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read any format geopandas reads, in EPSG:4326 (a file without a CRS is taken as 4326)."""
    try:
        frame = gpd.read_file(path, layer=layer) if layer else gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InvalidInput(f"cannot read {path}: {exc}") from exc
    if frame.crs is None:
        frame = frame.set_crs(4326)
    elif frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    return frame


def _valid_geometry(geom: BaseGeometry | None, want: str, label: str, report: ImportReport) -> BaseGeometry | None:
    """Repair what can be repaired (with a message), reject the rest (with a message)."""
    if geom is None or geom.is_empty:
        report.rejected.append(f"{label}: empty geometry")
        return None
    if want == "line":
        parts = [g for g in getattr(geom, "geoms", [geom]) if g.geom_type == "LineString"]
        if not parts:
            report.rejected.append(f"{label}: expected a line, got {geom.geom_type}")
            return None
        geom = shapely.MultiLineString(parts) if len(parts) > 1 else parts[0]
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        fixed = shapely.make_valid(geom)
        if want == "polygon":
            polys = [g for g in getattr(fixed, "geoms", [fixed]) if g.geom_type in ("Polygon", "MultiPolygon")]
            fixed = shapely.unary_union(polys) if polys else None
        if fixed is None or fixed.is_empty:
            report.rejected.append(f"{label}: invalid geometry ({reason}) that cannot be repaired")
            return None
        report.repaired.append(f"{label}: repaired invalid geometry ({reason})")
        geom = fixed
    if want == "polygon" and geom.geom_type not in ("Polygon", "MultiPolygon"):
        report.rejected.append(f"{label}: expected a polygon, got {geom.geom_type}")
        return None
    return geom


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _text(value, default=None):
    return default if _missing(value) else str(value)


def _flag(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "y", "t")
    return bool(value)


# Shapefiles cut field names to 10 characters; these are the names they come back with.
_FIELDS = (
    "name",
    "kind",
    "left_state",
    "right_state",
    "impact_level",
    "source",
    "state",
    "owner_agency",
    "member_agencies",
    "entry_alert",
)
_SHORT_NAMES = {field[:10]: field for field in _FIELDS if len(field) > 10}


def _members(value, owner: str) -> list[str]:
    if value is None or (isinstance(value, float) and value != value):
        return [owner]
    if isinstance(value, str):
        value = json.loads(value) if value.startswith("[") else [v.strip() for v in value.split(",") if v.strip()]
    members = [str(v) for v in value]
    return members if owner in members else [owner, *members]


_UPSERT_SEGMENT = text(
    """
    INSERT INTO border_segments (name, kind, left_state, right_state, impact_level, source, geom)
    VALUES (:name, :kind, :left_state, :right_state, :impact_level, :source, ST_GeomFromText(:wkt, 4326))
    ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, left_state = EXCLUDED.left_state,
        right_state = EXCLUDED.right_state, impact_level = EXCLUDED.impact_level, source = EXCLUDED.source,
        geom = EXCLUDED.geom, updated_at = now()
    """
)

_UPSERT_ZONE = text(
    """
    INSERT INTO zones (name, kind, state, owner_agency, member_agencies, impact_level, entry_alert, geom)
    VALUES (:name, :kind, :state, :owner_agency, CAST(:members AS varchar[]), :impact_level, :entry_alert,
            ST_Multi(ST_GeomFromText(:wkt, 4326)))
    ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, state = EXCLUDED.state,
        owner_agency = EXCLUDED.owner_agency, member_agencies = EXCLUDED.member_agencies,
        impact_level = EXCLUDED.impact_level, entry_alert = EXCLUDED.entry_alert, geom = EXCLUDED.geom,
        updated_at = now()
    """
)


def import_features(
    *,
    session: Session,
    frame: gpd.GeoDataFrame,
    source: str,
    defaults: dict | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Upsert segments (lines) and zones (polygons) by name, checking each feature's attributes.

    Line features need ``name``, ``left_state`` and ``right_state``; polygon features need
    ``name``, ``kind`` and ``owner_agency``. ``defaults`` fills attributes a file lacks.
    """
    defaults = defaults or {}
    report = ImportReport()
    known_agencies = set(session.scalars(text("SELECT code FROM agencies")))
    segments, zones = [], []
    for index, (_, feature) in enumerate(frame.iterrows()):
        given = {_SHORT_NAMES.get(k, k): v for k, v in feature.items() if k != "geometry" and not _missing(v)}
        attrs = {**defaults, **given}
        name = _text(attrs.get("name"))
        label = f"feature {index}" + (f" ({name})" if name else "")
        geom = feature.geometry if isinstance(feature.geometry, BaseGeometry) else None
        kind_of_geom = "line" if geom is not None and "Line" in geom.geom_type else "polygon"
        geom = _valid_geometry(geom, kind_of_geom, label, report)
        if progress:
            progress(1)
        if geom is None:
            continue
        if not name:
            report.rejected.append(f"{label}: no name")
            continue
        impact = _text(attrs.get("impact_level"), "medium")
        if impact not in IMPACT_LEVELS:
            report.rejected.append(f"{label}: impact_level must be one of {', '.join(IMPACT_LEVELS)}")
            continue
        if kind_of_geom == "line":
            left, right = _text(attrs.get("left_state"), "").upper(), _text(attrs.get("right_state"), "").upper()
            if not left or not right or left == right or len(left) != 2 or len(right) != 2:
                report.rejected.append(f"{label}: left_state and right_state must be two different ISO codes")
                continue
            kind = _text(attrs.get("kind"), "land")
            if kind not in ("land", "maritime"):
                report.rejected.append(f"{label}: a segment's kind is land or maritime, not {kind}")
                continue
            parts = list(getattr(geom, "geoms", [geom]))
            for i, part in enumerate(parts, start=1):
                segments.append(
                    {
                        "name": name if len(parts) == 1 else f"{name} part {i}",
                        "kind": kind,
                        "left_state": left,
                        "right_state": right,
                        "impact_level": impact,
                        "source": _text(attrs.get("source"), source),
                        "wkt": part.wkt,
                    }
                )
        else:
            kind = _text(attrs.get("kind"))
            owner = _text(attrs.get("owner_agency"))
            if kind not in ZONE_KINDS:
                report.rejected.append(f"{label}: zone kind must be one of {', '.join(ZONE_KINDS)}")
                continue
            if owner not in known_agencies:
                report.rejected.append(f"{label}: owner_agency {owner!r} is not a known agency")
                continue
            state = _text(attrs.get("state"))
            if state is not None and len(state) != 2:
                report.rejected.append(f"{label}: state must be an ISO 3166 alpha-2 code, not {state!r}")
                continue
            members = _members(attrs.get("member_agencies"), owner)
            unknown = [m for m in members if m not in known_agencies]
            if unknown:
                report.rejected.append(f"{label}: unknown member agencies {', '.join(unknown)}")
                continue
            entry = attrs.get("entry_alert")
            zones.append(
                {
                    "name": name,
                    "kind": kind,
                    "state": state.upper() if state else None,
                    "owner_agency": owner,
                    "members": members,
                    "impact_level": impact,
                    "entry_alert": _flag(entry) if entry is not None else kind in ENTRY_ALERT_KINDS,
                    "wkt": geom.wkt,
                }
            )
    if segments:
        session.execute(_UPSERT_SEGMENT, segments)
    if zones:
        session.execute(_UPSERT_ZONE, zones)
    report.segments, report.zones = len(segments), len(zones)
    return report


def load_states(*, session: Session, path: Path | None = None) -> int:
    frame = read_features(path or DATA_DIR / "countries.geojson")
    rows = [
        {"code": row["state"], "name": row["name"], "wkt": shapely.make_valid(row.geometry).wkt}
        for _, row in frame.iterrows()
    ]
    session.execute(
        text(
            "INSERT INTO states (code, name, geom) "
            "VALUES (:code, :name, ST_Multi(ST_CollectionExtract(ST_GeomFromText(:wkt, 4326), 3))) "
            "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, geom = EXCLUDED.geom"
        ),
        rows,
    )
    return len(rows)


def build_border_buffers(*, session: Session, width_m: float) -> int:
    """A buffer strip on each side of every land segment, owned by that state's land agency."""
    owners = land_agencies()
    result = session.execute(
        text(
            """
            INSERT INTO zones (name, kind, state, owner_agency, member_agencies, impact_level, entry_alert,
                               segment_id, geom)
            SELECT format('%s buffer %s', s.name, st.code), 'border_buffer', st.code, o.agency,
                   ARRAY[o.agency]::varchar[], s.impact_level, true, s.id, b.geom
            FROM border_segments s
            JOIN states st ON st.code IN (s.left_state, s.right_state)
            JOIN unnest(CAST(:states AS text[]), CAST(:agencies AS text[])) AS o(state, agency)
                 ON o.state = st.code
            CROSS JOIN LATERAL (
                SELECT ST_Multi(ST_CollectionExtract(ST_Intersection(
                           ST_Buffer(s.geom::geography, :width_m)::geometry, st.geom), 3)) AS geom
            ) b
            WHERE s.kind = 'land' AND NOT ST_IsEmpty(b.geom)
            ON CONFLICT (name) DO UPDATE SET geom = EXCLUDED.geom, impact_level = EXCLUDED.impact_level,
                segment_id = EXCLUDED.segment_id, updated_at = now()
            """
        ),
        {"states": list(owners), "agencies": list(owners.values()), "width_m": width_m},
    )
    return result.rowcount


def load_shipped_borders(
    *, session: Session, buffer_m: float, progress: Callable[[str, int, int], None] | None = None
) -> ImportReport:
    """Load the shipped Natural Earth-derived borders, zones and states (idempotent)."""
    report = ImportReport()
    ensure_agencies(session=session)
    report.states = load_states(session=session)
    for name in SHIPPED_FILES[1:]:
        frame = read_features(DATA_DIR / name)
        part = import_features(session=session, frame=frame, source=f"Natural Earth 1:10m ({name})")
        report.segments += part.segments
        report.zones += part.zones
        report.repaired += part.repaired
        report.rejected += part.rejected
        if progress:
            progress(name, part.segments + part.zones, len(frame))
    report.zones += build_border_buffers(session=session, width_m=buffer_m)
    return report
