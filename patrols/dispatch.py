"""Dispatch: which units may go to an incident (authority at its place, domain, availability) and
the eligible ones ranked by estimated time of arrival."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.permissions import DISPATCHERS, require_role
from core.security import Principal
from patrols import schemas
from patrols.errors import IllegalTransition, IncidentNotFound
from patrols.incidents import OPEN_INCIDENT, get_incident
from patrols.pages import point

# Straight-line distance times this on land: roads and tracks are not straight.
LAND_DETOUR_FACTOR = 1.4
# The recommendation ranks by ETA among this many nearest eligible units (index order).
KNN_CANDIDATES = 64
# The unit kinds that serve an incident of each domain.
DOMAIN_KINDS = {"maritime": ("maritime", "air"), "land": ("land", "air")}

INCIDENT_AUTHORITY = text(
    """
    SELECT i.id, i.agency_code, i.domain, i.state, i.status, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat,
           (SELECT a.country FROM agencies a WHERE a.code = i.agency_code) AS country,
           ARRAY(SELECT DISTINCT m FROM zones z, unnest(z.member_agencies) m
                 WHERE z.kind = 'joint_patrol_sector' AND z.member_agencies @> ARRAY[CAST(i.agency_code AS varchar)]
                   AND ST_Intersects(z.geom, i.geom)) AS joint_agencies
    FROM incidents i WHERE i.id = :id
    """
)

# Nearest units first through the partial GiST index on available units (KNN ``<->``); the ETA
# ranking then runs over those candidates only.
NEAREST_ELIGIBLE = text(
    """
    WITH nearest AS (
        SELECT u.id, u.callsign, u.agency_code, u.kind, u.capabilities, u.cruising_speed_kmh, u.geom
        FROM patrol_units u
        WHERE u.status = 'available'
          AND u.kind = ANY(CAST(:kinds AS text[]))
          AND u.agency_code = ANY(CAST(:agencies AS text[]))
          AND (CAST(:unit AS bigint) IS NULL OR u.id = :unit)
          AND NOT EXISTS (SELECT 1 FROM taskings t WHERE t.unit_id = u.id AND t.status IN ('assigned', 'accepted'))
        ORDER BY u.geom <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)
        LIMIT :candidates
    ), measured AS (
        SELECT n.*, ST_X(n.geom) AS lon, ST_Y(n.geom) AS lat,
               ST_Distance(n.geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) AS distance_m,
               CASE WHEN n.kind = 'land' THEN :detour ELSE 1.0 END AS factor
        FROM nearest n
    )
    SELECT id, callsign, agency_code, kind, capabilities, cruising_speed_kmh, lon, lat, distance_m,
           distance_m * factor AS travel_distance_m,
           distance_m * factor / (cruising_speed_kmh / 3.6) AS eta_s,
           (SELECT count(*) FROM nearest) AS considered
    FROM measured
    ORDER BY eta_s, id
    LIMIT :limit
    """
)


@dataclass(frozen=True)
class Authority:
    """Who may act at an incident's place: its own agency in its own state, members of a joint sector there."""

    own_state: list[str]
    joint: list[str]

    @property
    def agencies(self) -> list[str]:
        return sorted(set(self.own_state) | set(self.joint))


def authority_of(row) -> Authority:
    """The agencies with authority at an incident's place (a row of :data:`INCIDENT_AUTHORITY`)."""
    # Own state: the incident's agency where its state's land or territorial sea holds the place.
    own = [row.agency_code] if row.state is not None and row.state == row.country else []
    return Authority(own_state=own, joint=list(row.joint_agencies))


def eligible_units(session: Session, incident_row, *, limit: int, unit_id: int | None = None) -> tuple[list, int]:
    """The eligible units (or only ``unit_id``, if eligible) nearest by ETA, and how many were considered."""
    authority = authority_of(incident_row)
    if not authority.agencies:
        return [], 0
    rows = session.execute(
        NEAREST_ELIGIBLE,
        {
            "kinds": list(DOMAIN_KINDS[incident_row.domain]),
            "agencies": authority.agencies,
            "unit": unit_id,
            "lon": incident_row.lon,
            "lat": incident_row.lat,
            "detour": LAND_DETOUR_FACTOR,
            "candidates": max(KNN_CANDIDATES, limit),
            "limit": limit,
        },
    ).all()
    return rows, (rows[0].considered if rows else 0)


def _visible_incident_row(session: Session, principal: Principal, incident_id: int):
    get_incident(session=session, principal=principal, incident_id=incident_id)
    return session.execute(INCIDENT_AUTHORITY, {"id": incident_id}).one()


def recommend(*, session: Session, principal: Principal, incident_id: int, limit: int = 10) -> schemas.Recommendation:
    """Eligible units ranked by estimated time of arrival.

    Eligible: available, without an open tasking, of the incident's domain (at sea: boats and
    aircraft; on land: land units and aircraft), of an agency with authority at the place (the
    incident's agency in its own state's land or territorial sea, or a member of a joint sector
    there whose agreement includes the incident's agency).
    """
    require_role(principal, DISPATCHERS, "ask for dispatch recommendations")
    row = _visible_incident_row(session, principal, incident_id)
    if row.agency_code != principal.agency_code:
        raise IncidentNotFound(f"incident {incident_id} is {row.agency_code}'s to dispatch")
    if row.status not in OPEN_INCIDENT:
        raise IllegalTransition(
            f"incident {incident_id} is {row.status}; there is nothing to dispatch", status=row.status
        )
    rows, considered = eligible_units(session, row, limit=limit)
    own = set(authority_of(row).own_state)
    return schemas.Recommendation(
        incident_id=incident_id,
        incident_domain=row.domain,
        eligible_kinds=list(DOMAIN_KINDS[row.domain]),
        eta_method=(
            f"straight line at cruising speed at sea and in the air; on land, straight line times "
            f"{LAND_DETOUR_FACTOR} (detour factor) at cruising speed"
        ),
        land_detour_factor=LAND_DETOUR_FACTOR,
        candidates_considered=considered,
        units=[
            schemas.Candidate(
                unit_id=r.id,
                callsign=r.callsign,
                agency_code=r.agency_code,
                kind=r.kind,
                capabilities=list(r.capabilities),
                cruising_speed_kmh=r.cruising_speed_kmh,
                geometry=point(r.lon, r.lat),
                distance_m=round(r.distance_m, 1),
                travel_distance_m=round(r.travel_distance_m, 1),
                eta_s=round(r.eta_s, 1),
                authority="own_state" if r.agency_code in own else "joint_sector",
            )
            for r in rows
        ],
    )
