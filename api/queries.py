"""Read queries behind the feature endpoints: each returns one RFC 7946 FeatureCollection as text.

PostGIS builds the whole document in one statement (``ST_AsGeoJSON`` + ``json_agg``), so a
request is one round trip however many features it returns. Every query applies the
caller's agency scope in its WHERE clause:

* segments: shared geography, any authenticated caller;
* zones: owned by the caller's agency, or listing it among the member agencies;
* sensors, detections, alerts: the caller's agency only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from api.params import DEFAULT_LIMIT, MAX_LIMIT, BBox, TimeRange
from core.security import Principal


# The agency scope of each feature table, as a WHERE condition on the alias used below (the
# caller's agency is the :agency bind parameter). Segments and states are shared geography.
ZONE_SCOPE = "(z.owner_agency = :agency OR z.member_agencies @> ARRAY[CAST(:agency AS varchar)])"
SENSOR_SCOPE = "s.agency_code = :agency"
DETECTION_SCOPE = "d.agency_code = :agency"
ALERT_SCOPE = "a.agency_code = :agency"


def _rfc3339(column: str) -> str:
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


@dataclass
class _Where:
    """AND-ed conditions; the SQL fragments are fixed strings, values go in as bind parameters."""

    clauses: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)

    def add(self, clause: str, **params) -> None:
        self.clauses.append(clause)
        self.params.update(params)

    def bbox(self, column: str, bbox: BBox | None) -> None:
        if bbox is not None:
            # && on the envelope uses the GiST index.
            self.add(
                f"{column} && ST_MakeEnvelope(:minlon, :minlat, :maxlon, :maxlat, 4326)",
                minlon=bbox.minlon, minlat=bbox.minlat, maxlon=bbox.maxlon, maxlat=bbox.maxlat,
            )

    def any_of(self, column: str, name: str, values: Sequence[str] | None) -> None:
        if values:
            self.add(f"{column} = ANY(CAST(:{name} AS text[]))", **{name: list(values)})

    def time_range(self, column: str, time_range: TimeRange | None) -> None:
        if time_range is None:
            return
        if time_range.start is not None:
            self.add(f"{column} >= :start", start=time_range.start)
        if time_range.end is not None:
            self.add(f"{column} <= :end", end=time_range.end)

    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "true"


def _collection(session: Session, *, page_sql: str, feature_sql: str, order_sql: str, params: dict) -> str:
    """Wrap a page query (already filtered, ordered and limited) into one FeatureCollection."""
    sql = f"""
        WITH page AS ({page_sql})
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'timeStamp', {_rfc3339("now()")},
            'numberReturned', count(*),
            'features', coalesce(json_agg({feature_sql} ORDER BY {order_sql}), '[]'::json)
        )::text
        FROM page
    """
    return session.execute(text(sql), params).scalar_one()


def _geometry(column: str, where: _Where, simplify: float | None = None, polygons: bool = False) -> str:
    """The column as a GeoJSON geometry (6 decimals, about 0.1 m), optionally simplified."""
    if simplify:
        column = f"ST_SimplifyPreserveTopology({column}, :simplify)"
        where.params["simplify"] = simplify
    if polygons:
        # RFC 7946 section 3.1.6: exterior rings counterclockwise.
        column = f"ST_ForcePolygonCCW({column})"
    return f"ST_AsGeoJSON({column}, 6)::json"


def states_geojson(
    *,
    session: Session,
    principal: Principal,
    bbox: BBox | None = None,
    simplify: float | None = None,
    limit: int = DEFAULT_LIMIT,
) -> str:
    """Member states' land areas (shared geography: the maps' base layer)."""
    where = _Where(params={"limit": limit})
    where.bbox("st.geom", bbox)
    page = f"""
        SELECT st.code, st.name, {_geometry("st.geom", where, simplify, polygons=True)} AS geometry
        FROM states st
        WHERE {where.sql()}
        ORDER BY st.code
        LIMIT :limit
    """
    feature = """json_build_object(
        'type', 'Feature', 'id', code, 'geometry', geometry,
        'properties', json_build_object('code', code, 'name', name))"""
    return _collection(session, page_sql=page, feature_sql=feature, order_sql="code", params=where.params)


def segments_geojson(
    *,
    session: Session,
    principal: Principal,
    bbox: BBox | None = None,
    kinds: Sequence[str] | None = None,
    impact_levels: Sequence[str] | None = None,
    simplify: float | None = None,
    limit: int = DEFAULT_LIMIT,
) -> str:
    """Border segments (shared geography: every authenticated caller sees them all)."""
    where = _Where(params={"limit": limit})
    where.bbox("s.geom", bbox)
    where.any_of("s.kind", "kinds", kinds)
    where.any_of("s.impact_level", "impact_levels", impact_levels)
    page = f"""
        SELECT s.id, s.name, s.kind, s.left_state, s.right_state, s.impact_level, s.source, s.updated_at,
               {_geometry("s.geom", where, simplify)} AS geometry
        FROM border_segments s
        WHERE {where.sql()}
        ORDER BY s.id
        LIMIT :limit
    """
    feature = f"""json_build_object(
        'type', 'Feature', 'id', id, 'geometry', geometry,
        'properties', json_build_object(
            'name', name, 'kind', kind, 'left_state', left_state, 'right_state', right_state,
            'impact_level', impact_level, 'source', source, 'updated_at', {_rfc3339("updated_at")}))"""
    return _collection(session, page_sql=page, feature_sql=feature, order_sql="id", params=where.params)


def zones_geojson(
    *,
    session: Session,
    principal: Principal,
    bbox: BBox | None = None,
    kinds: Sequence[str] | None = None,
    simplify: float | None = None,
    limit: int = DEFAULT_LIMIT,
) -> str:
    """Zones the caller's agency owns or is a member of (joint sectors)."""
    where = _Where(params={"limit": limit, "agency": principal.agency_code})
    where.add(ZONE_SCOPE)
    where.bbox("z.geom", bbox)
    where.any_of("z.kind", "kinds", kinds)
    page = f"""
        SELECT z.id, z.name, z.kind, z.state, z.owner_agency, z.member_agencies, z.impact_level, z.entry_alert,
               z.segment_id, z.updated_at,
               {_geometry("z.geom", where, simplify, polygons=True)} AS geometry
        FROM zones z
        WHERE {where.sql()}
        ORDER BY z.id
        LIMIT :limit
    """
    feature = f"""json_build_object(
        'type', 'Feature', 'id', id, 'geometry', geometry,
        'properties', json_build_object(
            'name', name, 'kind', kind, 'state', state, 'owner_agency', owner_agency,
            'member_agencies', member_agencies, 'impact_level', impact_level, 'entry_alert', entry_alert,
            'segment_id', segment_id, 'updated_at', {_rfc3339("updated_at")}))"""
    return _collection(session, page_sql=page, feature_sql=feature, order_sql="id", params=where.params)


