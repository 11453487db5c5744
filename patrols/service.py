"""What the patrol domain does: units and their positions, incidents and their timeline,
dispatch recommendations and taskings, joint patrols and coverage. Callers own the transaction.

Scope: an agency sees its own units and those of a partner that lie inside a joint patrol sector
whose agreement includes both agencies (operational coordination); its own incidents and those a
partner releases to it by a sharing agreement (``sharing.service``, redacted there too). Changes are made by the owning
agency only (a unit's own device may report for that unit and answer its taskings).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import orjson
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from audit import service as audit
from audit.service import Change
from core import topics
from core.errors import Conflict, InvalidInput, NotAuthorised, NotFound
from core.models import User
from core.paging import decode_cursor, encode_cursor
from core.permissions import DISPATCHERS, MANAGERS, require_role
from core.security import Principal, mosquitto_password_hash
from patrols import schemas
from patrols.models import (
    HandoverPoint,
    Incident,
    IncidentAlert,
    IncidentEvent,
    JointPatrol,
    JointPatrolUnit,
    PatrolUnit,
    Tasking,
)
from sharing import service as sharing

# Straight-line distance times this on land: roads and tracks are not straight.
LAND_DETOUR_FACTOR = 1.4
# The recommendation ranks by ETA among this many nearest eligible units (index order).
KNN_CANDIDATES = 64
MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_POSITION_AGE = timedelta(days=30)
DEFAULT_PAGE = 100
MAX_PAGE = 500

OPEN_INCIDENT = ("new", "assigned", "en_route", "on_scene")
CLOSED_INCIDENT = ("resolved", "false_alarm", "closed")
OPEN_TASKING = ("assigned", "accepted")
# The unit status machine; a tasking moves the unit too (accepted: en route; incident closed: available).
UNIT_TRANSITIONS = {
    "available": ("en_route", "off_duty"),
    "en_route": ("on_scene",),
    "on_scene": ("returning",),
    "returning": ("available", "off_duty"),
    "off_duty": ("available",),
}
ENDED_TASKING_ACTIONS = {"completed": "tasking.complete", "cancelled": "tasking.cancel"}
DOMAIN_KINDS = {"maritime": ("maritime", "air"), "land": ("land", "air")}


# -- errors --------------------------------------------------------------------------------
class UnitNotFound(NotFound):
    code = "unit_not_found"


class IncidentNotFound(NotFound):
    code = "incident_not_found"


class TaskingNotFound(NotFound):
    code = "tasking_not_found"


class JointPatrolNotFound(NotFound):
    code = "joint_patrol_not_found"


class IllegalTransition(Conflict):
    code = "illegal_transition"


class UnitNotEligible(Conflict):
    code = "unit_not_eligible"


def _page(rows: list, limit: int) -> tuple[list, str | None]:
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1].id)
    return rows, None


def _point(lon: float, lat: float) -> schemas.PointGeometry:
    return schemas.PointGeometry(coordinates=[round(lon, 7), round(lat, 7)])


def sync_token(*, session: Session) -> str:
    """Every transaction with an id below this had finished when it was taken (so nothing is missed)."""
    return str(session.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")).scalar_one())


def decode_sync_token(token: str | None) -> int | None:
    if token is None or token == "":
        return None
    if not re.fullmatch(r"[0-9]{1,19}", token) or int(token) >= 2**63:
        raise InvalidInput("since must be a sync_token this service handed out", parameter="since")
    return int(token)


# -- units ---------------------------------------------------------------------------------
_UNIT_SELECT = """
    SELECT u.id, u.agency_code, u.callsign, u.kind, u.capabilities, u.cruising_speed_kmh, u.status, u.status_at,
           u.username, ST_X(u.home_base) AS home_lon, ST_Y(u.home_base) AS home_lat, ST_X(u.geom) AS lon,
           ST_Y(u.geom) AS lat, u.position_at, u.version, u.updated_at
    FROM patrol_units u
"""
# Own units, and a partner's units inside a joint sector whose agreement includes both agencies.
_UNIT_VISIBLE = """(u.agency_code = :agency OR EXISTS (
    SELECT 1 FROM zones z WHERE z.kind = 'joint_patrol_sector'
      AND z.member_agencies @> ARRAY[CAST(:agency AS varchar), CAST(u.agency_code AS varchar)]
      AND ST_Intersects(z.geom, u.geom)))"""
# For read queries elsewhere (the map features): the same scope, binding :agency.
UNIT_VISIBLE_SQL = _UNIT_VISIBLE


def _unit_out(row) -> schemas.UnitOut:
    return schemas.UnitOut(
        id=row.id, agency_code=row.agency_code, callsign=row.callsign, kind=row.kind,
        capabilities=list(row.capabilities), cruising_speed_kmh=row.cruising_speed_kmh, status=row.status,
        status_at=row.status_at, username=row.username, home_base=_point(row.home_lon, row.home_lat),
        geometry=_point(row.lon, row.lat), position_at=row.position_at, version=row.version,
        updated_at=row.updated_at,
    )


def create_unit(*, session: Session, principal: Principal, unit_in: schemas.UnitCreate) -> schemas.UnitOut:
    """A new unit of the caller's agency, available at its home base."""
    require_role(principal, MANAGERS, "create patrol units")
    if unit_in.username is not None:
        user = session.query(User).filter(User.username == unit_in.username).one_or_none()
        if user is None or user.agency_code != principal.agency_code:
            raise InvalidInput(f"user {unit_in.username} is not a user of {principal.agency_code}", field="username")
        if user.role != "patrol_unit":
            raise InvalidInput(f"user {unit_in.username} has role {user.role}, not patrol_unit", field="username")
        if session.query(PatrolUnit.id).filter(PatrolUnit.username == unit_in.username).first() is not None:
            raise Conflict(f"user {unit_in.username} already reports for another unit")
    if session.query(PatrolUnit.id).filter(
        PatrolUnit.agency_code == principal.agency_code, PatrolUnit.callsign == unit_in.callsign
    ).first() is not None:
        raise Conflict(f"callsign {unit_in.callsign} is already used in {principal.agency_code}")
    home = f"SRID=4326;POINT({unit_in.home_lon} {unit_in.home_lat})"
    unit = PatrolUnit(
        agency_code=principal.agency_code, callsign=unit_in.callsign, kind=unit_in.kind,
        capabilities=sorted(set(unit_in.capabilities)), cruising_speed_kmh=unit_in.cruising_speed_kmh,
        home_base=home, geom=home, username=unit_in.username,
        # No broker access until credentials are issued (POST /units/{id}/credentials).
        mqtt_password_hash="!",
    )
    session.add(unit)
    session.flush()
    audit.record(session=session, actor=principal.username, action="unit.create", entity_type="unit",
                 entity_id=unit.id, agencies=[unit.agency_code],
                 details={"callsign": unit.callsign, "kind": unit.kind, "status": "available",
                          "username": unit.username})
    return get_unit(session=session, principal=principal, unit_id=unit.id)


