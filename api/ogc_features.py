"""OGC API - Features (Part 1: Core): the collections, and their items as GeoJSON pages.

Every collection is one table with its agency scope taken from where the rest of the API
reads it (``api.queries`` for segments, zones, sensors, detections and alerts,
``patrols.service`` for units; ``sharing.service`` behind both for alerts and incidents, with
the same redaction of personal fields), so an OGC client sees exactly what the caller's own
feature endpoints show. Pages are keyset pages in id order: the ``next`` link
carries the last id returned, so a page never repeats or skips a feature when rows are
added while a client pages through. PostGIS writes each feature (``ST_AsGeoJSON``); the
page is one statement.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.errors import InvalidParameter
from api.params import BBox, parse_bbox, parse_datetime
from api.queries import ALERT_SCOPE, DETECTION_SCOPE, INCIDENT_SCOPE, SENSOR_SCOPE, ZONE_SCOPE, _rfc3339
from core.errors import NotFound
from core.security import Principal
from patrols.units import UNIT_VISIBLE_SQL as _UNIT_VISIBLE
from sharing import service as sharing

DEFAULT_LIMIT = 100
MAX_LIMIT = 10000
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]


class InvalidOgcParameter(InvalidParameter):
    """OGC API - Features answers a query parameter it cannot use with 400 (Part 1, 7.15)."""

    status_code = 400


class CollectionNotFound(NotFound):
    code = "collection_not_found"


class FeatureNotFound(NotFound):
    code = "feature_not_found"


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    description: str
    source: str  # FROM clause, with the alias the scope condition uses (alerts, incidents: as the caller sees them)
    key: str  # the feature id column (unique, indexed): the order of the pages
    key_is_int: bool
    geometry: str
    scope: str | None  # WHERE condition on :agency; None for shared geography
    temporal: str | None  # the column ``datetime`` filters on
    properties: str  # json_build_object(...) over the source's columns
    polygons: bool = False  # RFC 7946 section 3.1.6: exterior rings counterclockwise
    # For collections partners share into: the audit's entity type and the owner when not the caller's.
    shared_entity: str | None = None
    shared_by: str = "NULL"

    def cast(self, raw: str) -> int | str | None:
        """A feature id from a URL or cursor, or None if it cannot be one of this collection's ids."""
        if self.key_is_int:
            return int(raw) if re.fullmatch(r"[1-9][0-9]{0,17}", raw) else None
        return raw if 0 < len(raw) <= 64 and "\x00" not in raw else None


