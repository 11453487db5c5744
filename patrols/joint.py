"""Joint patrols (plans in a joint sector shared by the agencies of its agreement) and coverage
(when an agency's units last passed along each border segment of its state)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from audit import service as audit
from core.errors import InvalidInput, NotFound
from core.paging import decode_cursor
from core.permissions import MANAGERS, require_role
from core.security import Principal
from patrols import schemas
from patrols.errors import JointPatrolNotFound
from patrols.models import HandoverPoint, JointPatrol, JointPatrolUnit
from patrols.pages import DEFAULT_PAGE, page_of


def create_joint_patrol(
    *, session: Session, principal: Principal, patrol_in: schemas.JointPatrolCreate
) -> schemas.JointPatrolOut:
    """A plan in a joint sector whose agreement includes every participating agency."""
    require_role(principal, MANAGERS, "plan joint patrols")
    zone = session.execute(
        text("SELECT id, kind, member_agencies FROM zones WHERE id = :id"), {"id": patrol_in.zone_id}
    ).one_or_none()
    if zone is None or zone.kind != "joint_patrol_sector" or principal.agency_code not in zone.member_agencies:
        raise NotFound(
            f"zone {patrol_in.zone_id} is not a joint patrol sector of {principal.agency_code}", field="zone_id"
        )
    if principal.agency_code not in patrol_in.agencies:
        raise InvalidInput("agencies must include the caller's agency", field="agencies")
    outsiders = sorted(set(patrol_in.agencies) - set(zone.member_agencies))
    if outsiders:
        raise InvalidInput(f"agencies {outsiders} are not party to the sector's agreement", field="agencies")
    for i, h in enumerate(patrol_in.handover_points):
        if h.from_agency == h.to_agency or {h.from_agency, h.to_agency} - set(patrol_in.agencies):
            raise InvalidInput(
                f"handover_points[{i}] must pass between two different participating agencies", field="handover_points"
            )
    units = (
        session.execute(
            text("SELECT id, agency_code FROM patrol_units WHERE id = ANY(CAST(:ids AS bigint[]))"),
            {"ids": patrol_in.unit_ids},
        ).all()
        if patrol_in.unit_ids
        else []
    )
    found = {u.id: u.agency_code for u in units}
    bad = [u for u in patrol_in.unit_ids if found.get(u) not in patrol_in.agencies]
    if bad:
        raise InvalidInput(f"units {bad} do not exist or are not of a participating agency", field="unit_ids")
    route = None
    if patrol_in.waypoints:
        route = "SRID=4326;LINESTRING(" + ", ".join(f"{lon} {lat}" for lon, lat in patrol_in.waypoints) + ")"
    patrol = JointPatrol(
        owner_agency=principal.agency_code,
        name=patrol_in.name,
        zone_id=zone.id,
        agencies=list(patrol_in.agencies),
        starts_at=patrol_in.starts_at,
        ends_at=patrol_in.ends_at,
        route=route,
        created_by=principal.username,
    )
    session.add(patrol)
    session.flush()
    for unit_id in patrol_in.unit_ids:
        session.add(JointPatrolUnit(patrol_id=patrol.id, unit_id=unit_id))
    for seq, h in enumerate(patrol_in.handover_points, start=1):
        session.add(
            HandoverPoint(
                patrol_id=patrol.id,
                seq=seq,
                name=h.name,
                from_agency=h.from_agency,
                to_agency=h.to_agency,
                geom=f"SRID=4326;POINT({h.lon} {h.lat})",
            )
        )
    session.flush()
    audit.record(
        session=session,
        actor=principal.username,
        action="joint_patrol.create",
        entity_type="joint_patrol",
        entity_id=patrol.id,
        agencies=list(patrol_in.agencies),
        details={
            "name": patrol.name,
            "zone_id": zone.id,
            "unit_ids": list(patrol_in.unit_ids),
            "starts_at": patrol.starts_at.isoformat(),
            "ends_at": patrol.ends_at.isoformat(),
        },
    )
    return get_joint_patrol(session=session, principal=principal, patrol_id=patrol.id)


_PATROL_SELECT = """
    SELECT p.id, p.owner_agency, p.name, p.zone_id, z.name AS zone_name, p.agencies, p.starts_at, p.ends_at,
           ST_AsGeoJSON(p.route, 7)::text AS route, p.created_by, p.created_at,
           ARRAY(SELECT pu.unit_id FROM joint_patrol_units pu WHERE pu.patrol_id = p.id ORDER BY pu.unit_id) AS unit_ids,
           (SELECT coalesce(json_agg(json_build_object('seq', h.seq, 'name', h.name, 'from_agency', h.from_agency,
                    'to_agency', h.to_agency, 'geometry', ST_AsGeoJSON(h.geom, 7)::json) ORDER BY h.seq), '[]')
              FROM handover_points h WHERE h.patrol_id = p.id)::text AS handovers
    FROM joint_patrols p JOIN zones z ON z.id = p.zone_id