def get_unit(*, session: Session, principal: Principal, unit_id: int) -> schemas.UnitOut:
    row = session.execute(
        text(f"{_UNIT_SELECT} WHERE u.id = :id AND {_UNIT_VISIBLE}"), {"id": unit_id, "agency": principal.agency_code}
    ).one_or_none()
    if row is None:
        raise UnitNotFound(f"unit {unit_id} does not exist or is not visible to {principal.agency_code}")
    return _unit_out(row)


def list_units(
    *, session: Session, principal: Principal, cursor: str | None = None, limit: int = DEFAULT_PAGE,
    status: Sequence[str] | None = None, kind: Sequence[str] | None = None,
) -> schemas.UnitPage:
    after = decode_cursor(cursor) or 0
    where = [_UNIT_VISIBLE, "u.id > :after"]
    params: dict = {"agency": principal.agency_code, "after": after, "limit": limit + 1}
    if status:
        where.append("u.status = ANY(CAST(:status AS text[]))")
        params["status"] = list(status)
    if kind:
        where.append("u.kind = ANY(CAST(:kind AS text[]))")
        params["kind"] = list(kind)
    rows = session.execute(
        text(f"{_UNIT_SELECT} WHERE {' AND '.join(where)} ORDER BY u.id LIMIT :limit"), params
    ).all()
    rows, next_cursor = _page(rows, limit)
    return schemas.UnitPage(items=[_unit_out(r) for r in rows], next_cursor=next_cursor)


def _own_unit_for_update(session: Session, principal: Principal, unit_id: int, action: str) -> PatrolUnit:
    """The unit, locked, if the caller may act for it: its own device, or a dispatcher of its agency."""
    unit = session.get(PatrolUnit, unit_id, with_for_update=True)
    if unit is None or unit.agency_code != principal.agency_code:
        raise UnitNotFound(f"unit {unit_id} does not exist or is not visible to {principal.agency_code}")
    if principal.role == "patrol_unit":
        if unit.username != principal.username:
            raise NotAuthorised(f"user {principal.username} does not report for unit {unit_id}")
    else:
        require_role(principal, DISPATCHERS, action)
    return unit


def issue_unit_credential(*, session: Session, principal: Principal, unit_id: int,
                          topic_root: str) -> schemas.UnitCredential:
    """A new broker password for the unit (the old one stops working once the broker is synced)."""
    require_role(principal, MANAGERS, "issue unit credentials")
    unit = _own_unit_for_update(session, principal, unit_id, "issue unit credentials")
    password = secrets.token_urlsafe(24)
    unit.mqtt_password_hash = mosquitto_password_hash(password)
    session.flush()
    audit.record(session=session, actor=principal.username, action="unit.credential", entity_type="unit",
                 entity_id=unit.id, agencies=[unit.agency_code], details={"mqtt_username": topics.unit_username(unit.id)})
    return schemas.UnitCredential(
        mqtt_username=topics.unit_username(unit.id), mqtt_password=password,
        taskings_topic=topics.taskings(topic_root, unit.agency_code, unit.id),
    )


def broker_entries(*, session: Session, topic_root: str) -> tuple[list[str], list[str]]:
    """Password lines and ACL blocks for units with a credential: each may read only its own taskings."""
    passwd, acl = [], []
    rows = session.execute(text(
        "SELECT id, agency_code, mqtt_password_hash FROM patrol_units WHERE mqtt_password_hash LIKE '$7$%' ORDER BY id"
    ))
    for row in rows:
        passwd.append(f"{topics.unit_username(row.id)}:{row.mqtt_password_hash}")
        acl.append(f"user {topics.unit_username(row.id)}\ntopic read {topics.taskings(topic_root, row.agency_code, row.id)}\n")
    return passwd, acl


def change_unit_status(*, session: Session, principal: Principal, unit_id: int,
                       change: schemas.StatusChange) -> schemas.UnitOut:
    """Move a unit along its status machine; an illegal move is refused with the allowed ones."""
    unit = _own_unit_for_update(session, principal, unit_id, "change a unit's status")
    target = change.status
    if target == unit.status:
        return get_unit(session=session, principal=principal, unit_id=unit_id)
    allowed = UNIT_TRANSITIONS[unit.status]
    if target not in allowed:
        raise IllegalTransition(
            f"unit {unit.callsign} cannot go from {unit.status} to {target} (allowed: {', '.join(allowed)})",
            status=unit.status, requested=target, allowed=list(allowed),
        )
    tasking = session.execute(
        text("SELECT id, incident_id, status FROM taskings WHERE unit_id = :u AND status IN ('assigned', 'accepted')"),
        {"u": unit.id},
    ).one_or_none()
    if target == "off_duty" and tasking is not None:
        raise IllegalTransition(f"unit {unit.callsign} has open tasking {tasking.id}; it cannot go off duty",
                                tasking_id=tasking.id)
    audit.record(session=session, actor=principal.username, action="unit.status", entity_type="unit",
                 entity_id=unit.id, agencies=[unit.agency_code, principal.agency_code],
                 details={"from": unit.status, "to": target})
    unit.status = target
    unit.status_at = datetime.now(timezone.utc)
    session.flush()
    if tasking is not None and tasking.status == "accepted" and target == "on_scene":
        _incident_follows(session, tasking.incident_id, "on_scene", principal.username,
                          f"unit {unit.callsign} on scene", {"unit_id": unit.id, "tasking_id": tasking.id})
    return get_unit(session=session, principal=principal, unit_id=unit_id)


_STORE_POSITIONS = text(
    """
    WITH input AS (
        SELECT DISTINCT ON (client_id) *
        FROM json_to_recordset(CAST(:batch AS json)) AS t(
            client_id text, observed_at timestamptz, lon float8, lat float8, speed_kmh float8, heading_deg float8,
            accuracy_m float8)
        ORDER BY client_id, observed_at DESC
    ),
    stored AS (
        INSERT INTO unit_positions (unit_id, agency_code, client_id, observed_at, geom, speed_kmh, heading_deg,
                                    accuracy_m)
        SELECT :unit, :agency, client_id, observed_at, ST_SetSRID(ST_MakePoint(lon, lat), 4326), speed_kmh,
               heading_deg, accuracy_m
        FROM input
        ON CONFLICT (unit_id, client_id) DO NOTHING
        RETURNING observed_at, geom
    ),
    latest AS (SELECT observed_at, geom FROM stored ORDER BY observed_at DESC LIMIT 1),
    moved AS (
        UPDATE patrol_units u SET geom = latest.geom, position_at = latest.observed_at
        FROM latest
        WHERE u.id = :unit AND (u.position_at IS NULL OR u.position_at < latest.observed_at)
        RETURNING u.id
    )
    SELECT (SELECT count(*) FROM stored) AS stored, (SELECT count(*) FROM moved) AS moved
    """
)