COLLECTIONS: dict[str, Collection] = {c.id: c for c in [
    Collection(
        "segments", "Border segments", "Border lines between member states (shared geography).",
        "border_segments s", "s.id", True, "s.geom", None, None,
        f"""json_build_object('name', s.name, 'kind', s.kind, 'left_state', s.left_state,
            'right_state', s.right_state, 'impact_level', s.impact_level, 'source', s.source,
            'updated_at', {_rfc3339("s.updated_at")})""",
    ),
    Collection(
        "zones", "Zones", "Zones the caller's agency owns or is a member of (joint sectors included).",
        "zones z", "z.id", True, "z.geom", ZONE_SCOPE, None,
        f"""json_build_object('name', z.name, 'kind', z.kind, 'state', z.state, 'owner_agency', z.owner_agency,
            'member_agencies', z.member_agencies, 'impact_level', z.impact_level, 'entry_alert', z.entry_alert,
            'segment_id', z.segment_id, 'updated_at', {_rfc3339("z.updated_at")})""",
        polygons=True,
    ),
    Collection(
        "sensors", "Sensors", "The caller's agency's sensors at their locations.",
        "sensors s", "s.id", False, "s.location", SENSOR_SCOPE, None,
        f"""json_build_object('name', s.name, 'kind', s.kind, 'agency_code', s.agency_code,
            'gateway_id', s.gateway_id, 'last_seen_at', {_rfc3339("s.last_seen_at")},
            'created_at', {_rfc3339("s.created_at")})""",
    ),
    Collection(
        "detections", "Detections", "The caller's agency's sensor detections (datetime: observed_at).",
        "detections d", "d.id", True, "d.geom", DETECTION_SCOPE, "d.observed_at",
        f"""json_build_object('observed_at', {_rfc3339("d.observed_at")},
            'received_at', {_rfc3339("d.received_at")}, 'sensor_id', d.sensor_id, 'agency_code', d.agency_code,
            'event_id', d.event_id, 'located_by', d.located_by, 'class', d.class, 'confidence', d.confidence,
            'track_id', d.track_id, 'track_key', d.track_key, 'speed_mps', d.speed_mps,
            'heading_deg', d.heading_deg)""",
    ),
    Collection(
        "alerts", "Alerts",
        "Alerts of the caller's agency, and of partners that share them by agreement (datetime: observed_at).",
        sharing.ALERTS_SEEN, "a.id", True, "a.geom", ALERT_SCOPE, "a.observed_at",
        f"""json_build_object('kind', a.kind, 'severity', a.severity, 'status', a.status,
            'title', a.title,
            'observed_at', {_rfc3339("a.observed_at")}, 'created_at', {_rfc3339("a.created_at")},
            'agency_code', a.agency_code, 'sensor_id', a.sensor_id,
            'track_key', a.track_key, 'class', a.class,
            'from_state', a.from_state, 'to_state', a.to_state, 'segment_id', a.segment_id,
            'zone_id', a.zone_id, 'detection_id', a.detection_id, 'redacted', a.redacted,
            'shared_by', a.shared_by)""",
        shared_entity="alert", shared_by="a.shared_by",
    ),
    Collection(
        "incidents", "Incidents",
        "Incidents of the caller's agency, and of partners that share them by agreement (datetime: created_at).",
        sharing.INCIDENTS_SEEN, "i.id", True, "i.geom", INCIDENT_SCOPE,
        "i.created_at",
        f"""json_build_object('agency_code', i.agency_code,
            'title', i.title,
            'category', i.category,
            'priority', i.priority, 'status', i.status, 'domain', i.domain, 'state', i.state,
            'created_at', {_rfc3339("i.created_at")}, 'updated_at', {_rfc3339("i.updated_at")},
            'closed_at', {_rfc3339("i.closed_at")}, 'redacted', i.redacted, 'shared_by', i.shared_by)""",
        shared_entity="incident", shared_by="i.shared_by",
    ),
    Collection(
        "units", "Patrol units",
        "Units of the caller's agency, and of partners inside a shared joint sector, at their last position "
        "(datetime: position_at).",
        "patrol_units u", "u.id", True, "u.geom", _UNIT_VISIBLE, "u.position_at",
        f"""json_build_object('agency_code', u.agency_code, 'callsign', u.callsign, 'kind', u.kind,
            'capabilities', u.capabilities, 'status', u.status, 'status_at', {_rfc3339("u.status_at")},
            'position_at', {_rfc3339("u.position_at")}, 'cruising_speed_kmh', u.cruising_speed_kmh)""",
    ),
]}


@dataclass(frozen=True)
class Interval:
    """A ``datetime`` parameter: an instant (start == end) or a closed, half-open or open interval."""

    start: datetime | None
    end: datetime | None


@dataclass
class Page:
    features: list[str]  # each one GeoJSON Feature, serialised by PostGIS
    next_cursor: str | None


def collection(collection_id: str) -> Collection:
    try:
        return COLLECTIONS[collection_id]
    except KeyError:
        raise CollectionNotFound(f"no collection {collection_id!r}; see /collections") from None


def parse_ogc_bbox(raw: str | None) -> BBox | None:
    """``minlon,minlat,maxlon,maxlat`` or the 3D form with heights (which are ignored)."""
    if raw is not None and raw.count(",") == 5:
        parts = raw.split(",")
        raw = ",".join([parts[0], parts[1], parts[3], parts[4]])
    try:
        return parse_bbox(raw)
    except InvalidParameter as exc:
        raise InvalidOgcParameter(exc.message, parameter="bbox") from None


def parse_interval(raw: str | None) -> Interval | None:
    """RFC 3339 instant, ``start/end``, ``start/..``, ``../end`` (an empty bound is open too)."""
    if raw is None or raw == "":
        return None
    if raw.count("/") > 1:
        raise InvalidOgcParameter("datetime must be an instant or one interval start/end", parameter="datetime")

    def bound(part: str) -> datetime | None:
        if part in ("", ".."):
            return None
        try:
            return parse_datetime(part, "datetime")
        except InvalidParameter as exc:
            raise InvalidOgcParameter(exc.message, parameter="datetime") from None

    if "/" not in raw:
        if raw == "..":
            raise InvalidOgcParameter("datetime '..' is only an open end of an interval", parameter="datetime")
        instant = bound(raw)
        return Interval(instant, instant)
    start, end = (bound(p) for p in raw.split("/"))
    if start is not None and end is not None and start > end:
        raise InvalidOgcParameter("datetime interval starts after it ends", parameter="datetime")
    return Interval(start, end)