def sensors_geojson(
    *,
    session: Session,
    principal: Principal,
    bbox: BBox | None = None,
    kinds: Sequence[str] | None = None,
    limit: int = DEFAULT_LIMIT,
) -> str:
    """The caller's agency's sensors, with the status of the gateway they publish through."""
    where = _Where(params={"limit": limit, "agency": principal.agency_code})
    where.add(SENSOR_SCOPE)
    where.bbox("s.location", bbox)
    where.any_of("s.kind", "kinds", kinds)
    page = f"""
        SELECT s.id, s.agency_code, s.gateway_id, s.kind, s.name, s.last_seen_at, s.created_at,
               s.coverage IS NOT NULL AS has_coverage, g.status AS gateway_status,
               {_geometry("s.location", where)} AS geometry
        FROM sensors s
        JOIN gateways g ON g.id = s.gateway_id
        WHERE {where.sql()}
        ORDER BY s.id
        LIMIT :limit
    """
    feature = f"""json_build_object(
        'type', 'Feature', 'id', id, 'geometry', geometry,
        'properties', json_build_object(
            'name', name, 'kind', kind, 'agency_code', agency_code, 'gateway_id', gateway_id,
            'gateway_status', gateway_status, 'has_coverage', has_coverage,
            'last_seen_at', {_rfc3339("last_seen_at")}, 'created_at', {_rfc3339("created_at")}))"""
    return _collection(session, page_sql=page, feature_sql=feature, order_sql="id", params=where.params)