def record_positions(*, session: Session, principal: Principal, unit_id: int,
                     batch: schemas.PositionBatch) -> schemas.PositionBatchResult:
    """Store a batch of reports in one statement; reports already stored (same client id) change nothing."""
    unit = _own_unit_for_update(session, principal, unit_id, "report positions")
    now = datetime.now(timezone.utc)
    for i, p in enumerate(batch.positions):
        if p.observed_at > now + MAX_CLOCK_SKEW:
            raise InvalidInput(f"positions[{i}].observed_at lies in the future", index=i)
        if p.observed_at < now - MAX_POSITION_AGE:
            raise InvalidInput(f"positions[{i}].observed_at is older than {MAX_POSITION_AGE.days} days", index=i)
    rows = [p.model_dump(mode="json") for p in batch.positions]
    result = session.execute(
        _STORE_POSITIONS, {"batch": orjson.dumps(rows).decode(), "unit": unit.id, "agency": unit.agency_code}
    ).one()
    session.expire(unit)
    received = len(batch.positions)
    return schemas.PositionBatchResult(
        received=received, stored=result.stored, duplicates=received - result.stored,
        position_updated=bool(result.moved),
    )


def unit_track_geojson(*, session: Session, principal: Principal, unit_id: int, start: datetime | None,
                       end: datetime | None, limit: int) -> dict:
    """The unit's position history as a GeoJSON FeatureCollection of points, newest first."""
    get_unit(session=session, principal=principal, unit_id=unit_id)
    rows = session.execute(text(
        """SELECT id, client_id, observed_at, ST_X(geom) AS lon, ST_Y(geom) AS lat, speed_kmh, heading_deg, accuracy_m
           FROM unit_positions WHERE unit_id = :u
             AND (CAST(:start AS timestamptz) IS NULL OR observed_at >= :start)
             AND (CAST(:end AS timestamptz) IS NULL OR observed_at <= :end)
           ORDER BY observed_at DESC, id DESC LIMIT :limit"""
    ), {"u": unit_id, "start": start, "end": end, "limit": limit}).all()
    return {
        "type": "FeatureCollection",
        "numberReturned": len(rows),
        "features": [
            {"type": "Feature", "id": r.id, "geometry": _point(r.lon, r.lat).model_dump(),
             "properties": {"unit_id": unit_id, "client_id": r.client_id, "observed_at": r.observed_at,
                            "speed_kmh": r.speed_kmh, "heading_deg": r.heading_deg, "accuracy_m": r.accuracy_m}}
            for r in rows
        ],
    }


# -- incidents -----------------------------------------------------------------------------
# Personal fields come out of the SQL already redacted where no agreement grants them (sharing.service).
_INCIDENT_SELECT = f"""
    SELECT i.id, i.agency_code, i.title, i.category, i.priority, i.status, i.domain, i.state,
           ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, i.created_by, i.created_at, i.updated_at, i.closed_at,
           i.version, i.redacted, i.shared_by,
           ARRAY(SELECT ia.alert_id FROM incident_alerts ia WHERE ia.incident_id = i.id ORDER BY ia.alert_id)
             AS alert_ids
    FROM {sharing.INCIDENTS_SEEN}
"""
# Own incidents, and partners' that a sharing agreement releases to the caller's agency.
_INCIDENT_VISIBLE = sharing.INCIDENT_VISIBLE_SQL
INCIDENT_VISIBLE_SQL = _INCIDENT_VISIBLE


def _incident_out(row) -> schemas.IncidentOut:
    return schemas.IncidentOut(
        id=row.id, agency_code=row.agency_code, title=row.title, category=row.category, priority=row.priority,
        status=row.status, domain=row.domain, state=row.state, geometry=_point(row.lon, row.lat),
        alert_ids=list(row.alert_ids), created_by=row.created_by, created_at=row.created_at,
        updated_at=row.updated_at, closed_at=row.closed_at, version=row.version, redacted=row.redacted,
        shared_by=row.shared_by,
    )


def _add_event(session: Session, incident_id: int, actor: str, kind: str, *, status_from: str | None = None,
               status_to: str | None = None, note: str | None = None, details: dict | None = None) -> None:
    session.add(IncidentEvent(incident_id=incident_id, actor=actor, kind=kind, status_from=status_from,
                              status_to=status_to, note=note, details=details or {}))


def _place_of(session: Session, lon: float, lat: float) -> tuple[str, str | None]:
    """(domain, state) of a point: land inside a state's land area, else maritime; the state of the land or sea."""
    row = session.execute(text(
        """WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g)
           SELECT (SELECT s.code FROM states s, p WHERE ST_Intersects(s.geom, p.g) LIMIT 1) AS land,
                  (SELECT z.state FROM zones z, p WHERE z.kind = 'territorial_sea' AND z.state IS NOT NULL
                     AND ST_Intersects(z.geom, p.g) LIMIT 1) AS sea"""
    ), {"lon": lon, "lat": lat}).one()
    return ("land" if row.land else "maritime"), (row.land or row.sea)


def create_incident(*, session: Session, principal: Principal,
                    incident_in: schemas.IncidentCreate) -> schemas.IncidentOut:
    """An incident of the caller's agency, from its own alerts (each in one incident at most) or by hand."""
    require_role(principal, DISPATCHERS, "create incidents")
    alerts = []
    if incident_in.alert_ids:
        alerts = session.execute(text(
            """SELECT a.id, a.title, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat, ia.incident_id
               FROM alerts a LEFT JOIN incident_alerts ia ON ia.alert_id = a.id
               WHERE a.id = ANY(CAST(:ids AS bigint[])) AND a.agency_code = :agency
               ORDER BY array_position(CAST(:ids AS bigint[]), a.id)
               FOR UPDATE OF a"""
        ), {"ids": incident_in.alert_ids, "agency": principal.agency_code}).all()
        missing = sorted(set(incident_in.alert_ids) - {a.id for a in alerts})
        if missing:
            raise NotFound(f"alerts {missing} do not exist or are not {principal.agency_code}'s", alert_ids=missing)
        taken = {a.id: a.incident_id for a in alerts if a.incident_id is not None}
        if taken:
            raise Conflict(f"alerts already belong to incidents: {taken}", alerts={str(k): v for k, v in taken.items()})
    lon, lat = (incident_in.lon, incident_in.lat) if incident_in.lon is not None else (alerts[0].lon, alerts[0].lat)
    domain, state = _place_of(session, lon, lat)
    incident = Incident(
        agency_code=principal.agency_code, title=incident_in.title or alerts[0].title, category=incident_in.category,
        priority=incident_in.priority, status="new", domain=domain, state=state,
        geom=f"SRID=4326;POINT({lon} {lat})", created_by=principal.username,
    )
    session.add(incident)
    session.flush()
    _add_event(session, incident.id, principal.username, "created", status_to="new", note=incident_in.note,
               details={"domain": domain, "state": state})
    for alert in alerts:
        session.add(IncidentAlert(alert_id=alert.id, incident_id=incident.id))
        _add_event(session, incident.id, principal.username, "alert_linked", details={"alert_id": alert.id})
    if alerts:
        session.execute(text("UPDATE alerts SET status = 'incident' WHERE id = ANY(CAST(:ids AS bigint[]))"),
                        {"ids": [a.id for a in alerts]})
    session.flush()
    audit.record(session=session, actor=principal.username, action="incident.create", entity_type="incident",
                 entity_id=incident.id, agencies=[incident.agency_code],
                 details={"title": incident.title, "category": incident.category, "priority": incident.priority,
                          "domain": domain, "state": state, "lon": lon, "lat": lat,
                          "alert_ids": [a.id for a in alerts]})
    return get_incident(session=session, principal=principal, incident_id=incident.id)


