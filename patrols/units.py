"""Patrol units: registration, reading, status changes, and broker credentials for their devices.
Callers own the transaction.

Scope: an agency sees its own units and those of a partner that lie inside a joint patrol sector
whose agreement includes both agencies (operational coordination). Changes are made by the owning
agency only (a unit's own device may report for that unit and answer its taskings).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timezone

from sqlalchemy import text
from sqlalchemy.orm import Session

from accounts import service as accounts
from audit import service as audit
from core import topics
from core.errors import Conflict, InvalidInput, NotAuthorised
from core.models import User
from core.paging import decode_cursor
from core.permissions import DISPATCHERS, FIELD_ROLES, MANAGERS, require_role
from core.security import Principal, mosquitto_password_hash
from patrols import schemas
from patrols.errors import IllegalTransition, UnitNotFound
from patrols.incidents import incident_follows
from patrols.models import PatrolUnit
from patrols.pages import DEFAULT_PAGE, page_of, point

# The unit status machine; a tasking moves the unit too (accepted: en route; incident closed: available).
UNIT_TRANSITIONS = {
    "available": ("en_route", "off_duty"),
    "en_route": ("on_scene",),
    "on_scene": ("returning",),
    "returning": ("available", "off_duty"),
    "off_duty": ("available",),
}

UNIT_SELECT = """
    SELECT u.id, u.agency_code, u.callsign, u.kind, u.capabilities, u.cruising_speed_kmh, u.status, u.status_at,
           u.username, ST_X(u.home_base) AS home_lon, ST_Y(u.home_base) AS home_lat, ST_X(u.geom) AS lon,
           ST_Y(u.geom) AS lat, u.position_at, u.version, u.updated_at
    FROM patrol_units u
"""
# Own units, and a partner's units inside a joint sector whose agreement includes both agencies; also for
# read queries elsewhere (the map features): binding :agency.
UNIT_VISIBLE_SQL = """(u.agency_code = :agency OR EXISTS (
    SELECT 1 FROM zones z WHERE z.kind = 'joint_patrol_sector'
      AND z.member_agencies @> ARRAY[CAST(:agency AS varchar), CAST(u.agency_code AS varchar)]
      AND ST_Intersects(z.geom, u.geom)))"""


def unit_out(row) -> schemas.UnitOut:
    """A unit row of :data:`UNIT_SELECT` as it goes out."""
    return schemas.UnitOut(
        id=row.id,
        agency_code=row.agency_code,
        callsign=row.callsign,
        kind=row.kind,
        capabilities=list(row.capabilities),
        cruising_speed_kmh=row.cruising_speed_kmh,
        status=row.status,
        status_at=row.status_at,
        username=row.username,
        home_base=point(row.home_lon, row.home_lat),
        geometry=point(row.lon, row.lat),
        position_at=row.position_at,
        version=row.version,
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
    if (
        session.query(PatrolUnit.id)
        .filter(PatrolUnit.agency_code == principal.agency_code, PatrolUnit.callsign == unit_in.callsign)
        .first()
        is not None
    ):
        raise Conflict(f"callsign {unit_in.callsign} is already used in {principal.agency_code}")
    home = f"SRID=4326;POINT({unit_in.home_lon} {unit_in.home_lat})"
    unit = PatrolUnit(
        agency_code=principal.agency_code,
        callsign=unit_in.callsign,
        kind=unit_in.kind,
        capabilities=sorted(set(unit_in.capabilities)),
        cruising_speed_kmh=unit_in.cruising_speed_kmh,
        home_base=home,
        geom=home,
        username=unit_in.username,
        # No broker access until credentials are issued (POST /units/{id}/credentials).
        mqtt_password_hash="!",
    )
    session.add(unit)
    session.flush()
    audit.record(
        session=session,
        actor=principal.username,
        action="unit.create",
        entity_type="unit",
        entity_id=unit.id,
        agencies=[unit.agency_code],
        details={"callsign": unit.callsign, "kind": unit.kind, "status": "available", "username": unit.username},
    )
    return get_unit(session=session, principal=principal, unit_id=unit.id)


def get_unit(*, session: Session, principal: Principal, unit_id: int) -> schemas.UnitOut:
    row = session.execute(
        text(f"{UNIT_SELECT} WHERE u.id = :id AND {UNIT_VISIBLE_SQL}"), {"id": unit_id, "agency": principal.agency_code}
    ).one_or_none()
    if row is None:
        raise UnitNotFound(f"unit {unit_id} does not exist or is not visible to {principal.agency_code}")
    return unit_out(row)


def list_units(
    *,
    session: Session,
    principal: Principal,
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE,
    status: Sequence[str] | None = None,
    kind: Sequence[str] | None = None,
) -> schemas.UnitPage:
    after = decode_cursor(cursor) or 0
    where = [UNIT_VISIBLE_SQL, "u.id > :after"]
    params: dict = {"agency": principal.agency_code, "after": after, "limit": limit + 1}
    if principal.role in FIELD_ROLES:
        # A unit's device lists its own unit only (core.permissions: OWN_UNIT).
        where.append("u.username = :field_user AND u.agency_code = :agency")
        params["field_user"] = principal.username
    if status:
        where.append("u.status = ANY(CAST(:status AS text[]))")
        params["status"] = list(status)
    if kind:
        where.append("u.kind = ANY(CAST(:kind AS text[]))")
        params["kind"] = list(kind)
    rows = session.execute(text(f"{UNIT_SELECT} WHERE {' AND '.join(where)} ORDER BY u.id LIMIT :limit"), params).all()
    rows, next_cursor = page_of(rows, limit)
    return schemas.UnitPage(items=[unit_out(r) for r in rows], next_cursor=next_cursor)


def own_unit_for_update(session: Session, principal: Principal, unit_id: int, action: str) -> PatrolUnit:
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


def issue_unit_credential(
    *, session: Session, principal: Principal, unit_id: int, topic_root: str
) -> schemas.UnitCredential:
    """A new broker password for the unit (the old one stops working once the broker is synced).
    Replacing a credential (rotating a device) also revokes every API token of the unit's user."""
    require_role(principal, MANAGERS, "issue unit credentials")
    unit = own_unit_for_update(session, principal, unit_id, "issue unit credentials")
    rotated = unit.mqtt_password_hash.startswith("$7$")
    password = secrets.token_urlsafe(24)
    unit.mqtt_password_hash = mosquitto_password_hash(password)
    session.flush()
    audit.record(
        session=session,
        actor=principal.username,
        action="unit.credential",
        entity_type="unit",
        entity_id=unit.id,
        agencies=[unit.agency_code],
        details={"mqtt_username": topics.unit_username(unit.id), "rotated": rotated},
    )
    if rotated:
        _revoke_device_tokens(session, principal, unit)
    return schemas.UnitCredential(
        mqtt_username=topics.unit_username(unit.id),
        mqtt_password=password,
        taskings_topic=topics.taskings(topic_root, unit.agency_code, unit.id),
    )