def detections_geojson(
    *,
    session: Session,
    principal: Principal,
    bbox: BBox | None = None,
    time_range: TimeRange | None = None,
    sensor_ids: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    track_keys: Sequence[str] | None = None,
    received_since: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
) -> str:
    """The caller's agency's detections, newest first.

    ``received_since`` keeps only detections stored at or after that time (polling clients ask
    for what arrived since their last poll, whatever the observation time says).
    """
    where = _Where(params={"limit": limit, "agency": principal.agency_code})
    where.add(DETECTION_SCOPE)
    where.time_range("d.observed_at", time_range)
    if received_since is not None:
        where.add("d.received_at >= :received_since", received_since=received_since)
    where.any_of("d.track_key", "track_keys", track_keys)
    where.bbox("d.geom", bbox)
    where.any_of("d.sensor_id", "sensor_ids", sensor_ids)
    where.any_of("d.class", "classes", classes)
    page = f"""
        SELECT d.id, d.observed_at, d.received_at, d.sensor_id, d.agency_code, d.event_id, d.located_by,
               d.class, d.confidence, d.track_id, d.track_key, d.speed_mps, d.heading_deg, d.identifiers,
               {_geometry("d.geom", where)} AS geometry
        FROM detections d
        WHERE {where.sql()}
        ORDER BY d.observed_at DESC, d.id DESC
        LIMIT :limit
    """
    feature = f"""json_build_object(
        'type', 'Feature', 'id', id, 'geometry', geometry,
        'properties', json_build_object(
            'observed_at', {_rfc3339("observed_at")}, 'received_at', {_rfc3339("received_at")},
            'sensor_id', sensor_id, 'agency_code', agency_code, 'event_id', event_id, 'located_by', located_by,
            'class', class, 'confidence', confidence, 'track_id', track_id, 'track_key', track_key,
            'speed_mps', speed_mps, 'heading_deg', heading_deg, 'identifiers', identifiers))"""
    return _collection(
        session, page_sql=page, feature_sql=feature, order_sql="observed_at DESC, id DESC", params=where.params
    )


def alerts_geojson(
    *,
    session: Session,
    principal: Principal,
    bbox: BBox | None = None,
    time_range: TimeRange | None = None,
    kinds: Sequence[str] | None = None,
    severities: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    sensor_ids: Sequence[str] | None = None,
    track_keys: Sequence[str] | None = None,
    limit: int = DEFAULT_LIMIT,
) -> str:
    """The caller's agency's alerts, newest first."""
    where = _Where(params={"limit": limit, "agency": principal.agency_code})
    where.add(ALERT_SCOPE)
    where.time_range("a.observed_at", time_range)
    where.bbox("a.geom", bbox)
    where.any_of("a.kind", "kinds", kinds)
    where.any_of("a.severity", "severities", severities)
    where.any_of("a.status", "statuses", statuses)
    where.any_of("a.class", "classes", classes)
    where.any_of("a.sensor_id", "sensor_ids", sensor_ids)
    where.any_of("a.track_key", "track_keys", track_keys)
    page = f"""
        SELECT a.id, a.agency_code, a.kind, a.severity, a.status, a.title, a.observed_at, a.created_at,
               a.sensor_id, a.track_key, a.class, a.from_state, a.to_state, a.segment_id, a.zone_id,
               a.detection_id, a.detection_ids, a.details,
               {_geometry("a.geom", where)} AS geometry
        FROM alerts a
        WHERE {where.sql()}
        ORDER BY a.observed_at DESC, a.id DESC
        LIMIT :limit
    """
    feature = f"""json_build_object(
        'type', 'Feature', 'id', id, 'geometry', geometry,
        'properties', json_build_object(
            'kind', kind, 'severity', severity, 'status', status, 'title', title,
            'observed_at', {_rfc3339("observed_at")}, 'created_at', {_rfc3339("created_at")},
            'agency_code', agency_code, 'sensor_id', sensor_id, 'track_key', track_key, 'class', class,
            'from_state', from_state, 'to_state', to_state, 'segment_id', segment_id, 'zone_id', zone_id,
            'detection_id', detection_id, 'detection_ids', detection_ids, 'details', details))"""
    return _collection(
        session, page_sql=page, feature_sql=feature, order_sql="observed_at DESC, id DESC", params=where.params
    )


def detection_density(
    *,
    session: Session,
    principal: Principal,
    time_range: TimeRange,
    cell_deg: float,
    bbox: BBox | None = None,
    limit: int = MAX_LIMIT,
) -> list[tuple[float, float, int]]:
    """The caller's agency's detections counted per grid cell: (lat, lon, count) at each cell's
    centre of mass, busiest cells first. One grouped statement however many detections there are.
    """
    where = _Where(params={"limit": limit, "agency": principal.agency_code, "cell": cell_deg})
    where.add(DETECTION_SCOPE)
    where.time_range("d.observed_at", time_range)
    where.bbox("d.geom", bbox)
    sql = f"""
        SELECT ST_Y(ST_Centroid(ST_Collect(d.geom))) AS lat, ST_X(ST_Centroid(ST_Collect(d.geom))) AS lon,
               count(*) AS n
        FROM detections d
        WHERE {where.sql()}
        GROUP BY ST_SnapToGrid(d.geom, :cell)
        ORDER BY n DESC
        LIMIT :limit
    """
    return [(r.lat, r.lon, r.n) for r in session.execute(text(sql), where.params)]