def get_incident(*, session: Session, principal: Principal, incident_id: int) -> schemas.IncidentOut:
    row = session.execute(text(f"{_INCIDENT_SELECT} WHERE i.id = :id AND {_INCIDENT_VISIBLE}"),
                          {"id": incident_id, "agency": principal.agency_code}).one_or_none()
    if row is None:
        raise IncidentNotFound(f"incident {incident_id} does not exist or is not visible to {principal.agency_code}")
    sharing.record_shared_read(session=session, principal=principal, entity_type="incident",
                               rows=[(row.id, row.shared_by)], via="incident")
    return _incident_out(row)


def list_incidents(*, session: Session, principal: Principal, cursor: str | None = None, limit: int = DEFAULT_PAGE,
                   status: Sequence[str] | None = None) -> schemas.IncidentPage:
    """Visible incidents, newest first."""
    before = decode_cursor(cursor)
    where = [_INCIDENT_VISIBLE]
    params: dict = {"agency": principal.agency_code, "limit": limit + 1}
    if before is not None:
        where.append("i.id < :before")
        params["before"] = before
    if status:
        where.append("i.status = ANY(CAST(:status AS text[]))")
        params["status"] = list(status)
    rows = session.execute(
        text(f"{_INCIDENT_SELECT} WHERE {' AND '.join(where)} ORDER BY i.id DESC LIMIT :limit"), params
    ).all()
    rows, next_cursor = _page(rows, limit)
    sharing.record_shared_read(session=session, principal=principal, entity_type="incident",
                               rows=[(r.id, r.shared_by) for r in rows], via="incidents")
    return schemas.IncidentPage(items=[_incident_out(r) for r in rows], next_cursor=next_cursor)


def _own_incident_for_update(session: Session, principal: Principal, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id, with_for_update=True)
    if incident is None or incident.agency_code != principal.agency_code:
        raise IncidentNotFound(f"incident {incident_id} does not exist or is not visible to {principal.agency_code}")
    return incident


def add_note(*, session: Session, principal: Principal, incident_id: int, note: str) -> schemas.Timeline:
    require_role(principal, DISPATCHERS, "add notes to incidents")
    incident = _own_incident_for_update(session, principal, incident_id)
    _add_event(session, incident.id, principal.username, "note", note=note)
    incident.updated_at = datetime.now(timezone.utc)
    session.flush()
    audit.record(session=session, actor=principal.username, action="incident.note", entity_type="incident",
                 entity_id=incident.id, agencies=[incident.agency_code], details={"note": note})
    return timeline(session=session, principal=principal, incident_id=incident_id)


def timeline(*, session: Session, principal: Principal, incident_id: int) -> schemas.Timeline:
    """The incident's events; of a redacted (shared without personal data) incident, without notes and
    with the owning agency in place of each actor."""
    incident = get_incident(session=session, principal=principal, incident_id=incident_id)
    rows = session.execute(text(
        "SELECT e.id, e.at, CASE WHEN :redacted THEN :owner ELSE e.actor END AS actor, e.kind, e.status_from, "
        "e.status_to, CASE WHEN :redacted THEN NULL ELSE e.note END AS note, e.details FROM incident_events e "
        "WHERE e.incident_id = :id ORDER BY e.id"
    ), {"id": incident_id, "redacted": incident.redacted, "owner": incident.agency_code}).all()
    return schemas.Timeline(incident_id=incident_id, entries=[schemas.TimelineEntry(**r._mapping) for r in rows])


def _incident_follows(session: Session, incident_id: int, target: str, actor: str, note: str,
                      details: dict) -> None:
    """Move an open incident forward as its units move (never backwards, never out of a closed state)."""
    order = {"new": 0, "assigned": 1, "en_route": 2, "on_scene": 3}
    incident = session.get(Incident, incident_id, with_for_update=True)
    if incident.status in order and order[target] > order[incident.status]:
        _add_event(session, incident.id, actor, "status", status_from=incident.status, status_to=target, note=note,
                   details=details)
        audit.record(session=session, actor=actor, action="incident.status", entity_type="incident",
                     entity_id=incident.id, agencies=[incident.agency_code],
                     details={"from": incident.status, "to": target, "reason": note, **details})
        incident.status = target
        session.flush()


def change_incident_status(*, session: Session, principal: Principal, incident_id: int,
                           change: schemas.IncidentStatusChange) -> schemas.IncidentOut:
    """Resolve, call a false alarm, or close; open taskings end and their units become available."""
    require_role(principal, DISPATCHERS, "change an incident's status")
    incident = _own_incident_for_update(session, principal, incident_id)
    target = change.status
    if target == incident.status:
        return get_incident(session=session, principal=principal, incident_id=incident_id)
    if incident.status == "closed" or (incident.status in CLOSED_INCIDENT and target != "closed"):
        raise IllegalTransition(f"incident {incident_id} is {incident.status}; it can only be closed",
                                status=incident.status, requested=target)
    status_from = incident.status
    _add_event(session, incident.id, principal.username, "status", status_from=incident.status, status_to=target,
               note=change.note)
    incident.status = target
    incident.closed_at = incident.closed_at or datetime.now(timezone.utc)
    session.flush()
    freed = session.execute(text(
        """WITH ended AS (
               UPDATE taskings SET status = CASE status WHEN 'accepted' THEN 'completed' ELSE 'cancelled' END
               WHERE incident_id = :id AND status IN ('assigned', 'accepted')
               RETURNING id, unit_id, unit_agency_code, status)
           , freed AS (
               UPDATE patrol_units u SET status = 'available', status_at = now()
               FROM ended WHERE u.id = ended.unit_id AND u.status IN ('en_route', 'on_scene', 'returning')
               RETURNING u.id, u.agency_code, (SELECT p.status FROM patrol_units p WHERE p.id = u.id) AS was)
           SELECT (SELECT coalesce(json_agg(ended), '[]') FROM ended)::text AS ended,
                  (SELECT coalesce(json_agg(freed), '[]') FROM freed)::text AS freed"""
    ), {"id": incident.id}).one()
    changes = [Change(principal.username, "incident.status", "incident", incident.id, [incident.agency_code],
                      {"from": status_from, "to": target, "note": change.note})]
    for ended in orjson.loads(freed.ended):
        _add_event(session, incident.id, principal.username, "tasking", status_to=ended["status"],
                   details={"tasking_id": ended["id"], "unit_id": ended["unit_id"]})
        changes.append(Change(principal.username, ENDED_TASKING_ACTIONS[ended["status"]],
                              "tasking", ended["id"], [incident.agency_code, ended["unit_agency_code"]],
                              {"incident_id": incident.id, "unit_id": ended["unit_id"], "to": ended["status"]}))
    for unit in orjson.loads(freed.freed):
        changes.append(Change(principal.username, "unit.status", "unit", unit["id"],
                              [unit["agency_code"], incident.agency_code],
                              {"from": unit["was"], "to": "available", "incident_id": incident.id}))
    session.flush()
    audit.record_many(session=session, changes=changes)
    return get_incident(session=session, principal=principal, incident_id=incident_id)