"""


def _patrol_out(row) -> schemas.JointPatrolOut:
    return schemas.JointPatrolOut(
        id=row.id,
        owner_agency=row.owner_agency,
        name=row.name,
        zone_id=row.zone_id,
        zone_name=row.zone_name,
        agencies=list(row.agencies),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        unit_ids=list(row.unit_ids),
        route=orjson.loads(row.route) if row.route else None,
        handover_points=orjson.loads(row.handovers),
        created_by=row.created_by,
        created_at=row.created_at,
    )


def get_joint_patrol(*, session: Session, principal: Principal, patrol_id: int) -> schemas.JointPatrolOut:
    row = session.execute(
        text(f"{_PATROL_SELECT} WHERE p.id = :id AND p.agencies @> ARRAY[CAST(:agency AS varchar)]"),
        {"id": patrol_id, "agency": principal.agency_code},
    ).one_or_none()
    if row is None:
        raise JointPatrolNotFound(
            f"joint patrol {patrol_id} does not exist or does not include {principal.agency_code}"
        )
    return _patrol_out(row)


def list_joint_patrols(
    *,
    session: Session,
    principal: Principal,
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE,
    active_at: datetime | None = None,
) -> schemas.JointPatrolPage:
    after = decode_cursor(cursor) or 0
    rows = session.execute(
        text(
            f"""{_PATROL_SELECT}
            WHERE p.agencies @> ARRAY[CAST(:agency AS varchar)] AND p.id > :after
              AND (CAST(:at AS timestamptz) IS NULL OR (p.starts_at <= :at AND p.ends_at > :at))
            ORDER BY p.id LIMIT :limit"""
        ),
        {"agency": principal.agency_code, "after": after, "at": active_at, "limit": limit + 1},
    ).all()
    rows, next_cursor = page_of(rows, limit)
    return schemas.JointPatrolPage(items=[_patrol_out(r) for r in rows], next_cursor=next_cursor)


# -- coverage ------------------------------------------------------------------------------
_COVERAGE = text(
    """
    SELECT s.id AS segment_id, s.name, s.kind, s.impact_level, s.left_state, s.right_state,
           last.observed_at AS last_patrolled_at, last.unit_id AS last_unit_id
    FROM border_segments s
    LEFT JOIN LATERAL (
        SELECT p.observed_at, p.unit_id
        FROM unit_positions p
        WHERE p.agency_code = :agency
          AND p.geom && ST_Expand(s.geom, :buffer_deg)
          AND ST_DWithin(p.geom::geography, s.geom::geography, :buffer_m)
          AND (CAST(:since AS timestamptz) IS NULL OR p.observed_at >= :since)
        ORDER BY p.observed_at DESC
        LIMIT 1
    ) last ON true
    WHERE :country IN (s.left_state, s.right_state)
    ORDER BY CASE s.impact_level WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END,
             last.observed_at ASC NULLS FIRST, s.id
    """
)


def _buffer_deg(buffer_m: float) -> float:
    # A degree of longitude is shortest at the highest latitude of the region (about 30° N).
    return buffer_m / (111_320 * 0.85)


def coverage(
    *,
    session: Session,
    principal: Principal,
    buffer_m: float,
    gaps_hours: int | None = None,
    lookback_hours: int = 24 * 30,
) -> schemas.Coverage:
    """For each border segment of the caller's state: when its agency's units last passed within the buffer.

    With ``gaps_hours`` only the segments not patrolled within that many hours, high impact first.
    """
    country = session.execute(
        text("SELECT country FROM agencies WHERE code = :a"), {"a": principal.agency_code}
    ).scalar_one()
    since = datetime.now(timezone.utc) - timedelta(hours=lookback_hours)
    rows = session.execute(
        _COVERAGE,
        {
            "agency": principal.agency_code,
            "country": country,
            "buffer_m": buffer_m,
            "buffer_deg": _buffer_deg(buffer_m),
            "since": since,
        },
    ).all()
    segments = [schemas.SegmentCoverage(**r._mapping) for r in rows]
    if gaps_hours is not None:
        cutoff = datetime.now(timezone.utc) - timedelta(hours=gaps_hours)
        segments = [s for s in segments if s.last_patrolled_at is None or s.last_patrolled_at < cutoff]
    return schemas.Coverage(buffer_m=buffer_m, within_hours=gaps_hours, segments=segments)


_COVERAGE_FEATURES = text(
    """
    WITH page AS (
        SELECT s.id, s.name, s.kind, s.impact_level, s.left_state, s.right_state,
               last.observed_at AS last_patrolled_at, last.unit_id AS last_unit_id, u.callsign AS last_callsign,
               ST_AsGeoJSON(CASE WHEN CAST(:simplify AS float8) IS NULL THEN s.geom
                                 ELSE ST_SimplifyPreserveTopology(s.geom, :simplify) END, 6)::json AS geometry
        FROM border_segments s
        LEFT JOIN LATERAL (
            SELECT p.observed_at, p.unit_id
            FROM unit_positions p
            WHERE p.agency_code = :agency
              AND p.geom && ST_Expand(s.geom, :buffer_deg)
              AND ST_DWithin(p.geom::geography, s.geom::geography, :buffer_m)
              AND p.observed_at >= :since
            ORDER BY p.observed_at DESC
            LIMIT 1
        ) last ON true
        LEFT JOIN patrol_units u ON u.id = last.unit_id
        WHERE :country IN (s.left_state, s.right_state)
          AND (NOT :only_gaps OR last.observed_at IS NULL OR last.observed_at < :gap_cutoff)
          AND (CAST(:minlon AS float8) IS NULL
               OR s.geom && ST_MakeEnvelope(:minlon, :minlat, :maxlon, :maxlat, 4326))
        ORDER BY s.id
        LIMIT :limit
    )
    SELECT json_build_object(
        'type', 'FeatureCollection',
        'timeStamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'numberReturned', count(*),
        'features', coalesce(json_agg(json_build_object(
            'type', 'Feature', 'id', id, 'geometry', geometry,
            'properties', json_build_object(
                'name', name, 'kind', kind, 'impact_level', impact_level, 'left_state', left_state,
                'right_state', right_state,
                'last_patrolled_at', to_char(last_patrolled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                'last_unit_id', last_unit_id, 'last_callsign', last_callsign,
                'gap', last_patrolled_at IS NULL OR last_patrolled_at < :gap_cutoff,
                'coverage', CASE WHEN last_patrolled_at IS NULL OR last_patrolled_at < :gap_cutoff
                                 THEN 'gap' ELSE 'patrolled' END)) ORDER BY id), '[]'::json)
    )::text
    FROM page
    """
)


def coverage_geojson(
    *,
    session: Session,
    principal: Principal,
    buffer_m: float,
    gaps_hours: int,
    bbox: tuple[float, float, float, float] | None = None,
    simplify: float | None = None,
    only_gaps: bool = False,
    limit: int = 10000,
    lookback_hours: int = 24 * 30,
) -> str:
    """The coverage of :func:`coverage` as a GeoJSON FeatureCollection of the segments: when the
    agency's units last patrolled each (``last_patrolled_at``) and whether it is a gap (not within
    ``gaps_hours``); with ``only_gaps`` the gaps alone."""
    country = session.execute(
        text("SELECT country FROM agencies WHERE code = :a"), {"a": principal.agency_code}
    ).scalar_one()
    now = datetime.now(timezone.utc)
    minlon, minlat, maxlon, maxlat = bbox or (None, None, None, None)
    return session.execute(
        _COVERAGE_FEATURES,
        {
            "agency": principal.agency_code,
            "country": country,
            "buffer_m": buffer_m,
            "buffer_deg": _buffer_deg(buffer_m),
            "since": now - timedelta(hours=lookback_hours),
            "gap_cutoff": now - timedelta(hours=gaps_hours),
            "simplify": simplify,
            "limit": limit,
            "only_gaps": only_gaps,
            "minlon": minlon,
            "minlat": minlat,
            "maxlon": maxlon,
            "maxlat": maxlat,
        },
    ).scalar_one()