def parse_limit(raw: str | None) -> int:
    """1..MAX_LIMIT; a larger limit is served as MAX_LIMIT (Part 1, 7.15.3 lets the server cap it)."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not re.fullmatch(r"[0-9]{1,9}", raw) or int(raw) < 1:
        raise InvalidOgcParameter("limit must be a positive integer", parameter="limit")
    return min(int(raw), MAX_LIMIT)


def encode_cursor(last_id: int | str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([last_id])).decode().rstrip("=")


def decode_cursor(spec: Collection, cursor: str | None) -> int | str | None:
    if cursor is None or cursor == "":
        return None
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        value = None
    after = spec.cast(str(value[0])) if isinstance(value, list) and len(value) == 1 else None
    if after is None or isinstance(value[0], int) != spec.key_is_int:
        raise InvalidOgcParameter("cursor is not one this service handed out", parameter="cursor")
    return after


def _feature_sql(spec: Collection) -> str:
    geometry = f"ST_ForcePolygonCCW({spec.geometry})" if spec.polygons else spec.geometry
    return f"""json_build_object('type', 'Feature', 'id', {spec.key}, 'geometry', ST_AsGeoJSON({geometry}, 6)::json,
                                 'properties', {spec.properties})::text"""


def items(
    *,
    session: Session,
    principal: Principal,
    spec: Collection,
    bbox: BBox | None = None,
    interval: Interval | None = None,
    limit: int = DEFAULT_LIMIT,
    after: int | str | None = None,
) -> Page:
    """One page of the collection's visible features in id order, after the cursor's id."""
    where, params = [], {"agency": principal.agency_code, "limit": limit + 1}
    if spec.scope:
        where.append(spec.scope)
    if bbox is not None:
        where.append(f"{spec.geometry} && ST_MakeEnvelope(:minlon, :minlat, :maxlon, :maxlat, 4326)")
        params.update(minlon=bbox.minlon, minlat=bbox.minlat, maxlon=bbox.maxlon, maxlat=bbox.maxlat)
    if interval is not None and spec.temporal is not None:
        # Collections without a time of their own (segments, zones, sensors) are not filtered by time.
        if interval.start is not None:
            where.append(f"{spec.temporal} >= :start")
            params["start"] = interval.start
        if interval.end is not None:
            where.append(f"{spec.temporal} <= :end")
            params["end"] = interval.end
    if after is not None:
        where.append(f"{spec.key} > :after")
        params["after"] = after
    sql = f"""
        SELECT {spec.key} AS fid, {spec.shared_by} AS shared_by, {_feature_sql(spec)} AS feature
        FROM {spec.source}
        WHERE {' AND '.join(where) or 'true'}
        ORDER BY {spec.key}
        LIMIT :limit
    """
    rows = session.execute(text(sql), params).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].fid)
    if spec.shared_entity:
        sharing.record_shared_read(session=session, principal=principal, entity_type=spec.shared_entity,
                                   rows=[(r.fid, r.shared_by) for r in rows], via=f"ogc/{spec.id}")
    return Page([r.feature for r in rows], next_cursor)


def item(*, session: Session, principal: Principal, spec: Collection, feature_id: str) -> str:
    """One visible feature as GeoJSON; FeatureNotFound if it does not exist or is not the caller's to see."""
    key = spec.cast(feature_id)
    row = None
    if key is not None:
        where = [f"{spec.key} = :key"] + ([spec.scope] if spec.scope else [])
        row = session.execute(
            text(f"SELECT {spec.shared_by} AS shared_by, {_feature_sql(spec)} AS feature FROM {spec.source} "
                 f"WHERE {' AND '.join(where)}"),
            {"key": key, "agency": principal.agency_code},
        ).one_or_none()
    if row is None:
        raise FeatureNotFound(f"feature {feature_id} of {spec.id} does not exist or is not visible to "
                              f"{principal.agency_code}")
    if spec.shared_entity:
        sharing.record_shared_read(session=session, principal=principal, entity_type=spec.shared_entity,
                                   rows=[(key, row.shared_by)], via=f"ogc/{spec.id}")
    return row.feature