def revoke_unit_credential(*, session: Session, principal: Principal, unit_id: int) -> None:
    """Withdraw the unit's broker credential (no broker entry once synced) and revoke every API token
    of the unit's user: a lost or stolen device stops receiving taskings and reading the API at once."""
    require_role(principal, MANAGERS, "revoke unit credentials")
    unit = own_unit_for_update(session, principal, unit_id, "revoke unit credentials")
    unit.mqtt_password_hash = "!"
    session.flush()
    audit.record(
        session=session,
        actor=principal.username,
        action="unit.credential.revoke",
        entity_type="unit",
        entity_id=unit.id,
        agencies=[unit.agency_code],
        details={"mqtt_username": topics.unit_username(unit.id)},
    )
    _revoke_device_tokens(session, principal, unit)


def _revoke_device_tokens(session: Session, principal: Principal, unit: PatrolUnit) -> None:
    if unit.username:
        accounts.revoke_tokens(
            session=session, username=unit.username, actor=principal.username, action="user.revoke_device"
        )


def broker_entries(*, session: Session, topic_root: str) -> tuple[list[str], list[str]]:
    """Password lines and ACL blocks for units with a credential: each may read only its own taskings."""
    passwd, acl = [], []
    rows = session.execute(
        text(
            "SELECT id, agency_code, mqtt_password_hash FROM patrol_units WHERE mqtt_password_hash LIKE '$7$%' ORDER BY id"
        )
    )
    for row in rows:
        passwd.append(f"{topics.unit_username(row.id)}:{row.mqtt_password_hash}")
        acl.append(
            f"user {topics.unit_username(row.id)}\ntopic read {topics.taskings(topic_root, row.agency_code, row.id)}\n"
        )
    return passwd, acl


def change_unit_status(
    *, session: Session, principal: Principal, unit_id: int, change: schemas.StatusChange
) -> schemas.UnitOut:
    """Move a unit along its status machine; an illegal move is refused with the allowed ones."""
    unit = own_unit_for_update(session, principal, unit_id, "change a unit's status")
    target = change.status
    if target == unit.status:
        return get_unit(session=session, principal=principal, unit_id=unit_id)
    allowed = UNIT_TRANSITIONS[unit.status]
    if target not in allowed:
        raise IllegalTransition(
            f"unit {unit.callsign} cannot go from {unit.status} to {target} (allowed: {', '.join(allowed)})",
            status=unit.status,
            requested=target,
            allowed=list(allowed),
        )
    tasking = session.execute(
        text("SELECT id, incident_id, status FROM taskings WHERE unit_id = :u AND status IN ('assigned', 'accepted')"),
        {"u": unit.id},
    ).one_or_none()
    if target == "off_duty" and tasking is not None:
        raise IllegalTransition(
            f"unit {unit.callsign} has open tasking {tasking.id}; it cannot go off duty", tasking_id=tasking.id
        )
    audit.record(
        session=session,
        actor=principal.username,
        action="unit.status",
        entity_type="unit",
        entity_id=unit.id,
        agencies=[unit.agency_code, principal.agency_code],
        details={"from": unit.status, "to": target},
    )
    unit.status = target
    unit.status_at = datetime.now(timezone.utc)
    session.flush()
    if tasking is not None and tasking.status == "accepted" and target == "on_scene":
        incident_follows(
            session,
            tasking.incident_id,
            "on_scene",
            principal.username,
            f"unit {unit.callsign} on scene",
            {"unit_id": unit.id, "tasking_id": tasking.id},
        )
    return get_unit(session=session, principal=principal, unit_id=unit_id)