# -- dispatch ------------------------------------------------------------------------------
_INCIDENT_AUTHORITY = text(
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
_NEAREST_ELIGIBLE = text(
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
class _Authority:
    own_state: list[str]
    joint: list[str]

    @property
    def agencies(self) -> list[str]:
        return sorted(set(self.own_state) | set(self.joint))


def _authority(row) -> _Authority:
    # Own state: the incident's agency where its state's land or territorial sea holds the place.
    own = [row.agency_code] if row.state is not None and row.state == row.country else []
    return _Authority(own_state=own, joint=list(row.joint_agencies))


def _eligible(session: Session, incident_row, *, limit: int, unit_id: int | None = None) -> tuple[list, int]:
    authority = _authority(incident_row)
    if not authority.agencies:
        return [], 0
    rows = session.execute(_NEAREST_ELIGIBLE, {
        "kinds": list(DOMAIN_KINDS[incident_row.domain]), "agencies": authority.agencies, "unit": unit_id,
        "lon": incident_row.lon, "lat": incident_row.lat, "detour": LAND_DETOUR_FACTOR,
        "candidates": max(KNN_CANDIDATES, limit), "limit": limit,
    }).all()
    return rows, (rows[0].considered if rows else 0)


def _visible_incident_row(session: Session, principal: Principal, incident_id: int):
    get_incident(session=session, principal=principal, incident_id=incident_id)
    return session.execute(_INCIDENT_AUTHORITY, {"id": incident_id}).one()


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
        raise IllegalTransition(f"incident {incident_id} is {row.status}; there is nothing to dispatch",
                                status=row.status)
    rows, considered = _eligible(session, row, limit=limit)
    own = set(_authority(row).own_state)
    return schemas.Recommendation(
        incident_id=incident_id, incident_domain=row.domain, eligible_kinds=list(DOMAIN_KINDS[row.domain]),
        eta_method=(f"straight line at cruising speed at sea and in the air; on land, straight line times "
                    f"{LAND_DETOUR_FACTOR} (detour factor) at cruising speed"),
        land_detour_factor=LAND_DETOUR_FACTOR, candidates_considered=considered,
        units=[schemas.Candidate(
            unit_id=r.id, callsign=r.callsign, agency_code=r.agency_code, kind=r.kind,
            capabilities=list(r.capabilities), cruising_speed_kmh=r.cruising_speed_kmh,
            geometry=_point(r.lon, r.lat), distance_m=round(r.distance_m, 1),
            travel_distance_m=round(r.travel_distance_m, 1), eta_s=round(r.eta_s, 1),
            authority="own_state" if r.agency_code in own else "joint_sector",
        ) for r in rows],
    )


# -- taskings ------------------------------------------------------------------------------
# The incident as the reader's agency (:agency) sees it: a partner unit tasked to an incident gets its
# category, priority, status and place, and its title only if an agreement grants personal data.
# The tasking's note and author belong to the two agencies party to it (the tasking one and the
# unit's); another reader of a redacted incident gets neither.
_TASKING_PARTY = "(NOT i.redacted OR :agency IN (t.agency_code, t.unit_agency_code))"
_TASKING_SELECT = f"""
    SELECT t.id, t.incident_id, t.unit_id, t.agency_code, t.unit_agency_code, t.status,
           CASE WHEN {_TASKING_PARTY} THEN t.note END AS note, t.eta_s,
           CASE WHEN {_TASKING_PARTY} THEN t.created_by END AS created_by,
           t.created_at, t.updated_at, t.responded_at, t.version, t.change_xid,
           i.title, i.category, i.priority, i.status AS incident_status, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat
    FROM taskings t JOIN {sharing.INCIDENTS_SEEN} ON i.id = t.incident_id
"""


def _tasking_out(row) -> schemas.TaskingOut:
    return schemas.TaskingOut(
        id=row.id, incident_id=row.incident_id, unit_id=row.unit_id, agency_code=row.agency_code,
        unit_agency_code=row.unit_agency_code, status=row.status, note=row.note, eta_s=row.eta_s,
        created_by=row.created_by, created_at=row.created_at, updated_at=row.updated_at,
        responded_at=row.responded_at, version=row.version,
        incident={"title": row.title, "category": row.category, "priority": row.priority,
                  "status": row.incident_status, "geometry": _point(row.lon, row.lat).model_dump()},
    )


def get_tasking(*, session: Session, principal: Principal, tasking_id: int) -> schemas.TaskingOut:
    row = session.execute(text(f"{_TASKING_SELECT} WHERE t.id = :id AND :agency IN (t.agency_code, t.unit_agency_code)"),
                          {"id": tasking_id, "agency": principal.agency_code}).one_or_none()
    if row is None:
        raise TaskingNotFound(f"tasking {tasking_id} does not exist or is not visible to {principal.agency_code}")
    return _tasking_out(row)


def assign(*, session: Session, principal: Principal, incident_id: int,
           tasking_in: schemas.TaskingCreate) -> schemas.TaskingOut:
    """Task an eligible unit (same rules as the recommendation) to an open incident of the caller's agency."""
    require_role(principal, DISPATCHERS, "task units")
    incident = _own_incident_for_update(session, principal, incident_id)
    if incident.status not in OPEN_INCIDENT:
        raise IllegalTransition(f"incident {incident_id} is {incident.status}; units cannot be tasked to it")
    unit = session.get(PatrolUnit, tasking_in.unit_id, with_for_update=True)
    row = session.execute(_INCIDENT_AUTHORITY, {"id": incident_id}).one()
    authority = _authority(row)
    if unit is None or (unit.agency_code != principal.agency_code and unit.agency_code not in authority.joint):
        raise UnitNotFound(f"unit {tasking_in.unit_id} does not exist or is not visible to {principal.agency_code}")
    eligible, _ = _eligible(session, row, limit=1, unit_id=unit.id)
    if not eligible:
        reasons = []
        if unit.status != "available":
            reasons.append(f"it is {unit.status}")
        if unit.kind not in DOMAIN_KINDS[incident.domain]:
            reasons.append(f"a {unit.kind} unit cannot serve a {incident.domain} incident")
        if unit.agency_code not in authority.agencies:
            reasons.append(f"{unit.agency_code} has no authority at the incident's place")
        if not reasons:
            reasons.append("it already has an open tasking")
        raise UnitNotEligible(f"unit {unit.callsign} cannot be tasked: {'; '.join(reasons)}", reasons=reasons)
    tasking = Tasking(
        incident_id=incident.id, unit_id=unit.id, agency_code=incident.agency_code,
        unit_agency_code=unit.agency_code, status="assigned", note=tasking_in.note,
        eta_s=round(eligible[0].eta_s, 1), created_by=principal.username,
    )
    session.add(tasking)
    try:
        session.flush()
    except IntegrityError:
        raise UnitNotEligible(f"unit {unit.callsign} already has an open tasking") from None
    _add_event(session, incident.id, principal.username, "tasking", status_to="assigned",
               details={"tasking_id": tasking.id, "unit_id": unit.id, "callsign": unit.callsign,
                        "eta_s": tasking.eta_s})
    audit.record(session=session, actor=principal.username, action="tasking.create", entity_type="tasking",
                 entity_id=tasking.id, agencies=[tasking.agency_code, tasking.unit_agency_code],
                 details={"incident_id": incident.id, "unit_id": unit.id, "callsign": unit.callsign,
                          "eta_s": tasking.eta_s, "note": tasking.note})
    _incident_follows(session, incident.id, "assigned", principal.username, f"unit {unit.callsign} tasked",
                      {"tasking_id": tasking.id, "unit_id": unit.id})
    return get_tasking(session=session, principal=principal, tasking_id=tasking.id)


def _tasking_for_unit(session: Session, principal: Principal, tasking_id: int) -> tuple[Tasking, PatrolUnit]:
    tasking = session.get(Tasking, tasking_id, with_for_update=True)
    if tasking is None or principal.agency_code not in (tasking.unit_agency_code,):
        raise TaskingNotFound(f"tasking {tasking_id} does not exist or is not visible to {principal.agency_code}")
    unit = _own_unit_for_update(session, principal, tasking.unit_id, "answer taskings")
    return tasking, unit


def accept(*, session: Session, principal: Principal, tasking_id: int,
           response: schemas.TaskingResponse | None = None) -> schemas.TaskingOut:
    """The unit takes the tasking and is en route; accepting again changes nothing."""
    tasking, unit = _tasking_for_unit(session, principal, tasking_id)
    if tasking.status == "accepted":
        return get_tasking(session=session, principal=principal, tasking_id=tasking_id)
    if tasking.status != "assigned":
        raise IllegalTransition(f"tasking {tasking_id} is {tasking.status}; it can no longer be accepted",
                                status=tasking.status)
    if unit.status != "available":
        raise IllegalTransition(f"unit {unit.callsign} is {unit.status}; only an available unit can accept",
                                unit_status=unit.status)
    now = datetime.now(timezone.utc)
    tasking.status, tasking.responded_at = "accepted", now
    unit.status, unit.status_at = "en_route", now
    session.flush()
    note = response.note if response else None
    _add_event(session, tasking.incident_id, principal.username, "tasking", status_from="assigned",
               status_to="accepted", note=note, details={"tasking_id": tasking.id, "unit_id": unit.id})
    audit.record_many(session=session, changes=[
        Change(principal.username, "tasking.accept", "tasking", tasking.id,
               [tasking.agency_code, tasking.unit_agency_code],
               {"incident_id": tasking.incident_id, "unit_id": unit.id, "note": note}),
        Change(principal.username, "unit.status", "unit", unit.id, [unit.agency_code, tasking.agency_code],
               {"from": "available", "to": "en_route", "tasking_id": tasking.id}),
    ])
    _incident_follows(session, tasking.incident_id, "en_route", principal.username,
                      f"unit {unit.callsign} en route", {"tasking_id": tasking.id, "unit_id": unit.id})
    return get_tasking(session=session, principal=principal, tasking_id=tasking_id)


def decline(*, session: Session, principal: Principal, tasking_id: int,
            response: schemas.TaskingResponse | None = None) -> schemas.TaskingOut:
    """The unit turns the tasking down; the incident goes back to new if no other unit is tasked."""
    tasking, unit = _tasking_for_unit(session, principal, tasking_id)
    if tasking.status == "declined":
        return get_tasking(session=session, principal=principal, tasking_id=tasking_id)
    if tasking.status != "assigned":
        raise IllegalTransition(f"tasking {tasking_id} is {tasking.status}; it can no longer be declined",
                                status=tasking.status)
    tasking.status, tasking.responded_at = "declined", datetime.now(timezone.utc)
    session.flush()
    _add_event(session, tasking.incident_id, principal.username, "tasking", status_from="assigned",
               status_to="declined", note=response.note if response else None,
               details={"tasking_id": tasking.id, "unit_id": unit.id})
    audit.record(session=session, actor=principal.username, action="tasking.decline", entity_type="tasking",
                 entity_id=tasking.id, agencies=[tasking.agency_code, tasking.unit_agency_code],
                 details={"incident_id": tasking.incident_id, "unit_id": unit.id,
                          "note": response.note if response else None})
    incident = session.get(Incident, tasking.incident_id, with_for_update=True)
    still_open = session.execute(text(
        "SELECT count(*) FROM taskings WHERE incident_id = :i AND status IN ('assigned', 'accepted')"
    ), {"i": incident.id}).scalar_one()
    if incident.status == "assigned" and not still_open:
        _add_event(session, incident.id, principal.username, "status", status_from="assigned", status_to="new",
                   note=f"unit {unit.callsign} declined", details={"tasking_id": tasking.id})
        audit.record(session=session, actor=principal.username, action="incident.status", entity_type="incident",
                     entity_id=incident.id, agencies=[incident.agency_code],
                     details={"from": "assigned", "to": "new", "tasking_id": tasking.id})
        incident.status = "new"
        session.flush()
    return get_tasking(session=session, principal=principal, tasking_id=tasking_id)


def unit_taskings(*, session: Session, principal: Principal, unit_id: int, since: str | None = None,
                  cursor: str | None = None, limit: int = DEFAULT_PAGE) -> schemas.TaskingSync:
    """A unit's taskings (oldest first); with ``since`` only those changed after that sync."""
    unit = session.get(PatrolUnit, unit_id)
    if unit is None or unit.agency_code != principal.agency_code:
        raise UnitNotFound(f"unit {unit_id} does not exist or is not visible to {principal.agency_code}")
    if principal.role == "patrol_unit" and unit.username != principal.username:
        raise NotAuthorised(f"user {principal.username} does not report for unit {unit_id}")
    token = sync_token(session=session)
    since_xid = decode_sync_token(since)
    after = decode_cursor(cursor) or 0
    rows = session.execute(text(
        f"""{_TASKING_SELECT}
            WHERE t.unit_id = :unit AND t.id > :after
              AND (CAST(:since AS bigint) IS NULL OR t.change_xid >= :since)
            ORDER BY t.id LIMIT :limit"""
    ), {"unit": unit_id, "after": after, "since": since_xid, "limit": limit + 1,
        "agency": principal.agency_code}).all()
    rows, next_cursor = _page(rows, limit)
    return schemas.TaskingSync(items=[_tasking_out(r) for r in rows], next_cursor=next_cursor, sync_token=token)


def incident_taskings(*, session: Session, principal: Principal, incident_id: int) -> list[schemas.TaskingOut]:
    get_incident(session=session, principal=principal, incident_id=incident_id)
    rows = session.execute(text(f"{_TASKING_SELECT} WHERE t.incident_id = :id ORDER BY t.id"),
                           {"id": incident_id, "agency": principal.agency_code}).all()
    return [_tasking_out(r) for r in rows]


def tasking_for_unit(*, session: Session, tasking: schemas.TaskingOut) -> schemas.TaskingOut:
    """The tasking as the tasked unit's agency sees it (what is pushed to the unit)."""
    row = session.execute(text(f"{_TASKING_SELECT} WHERE t.id = :id"),
                          {"id": tasking.id, "agency": tasking.unit_agency_code}).one()
    return _tasking_out(row)


# -- joint patrols -------------------------------------------------------------------------
def create_joint_patrol(*, session: Session, principal: Principal,
                        patrol_in: schemas.JointPatrolCreate) -> schemas.JointPatrolOut:
    """A plan in a joint sector whose agreement includes every participating agency."""
    require_role(principal, MANAGERS, "plan joint patrols")
    zone = session.execute(text(
        "SELECT id, kind, member_agencies FROM zones WHERE id = :id"), {"id": patrol_in.zone_id}
    ).one_or_none()
    if zone is None or zone.kind != "joint_patrol_sector" or principal.agency_code not in zone.member_agencies:
        raise NotFound(f"zone {patrol_in.zone_id} is not a joint patrol sector of {principal.agency_code}",
                       field="zone_id")
    if principal.agency_code not in patrol_in.agencies:
        raise InvalidInput("agencies must include the caller's agency", field="agencies")
    outsiders = sorted(set(patrol_in.agencies) - set(zone.member_agencies))
    if outsiders:
        raise InvalidInput(f"agencies {outsiders} are not party to the sector's agreement", field="agencies")
    for i, h in enumerate(patrol_in.handover_points):
        if h.from_agency == h.to_agency or {h.from_agency, h.to_agency} - set(patrol_in.agencies):
            raise InvalidInput(f"handover_points[{i}] must pass between two different participating agencies",
                               field="handover_points")
    units = session.execute(text(
        "SELECT id, agency_code FROM patrol_units WHERE id = ANY(CAST(:ids AS bigint[]))"),
        {"ids": patrol_in.unit_ids}).all() if patrol_in.unit_ids else []
    found = {u.id: u.agency_code for u in units}
    bad = [u for u in patrol_in.unit_ids if found.get(u) not in patrol_in.agencies]
    if bad:
        raise InvalidInput(f"units {bad} do not exist or are not of a participating agency", field="unit_ids")
    route = None
    if patrol_in.waypoints:
        route = "SRID=4326;LINESTRING(" + ", ".join(f"{lon} {lat}" for lon, lat in patrol_in.waypoints) + ")"
    patrol = JointPatrol(
        owner_agency=principal.agency_code, name=patrol_in.name, zone_id=zone.id, agencies=list(patrol_in.agencies),
        starts_at=patrol_in.starts_at, ends_at=patrol_in.ends_at, route=route, created_by=principal.username,
    )
    session.add(patrol)
    session.flush()
    for unit_id in patrol_in.unit_ids:
        session.add(JointPatrolUnit(patrol_id=patrol.id, unit_id=unit_id))
    for seq, h in enumerate(patrol_in.handover_points, start=1):
        session.add(HandoverPoint(patrol_id=patrol.id, seq=seq, name=h.name, from_agency=h.from_agency,
                                  to_agency=h.to_agency, geom=f"SRID=4326;POINT({h.lon} {h.lat})"))
    session.flush()
    audit.record(session=session, actor=principal.username, action="joint_patrol.create", entity_type="joint_patrol",
                 entity_id=patrol.id, agencies=list(patrol_in.agencies),
                 details={"name": patrol.name, "zone_id": zone.id, "unit_ids": list(patrol_in.unit_ids),
                          "starts_at": patrol.starts_at.isoformat(), "ends_at": patrol.ends_at.isoformat()})
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
        id=row.id, owner_agency=row.owner_agency, name=row.name, zone_id=row.zone_id, zone_name=row.zone_name,
        agencies=list(row.agencies), starts_at=row.starts_at, ends_at=row.ends_at, unit_ids=list(row.unit_ids),
        route=orjson.loads(row.route) if row.route else None,
        handover_points=orjson.loads(row.handovers), created_by=row.created_by, created_at=row.created_at,
    )


def get_joint_patrol(*, session: Session, principal: Principal, patrol_id: int) -> schemas.JointPatrolOut:
    row = session.execute(text(f"{_PATROL_SELECT} WHERE p.id = :id AND p.agencies @> ARRAY[CAST(:agency AS varchar)]"),
                          {"id": patrol_id, "agency": principal.agency_code}).one_or_none()
    if row is None:
        raise JointPatrolNotFound(f"joint patrol {patrol_id} does not exist or does not include {principal.agency_code}")
    return _patrol_out(row)


def list_joint_patrols(*, session: Session, principal: Principal, cursor: str | None = None,
                       limit: int = DEFAULT_PAGE, active_at: datetime | None = None) -> schemas.JointPatrolPage:
    after = decode_cursor(cursor) or 0
    rows = session.execute(text(
        f"""{_PATROL_SELECT}
            WHERE p.agencies @> ARRAY[CAST(:agency AS varchar)] AND p.id > :after
              AND (CAST(:at AS timestamptz) IS NULL OR (p.starts_at <= :at AND p.ends_at > :at))
            ORDER BY p.id LIMIT :limit"""
    ), {"agency": principal.agency_code, "after": after, "at": active_at, "limit": limit + 1}).all()
    rows, next_cursor = _page(rows, limit)
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


def coverage(*, session: Session, principal: Principal, buffer_m: float, gaps_hours: int | None = None,
             lookback_hours: int = 24 * 30) -> schemas.Coverage:
    """For each border segment of the caller's state: when its agency's units last passed within the buffer.

    With ``gaps_hours`` only the segments not patrolled within that many hours, high impact first.
    """
    country = session.execute(text("SELECT country FROM agencies WHERE code = :a"),
                              {"a": principal.agency_code}).scalar_one()
    since = datetime.now(timezone.utc) - timedelta(hours=lookback_hours)
    rows = session.execute(_COVERAGE, {"agency": principal.agency_code, "country": country, "buffer_m": buffer_m,
                                       "buffer_deg": _buffer_deg(buffer_m), "since": since}).all()
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


def coverage_geojson(*, session: Session, principal: Principal, buffer_m: float, gaps_hours: int,
                     bbox: tuple[float, float, float, float] | None = None, simplify: float | None = None,
                     only_gaps: bool = False, limit: int = 10000, lookback_hours: int = 24 * 30) -> str:
    """The coverage of :func:`coverage` as a GeoJSON FeatureCollection of the segments: when the
    agency's units last patrolled each (``last_patrolled_at``) and whether it is a gap (not within
    ``gaps_hours``); with ``only_gaps`` the gaps alone."""
    country = session.execute(text("SELECT country FROM agencies WHERE code = :a"),
                              {"a": principal.agency_code}).scalar_one()
    now = datetime.now(timezone.utc)
    minlon, minlat, maxlon, maxlat = bbox or (None, None, None, None)
    return session.execute(_COVERAGE_FEATURES, {
        "agency": principal.agency_code, "country": country, "buffer_m": buffer_m,
        "buffer_deg": _buffer_deg(buffer_m), "since": now - timedelta(hours=lookback_hours),
        "gap_cutoff": now - timedelta(hours=gaps_hours), "simplify": simplify, "limit": limit,
        "only_gaps": only_gaps,
        "minlon": minlon, "minlat": minlat, "maxlon": maxlon, "maxlat": maxlat,
    }).scalar_one()


# -- live feed -----------------------------------------------------------------------------
# An alert id stays "recent" this long: a slower ingest transaction may commit a lower id later.
ALERT_ID_SETTLE_S = 10.0
MAX_LIVE_EVENTS = 500


@dataclass
class LiveCursor:
    """Where a live feed stands: a sync token for units, incidents and taskings; for alerts the id
    below which everything was delivered, and the ids above it already sent (with when)."""

    since_xid: int
    alert_floor: int
    recent_alerts: dict[int, float]

    def event_id(self) -> str:
        return f"{self.since_xid}-{self.alert_floor}"

    @classmethod
    def parse(cls, raw: str) -> "LiveCursor":
        match = re.fullmatch(r"([0-9]{1,18})-([0-9]{1,18})", raw or "")
        if not match:
            raise InvalidInput("Last-Event-ID is not an event id this feed sent", parameter="Last-Event-ID")
        return cls(int(match.group(1)), int(match.group(2)), {})


def live_start(*, session: Session, principal: Principal) -> LiveCursor:
    """A cursor at this moment: the feed sends what changes from now on."""
    # Any agency's: a partner's alert released to the caller later than this is sent too.
    floor = session.execute(text("SELECT coalesce(max(id), 0) FROM alerts")).scalar_one()
    return LiveCursor(int(sync_token(session=session)), int(floor), {})


_LIVE_ALERTS = f"""
    SELECT a.id, a.agency_code, a.kind, a.severity, a.status, a.title, a.observed_at, a.class AS object_class,
           a.from_state, a.to_state, a.segment_id, a.zone_id, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat,
           a.redacted, a.shared_by
    FROM {sharing.ALERTS_SEEN}
    WHERE {sharing.ALERT_VISIBLE_SQL} AND a.id > :floor ORDER BY a.id LIMIT :limit
"""
# The live feed's alert record: what a map marker and a CoT event need (no track key or details).
_LIVE_ALERT_FIELDS = ("id", "agency_code", "kind", "severity", "status", "title", "observed_at", "object_class",
                      "from_state", "to_state", "segment_id", "zone_id", "redacted", "shared_by")


def live_changes(*, session: Session, principal: Principal, cursor: LiveCursor, types: Sequence[str],
                 clock: float, via: str = "live") -> list[tuple[str, dict]]:
    """Alerts, incidents, units and taskings in the caller's scope that changed since ``cursor``
    (which moves forward). At least once: a client keys on type and id (and version). Partners'
    alerts and incidents sent are recorded in the audit trail (one entry per type and call)."""
    token = int(sync_token(session=session))
    params = {"agency": principal.agency_code, "since": cursor.since_xid, "limit": MAX_LIVE_EVENTS}
    events: list[tuple[str, dict]] = []
    if "alert" in types:
        rows = session.execute(text(_LIVE_ALERTS), {**params, "floor": cursor.alert_floor}).all()
        sent = []
        for r in rows:
            if r.id in cursor.recent_alerts:
                continue
            cursor.recent_alerts[r.id] = clock
            sent.append((r.id, r.shared_by))
            data = {k: getattr(r, k) for k in _LIVE_ALERT_FIELDS}
            events.append(("alert", {**data, "geometry": _point(r.lon, r.lat).model_dump()}))
        sharing.record_shared_read(session=session, principal=principal, entity_type="alert", rows=sent, via=via)
        settled = [i for i, seen in cursor.recent_alerts.items() if clock - seen >= ALERT_ID_SETTLE_S]
        if settled:
            cursor.alert_floor = max(cursor.alert_floor, max(settled))
            cursor.recent_alerts = {i: t for i, t in cursor.recent_alerts.items() if i > cursor.alert_floor}
    if "incident" in types:
        rows = session.execute(text(f"{_INCIDENT_SELECT} WHERE i.change_xid >= :since AND {_INCIDENT_VISIBLE} "
                                    "ORDER BY i.id LIMIT :limit"), params).all()
        events += [("incident", _incident_out(r).model_dump(mode="json")) for r in rows]
        sharing.record_shared_read(session=session, principal=principal, entity_type="incident",
                                   rows=[(r.id, r.shared_by) for r in rows], via=via)
    if "unit" in types:
        rows = session.execute(text(f"{_UNIT_SELECT} WHERE u.change_xid >= :since AND {_UNIT_VISIBLE} "
                                    "ORDER BY u.id LIMIT :limit"), params).all()
        events += [("unit", _unit_out(r).model_dump(mode="json")) for r in rows]
    if "tasking" in types:
        rows = session.execute(text(f"{_TASKING_SELECT} WHERE t.change_xid >= :since "
                                    "AND :agency IN (t.agency_code, t.unit_agency_code) ORDER BY t.id LIMIT :limit"),
                               params).all()
        events += [("tasking", _tasking_out(r).model_dump(mode="json")) for r in rows]
    cursor.since_xid = token
    return events
