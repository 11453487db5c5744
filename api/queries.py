"""Read queries behind the feature endpoints: each returns one RFC 7946 FeatureCollection as text.

PostGIS builds the whole document in one statement (``ST_AsGeoJSON`` + ``json_agg``), so a
request is one round trip however many features it returns. Every query applies the
caller's agency scope in its WHERE clause:

* segments: shared geography, any authenticated caller;
* zones: owned by the caller's agency, or listing it among the member agencies;
* sensors, detections: the caller's agency only;
* alerts, incidents: the caller's agency's, and partners' that a sharing agreement releases to it,
  with personal fields removed in SQL where the agreement does not grant them (``sharing.service``);
  a read that returns partners' rows is recorded in the audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from api.params import DEFAULT_LIMIT, MAX_LIMIT, BBox, TimeRange
from core.security import Principal
from patrols.units import UNIT_VISIBLE_SQL
from sharing import service as sharing


# The agency scope of each feature table, as a WHERE condition on the alias used below (the
# caller's agency is the :agency bind parameter). Segments and states are shared geography.
ZONE_SCOPE = "(z.owner_agency = :agency OR z.member_agencies @> ARRAY[CAST(:agency AS varchar)])"
SENSOR_SCOPE = "s.agency_code = :agency"
DETECTION_SCOPE = "d.agency_code = :agency"
ALERT_SCOPE = sharing.ALERT_VISIBLE_SQL
INCIDENT_SCOPE = sharing.INCIDENT_VISIBLE_SQL


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


@dataclass(frozen=True)
class _SharedRead:
    """Who reads, and what: the page's ``id`` and ``shared_by`` columns name the partners' rows to audit."""

    principal: Principal
    entity_type: str
    via: str


def _collection(session: Session, *, page_sql: str, feature_sql: str, order_sql: str, params: dict,
                shared: _SharedRead | None = None) -> str:
    """Wrap a page query (already filtered, ordered and limited) into one FeatureCollection; with
    ``shared``, record the partners' rows it returned (same statement) in the audit trail."""
    audit_sql = ("array_agg(id ORDER BY id) FILTER (WHERE shared_by IS NOT NULL) AS shared_ids, "
                 "array_agg(shared_by ORDER BY id) FILTER (WHERE shared_by IS NOT NULL) AS owners"
                 if shared else "NULL AS shared_ids, NULL AS owners")
    sql = f"""
        WITH page AS ({page_sql})
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'timeStamp', {_rfc3339("now()")},
            'numberReturned', count(*),
            'features', coalesce(json_agg({feature_sql} ORDER BY {order_sql}), '[]'::json)
        )::text AS body, {audit_sql}
        FROM page
    """
    row = session.execute(text(sql), params).one()
    if shared is not None and row.shared_ids:
        sharing.record_shared_read(session=session, principal=shared.principal, entity_type=shared.entity_type,
                                   rows=zip(row.shared_ids, row.owners, strict=True), via=shared.via)
    return row.body


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
    ids: Sequence[int] | None = None,
    own_only: bool = False,
    limit: int = DEFAULT_LIMIT,
) -> str:
    """The caller's agency's alerts and those partners release to it, newest first (``own_only``:
    the caller's agency's only). A partner's alert names who shared it (``shared_by``); without
    personal data granted, its personal fields are removed (``redacted``)."""
    where = _Where(params={"limit": limit, "agency": principal.agency_code})
    where.add("a.agency_code = :agency" if own_only else ALERT_SCOPE)
    where.time_range("a.observed_at", time_range)
    where.bbox("a.geom", bbox)
    where.any_of("a.kind", "kinds", kinds)
    where.any_of("a.severity", "severities", severities)
    where.any_of("a.status", "statuses", statuses)
    where.any_of("a.class", "classes", classes)
    where.any_of("a.sensor_id", "sensor_ids", sensor_ids)
    # On the field as the caller may see it: a redacted alert cannot be found by its track key.
    where.any_of("a.track_key", "track_keys", track_keys)
    if ids:
        where.add("a.id = ANY(CAST(:ids AS bigint[]))", ids=list(ids))
    page = f"""
        SELECT a.id, a.agency_code, a.kind, a.severity, a.status, a.observed_at, a.created_at,
               a.sensor_id, a.class, a.from_state, a.to_state, a.segment_id, a.zone_id,
               a.detection_id, a.detection_ids, a.title, a.track_key, a.details, a.redacted, a.shared_by,
               {_geometry("a.geom", where)} AS geometry
        FROM {sharing.ALERTS_SEEN}
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
            'detection_id', detection_id, 'detection_ids', detection_ids, 'details', details,
            'redacted', redacted, 'shared_by', shared_by))"""
    return _collection(
        session, page_sql=page, feature_sql=feature, order_sql="observed_at DESC, id DESC", params=where.params,
        shared=_SharedRead(principal, "alert", "alerts"),
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


# -- patrol coordination as map features -----------------------------------------------------
def units_geojson(
    *,
    session: Session,
    principal: Principal,
    bbox: BBox | None = None,
    statuses: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    limit: int = DEFAULT_LIMIT,
) -> str:
    """Patrol units the caller may see (its own, and partners' inside a shared joint sector) at
    their last reported position, with their open tasking if any."""
    where = _Where(params={"limit": limit, "agency": principal.agency_code})
    where.add(UNIT_VISIBLE_SQL)
    where.bbox("u.geom", bbox)
    where.any_of("u.status", "statuses", statuses)
    where.any_of("u.kind", "kinds", kinds)
    page = f"""
        SELECT u.id, u.agency_code, u.callsign, u.kind, u.status, u.status_at, u.capabilities,
               u.cruising_speed_kmh, u.position_at, u.updated_at, t.id AS tasking_id, t.incident_id,
               {_geometry("u.geom", where)} AS geometry
        FROM patrol_units u
        LEFT JOIN taskings t ON t.unit_id = u.id AND t.status IN ('assigned', 'accepted')
        WHERE {where.sql()}
        ORDER BY u.id
        LIMIT :limit
    """
    feature = f"""json_build_object(
        'type', 'Feature', 'id', id, 'geometry', geometry,
        'properties', json_build_object(
            'callsign', callsign, 'agency_code', agency_code, 'kind', kind, 'status', status,
            'status_at', {_rfc3339("status_at")}, 'capabilities', capabilities,
            'cruising_speed_kmh', cruising_speed_kmh, 'position_at', {_rfc3339("position_at")},
            'updated_at', {_rfc3339("updated_at")}, 'tasking_id', tasking_id, 'incident_id', incident_id))"""
    return _collection(session, page_sql=page, feature_sql=feature, order_sql="id", params=where.params)


def incidents_geojson(
    *,
    session: Session,
    principal: Principal,
    bbox: BBox | None = None,
    statuses: Sequence[str] | None = None,
    priorities: Sequence[str] | None = None,
    ids: Sequence[int] | None = None,
    limit: int = DEFAULT_LIMIT,
) -> str:
    """Incidents the caller may see (its own, and those partners release to it), newest first, with
    the callsigns of the units tasked to them."""
    where = _Where(params={"limit": limit, "agency": principal.agency_code})
    where.add(INCIDENT_SCOPE)
    where.bbox("i.geom", bbox)
    where.any_of("i.status", "statuses", statuses)
    where.any_of("i.priority", "priorities", priorities)
    if ids:
        where.add("i.id = ANY(CAST(:ids AS bigint[]))", ids=list(ids))
    page = f"""
        SELECT i.id, i.agency_code, i.category, i.priority, i.status, i.domain, i.state,
               i.created_at, i.updated_at, i.title, i.created_by, i.redacted, i.shared_by,
               ARRAY(SELECT ia.alert_id FROM incident_alerts ia WHERE ia.incident_id = i.id ORDER BY ia.alert_id)
                 AS alert_ids,
               ARRAY(SELECT u.callsign FROM taskings t JOIN patrol_units u ON u.id = t.unit_id
                     WHERE t.incident_id = i.id AND t.status IN ('assigned', 'accepted') ORDER BY t.id) AS units,
               {_geometry("i.geom", where)} AS geometry
        FROM {sharing.INCIDENTS_SEEN}
        WHERE {where.sql()}
        ORDER BY i.id DESC
        LIMIT :limit
    """
    feature = f"""json_build_object(
        'type', 'Feature', 'id', id, 'geometry', geometry,
        'properties', json_build_object(
            'title', title, 'agency_code', agency_code, 'category', category, 'priority', priority,
            'status', status, 'domain', domain, 'state', state, 'created_by', created_by,
            'created_at', {_rfc3339("created_at")}, 'updated_at', {_rfc3339("updated_at")},
            'alert_ids', alert_ids, 'tasked_units', units, 'redacted', redacted, 'shared_by', shared_by))"""
    return _collection(session, page_sql=page, feature_sql=feature, order_sql="id DESC", params=where.params,
                       shared=_SharedRead(principal, "incident", "incidents"))


def joint_patrol_routes_geojson(
    *,
    session: Session,
    principal: Principal,
    bbox: BBox | None = None,
    at: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
) -> str:
    """Routes of the joint patrols the caller's agency takes part in that have not ended by ``at``."""
    where = _Where(params={"limit": limit, "agency": principal.agency_code})
    where.add("p.agencies @> ARRAY[CAST(:agency AS varchar)]")
    where.add("p.route IS NOT NULL")
    if at is not None:
        where.add("p.ends_at > :at", at=at)
    where.bbox("p.route", bbox)
    page = f"""
        SELECT p.id, p.name, p.owner_agency, p.agencies, p.starts_at, p.ends_at, z.name AS zone_name,
               ARRAY(SELECT u.callsign FROM joint_patrol_units pu JOIN patrol_units u ON u.id = pu.unit_id
                     WHERE pu.patrol_id = p.id ORDER BY u.callsign) AS units,
               (SELECT count(*) FROM handover_points h WHERE h.patrol_id = p.id) AS handovers,
               {_geometry("p.route", where)} AS geometry
        FROM joint_patrols p JOIN zones z ON z.id = p.zone_id
        WHERE {where.sql()}
        ORDER BY p.starts_at, p.id
        LIMIT :limit
    """
    feature = f"""json_build_object(
        'type', 'Feature', 'id', id, 'geometry', geometry,
        'properties', json_build_object(
            'name', name, 'owner_agency', owner_agency, 'agencies', array_to_string(agencies, ', '),
            'sector', zone_name, 'starts_at', {_rfc3339("starts_at")}, 'ends_at', {_rfc3339("ends_at")},
            'units', array_to_string(units, ', '), 'handover_points', handovers))"""
    return _collection(session, page_sql=page, feature_sql=feature, order_sql="starts_at, id", params=where.params)


def handover_points_geojson(
    *,
    session: Session,
    principal: Principal,
    bbox: BBox | None = None,
    at: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
) -> str:
    """Hand-over points of the joint patrols the caller's agency takes part in that have not ended by ``at``."""
    where = _Where(params={"limit": limit, "agency": principal.agency_code})
    where.add("p.agencies @> ARRAY[CAST(:agency AS varchar)]")
    if at is not None:
        where.add("p.ends_at > :at", at=at)
    where.bbox("h.geom", bbox)
    page = f"""
        SELECT h.id, h.seq, h.name, h.from_agency, h.to_agency, p.id AS patrol_id, p.name AS patrol,
               p.starts_at, p.ends_at, {_geometry("h.geom", where)} AS geometry
        FROM handover_points h JOIN joint_patrols p ON p.id = h.patrol_id
        WHERE {where.sql()}
        ORDER BY p.id, h.seq
        LIMIT :limit
    """
    feature = f"""json_build_object(
        'type', 'Feature', 'id', id, 'geometry', geometry,
        'properties', json_build_object(
            'name', name, 'seq', seq, 'from_agency', from_agency, 'to_agency', to_agency,
            'patrol_id', patrol_id, 'patrol', patrol, 'starts_at', {_rfc3339("starts_at")},
            'ends_at', {_rfc3339("ends_at")}))"""
    return _collection(session, page_sql=page, feature_sql=feature, order_sql="patrol_id, seq", params=where.params)
