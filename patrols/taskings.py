"""Taskings: a unit tasked to an incident by the incident's agency, accepted or declined by the
unit's device; a unit's taskings since its last sync. Callers own the transaction."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from audit import service as audit
from audit.service import Change
from core.errors import NotAuthorised
from core.paging import decode_cursor
from core.permissions import DISPATCHERS, require_role
from core.security import Principal
from patrols import schemas
from patrols.dispatch import DOMAIN_KINDS, INCIDENT_AUTHORITY, authority_of, eligible_units
from patrols.errors import IllegalTransition, TaskingNotFound, UnitNotEligible, UnitNotFound
from patrols.incidents import OPEN_INCIDENT, add_event, get_incident, incident_follows, own_incident_for_update
from patrols.models import Incident, PatrolUnit, Tasking
from patrols.pages import DEFAULT_PAGE, decode_sync_token, page_of, point, sync_token
from patrols.units import own_unit_for_update
from sharing import service as sharing

OPEN_TASKING = ("assigned", "accepted")

# The incident as the reader's agency (:agency) sees it: a partner unit tasked to an incident gets its
# category, priority, status and place, and its title only if an agreement grants personal data.
# The tasking's note and author belong to the two agencies party to it (the tasking one and the
# unit's); another reader of a redacted incident gets neither.
_TASKING_PARTY = "(NOT i.redacted OR :agency IN (t.agency_code, t.unit_agency_code))"
TASKING_SELECT = f"""
    SELECT t.id, t.incident_id, t.unit_id, t.agency_code, t.unit_agency_code, t.status,
           CASE WHEN {_TASKING_PARTY} THEN t.note END AS note, t.eta_s,
           CASE WHEN {_TASKING_PARTY} THEN t.created_by END AS created_by,
           t.created_at, t.updated_at, t.responded_at, t.version, t.change_xid,
           i.title, i.category, i.priority, i.status AS incident_status, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat
    FROM taskings t JOIN {sharing.INCIDENTS_SEEN} ON i.id = t.incident_id
"""


def tasking_out(row) -> schemas.TaskingOut:
    """A tasking row of :data:`TASKING_SELECT` as it goes out."""
    return schemas.TaskingOut(
        id=row.id,
        incident_id=row.incident_id,
        unit_id=row.unit_id,
        agency_code=row.agency_code,
        unit_agency_code=row.unit_agency_code,
        status=row.status,
        note=row.note,
        eta_s=row.eta_s,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        responded_at=row.responded_at,
        version=row.version,
        incident={
            "title": row.title,
            "category": row.category,
            "priority": row.priority,
            "status": row.incident_status,
            "geometry": point(row.lon, row.lat).model_dump(),
        },
    )


def get_tasking(*, session: Session, principal: Principal, tasking_id: int) -> schemas.TaskingOut:
    row = session.execute(
        text(f"{TASKING_SELECT} WHERE t.id = :id AND :agency IN (t.agency_code, t.unit_agency_code)"),
        {"id": tasking_id, "agency": principal.agency_code},
    ).one_or_none()
    if row is None:
        raise TaskingNotFound(f"tasking {tasking_id} does not exist or is not visible to {principal.agency_code}")
    return tasking_out(row)


def assign(
    *, session: Session, principal: Principal, incident_id: int, tasking_in: schemas.TaskingCreate
) -> schemas.TaskingOut:
    """Task an eligible unit (same rules as the recommendation) to an open incident of the caller's agency."""
    require_role(principal, DISPATCHERS, "task units")
    incident = own_incident_for_update(session, principal, incident_id)
    if incident.status not in OPEN_INCIDENT:
        raise IllegalTransition(f"incident {incident_id} is {incident.status}; units cannot be tasked to it")
    unit = session.get(PatrolUnit, tasking_in.unit_id, with_for_update=True)
    row = session.execute(INCIDENT_AUTHORITY, {"id": incident_id}).one()
    authority = authority_of(row)
    if unit is None or (unit.agency_code != principal.agency_code and unit.agency_code not in authority.joint):
        raise UnitNotFound(f"unit {tasking_in.unit_id} does not exist or is not visible to {principal.agency_code}")
    eligible, _ = eligible_units(session, row, limit=1, unit_id=unit.id)
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
        incident_id=incident.id,
        unit_id=unit.id,
        agency_code=incident.agency_code,
        unit_agency_code=unit.agency_code,
        status="assigned",
        note=tasking_in.note,
        eta_s=round(eligible[0].eta_s, 1),
        created_by=principal.username,
    )
    session.add(tasking)
    try:
        session.flush()
    except IntegrityError:
        raise UnitNotEligible(f"unit {unit.callsign} already has an open tasking") from None
    add_event(
        session,
        incident.id,
        principal.username,
        "tasking",
        status_to="assigned",
        details={"tasking_id": tasking.id, "unit_id": unit.id, "callsign": unit.callsign, "eta_s": tasking.eta_s},
    )
    audit.record(
        session=session,
        actor=principal.username,
        action="tasking.create",
        entity_type="tasking",
        entity_id=tasking.id,
        agencies=[tasking.agency_code, tasking.unit_agency_code],
        details={
            "incident_id": incident.id,
            "unit_id": unit.id,
            "callsign": unit.callsign,
            "eta_s": tasking.eta_s,
            "note": tasking.note,
        },
    )
    incident_follows(
        session,
        incident.id,
        "assigned",
        principal.username,
        f"unit {unit.callsign} tasked",
        {"tasking_id": tasking.id, "unit_id": unit.id},
    )
    return get_tasking(session=session, principal=principal, tasking_id=tasking.id)


def _tasking_for_unit(session: Session, principal: Principal, tasking_id: int) -> tuple[Tasking, PatrolUnit]:
    tasking = session.get(Tasking, tasking_id, with_for_update=True)
    if tasking is None or principal.agency_code not in (tasking.unit_agency_code,):
        raise TaskingNotFound(f"tasking {tasking_id} does not exist or is not visible to {principal.agency_code}")
    unit = own_unit_for_update(session, principal, tasking.unit_id, "answer taskings")
    return tasking, unit


def accept(
    *, session: Session, principal: Principal, tasking_id: int, response: schemas.TaskingResponse | None = None
) -> schemas.TaskingOut:
    """The unit takes the tasking and is en route; accepting again changes nothing."""
    tasking, unit = _tasking_for_unit(session, principal, tasking_id)
    if tasking.status == "accepted":
        return get_tasking(session=session, principal=principal, tasking_id=tasking_id)
    if tasking.status != "assigned":
        raise IllegalTransition(
            f"tasking {tasking_id} is {tasking.status}; it can no longer be accepted", status=tasking.status
        )
    if unit.status != "available":
        raise IllegalTransition(
            f"unit {unit.callsign} is {unit.status}; only an available unit can accept", unit_status=unit.status
        )
    now = datetime.now(timezone.utc)
    tasking.status, tasking.responded_at = "accepted", now
    unit.status, unit.status_at = "en_route", now
    session.flush()
    note = response.note if response else None
    add_event(
        session,
        tasking.incident_id,
        principal.username,
        "tasking",
        status_from="assigned",
        status_to="accepted",
        note=note,
        details={"tasking_id": tasking.id, "unit_id": unit.id},
    )
    audit.record_many(
        session=session,
        changes=[
            Change(
                principal.username,
                "tasking.accept",
                "tasking",
                tasking.id,
                [tasking.agency_code, tasking.unit_agency_code],
                {"incident_id": tasking.incident_id, "unit_id": unit.id, "note": note},
            ),
            Change(
                principal.username,
                "unit.status",
                "unit",
                unit.id,
                [unit.agency_code, tasking.agency_code],
                {"from": "available", "to": "en_route", "tasking_id": tasking.id},
            ),
        ],
    )
    incident_follows(
        session,
        tasking.incident_id,
        "en_route",
        principal.username,
        f"unit {unit.callsign} en route",
        {"tasking_id": tasking.id, "unit_id": unit.id},
    )
    return get_tasking(session=session, principal=principal, tasking_id=tasking_id)


def decline(
    *, session: Session, principal: Principal, tasking_id: int, response: schemas.TaskingResponse | None = None
) -> schemas.TaskingOut:
    """The unit turns the tasking down; the incident goes back to new if no other unit is tasked."""
    tasking, unit = _tasking_for_unit(session, principal, tasking_id)
    if tasking.status == "declined":
        return get_tasking(session=session, principal=principal, tasking_id=tasking_id)
    if tasking.status != "assigned":
        raise IllegalTransition(
            f"tasking {tasking_id} is {tasking.status}; it can no longer be declined", status=tasking.status
        )
    tasking.status, tasking.responded_at = "declined", datetime.now(timezone.utc)
    session.flush()
    add_event(
        session,
        tasking.incident_id,
        principal.username,
        "tasking",
        status_from="assigned",
        status_to="declined",
        note=response.note if response else None,
        details={"tasking_id": tasking.id, "unit_id": unit.id},
    )
    audit.record(
        session=session,
        actor=principal.username,
        action="tasking.decline",
        entity_type="tasking",
        entity_id=tasking.id,
        agencies=[tasking.agency_code, tasking.unit_agency_code],
        details={"incident_id": tasking.incident_id, "unit_id": unit.id, "note": response.note if response else None},
    )
    incident = session.get(Incident, tasking.incident_id, with_for_update=True)
    still_open = session.execute(
        text("SELECT count(*) FROM taskings WHERE incident_id = :i AND status IN ('assigned', 'accepted')"),
        {"i": incident.id},
    ).scalar_one()
    if incident.status == "assigned" and not still_open:
        add_event(
            session,
            incident.id,
            principal.username,
            "status",
            status_from="assigned",
            status_to="new",
            note=f"unit {unit.callsign} declined",
            details={"tasking_id": tasking.id},
        )
        audit.record(
            session=session,
            actor=principal.username,
            action="incident.status",
            entity_type="incident",
            entity_id=incident.id,
            agencies=[incident.agency_code],
            details={"from": "assigned", "to": "new", "tasking_id": tasking.id},
        )
        incident.status = "new"
        session.flush()
    return get_tasking(session=session, principal=principal, tasking_id=tasking_id)


def unit_taskings(
    *,
    session: Session,
    principal: Principal,
    unit_id: int,
    since: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE,
) -> schemas.TaskingSync:
    """A unit's taskings (oldest first); with ``since`` only those changed after that sync."""
    unit = session.get(PatrolUnit, unit_id)
    if unit is None or unit.agency_code != principal.agency_code:
        raise UnitNotFound(f"unit {unit_id} does not exist or is not visible to {principal.agency_code}")
    if principal.role == "patrol_unit" and unit.username != principal.username:
        raise NotAuthorised(f"user {principal.username} does not report for unit {unit_id}")
    token = sync_token(session=session)
    since_xid = decode_sync_token(since)
    after = decode_cursor(cursor) or 0
    rows = session.execute(
        text(
            f"""{TASKING_SELECT}
            WHERE t.unit_id = :unit AND t.id > :after
              AND (CAST(:since AS bigint) IS NULL OR t.change_xid >= :since)
            ORDER BY t.id LIMIT :limit"""
        ),
        {"unit": unit_id, "after": after, "since": since_xid, "limit": limit + 1, "agency": principal.agency_code},
    ).all()
    rows, next_cursor = page_of(rows, limit)
    return schemas.TaskingSync(items=[tasking_out(r) for r in rows], next_cursor=next_cursor, sync_token=token)


def incident_taskings(*, session: Session, principal: Principal, incident_id: int) -> list[schemas.TaskingOut]:
    get_incident(session=session, principal=principal, incident_id=incident_id)
    rows = session.execute(
        text(f"{TASKING_SELECT} WHERE t.incident_id = :id ORDER BY t.id"),
        {"id": incident_id, "agency": principal.agency_code},
    ).all()
    return [tasking_out(r) for r in rows]


def tasking_for_unit(*, session: Session, tasking: schemas.TaskingOut) -> schemas.TaskingOut:
    """The tasking as the tasked unit's agency sees it (what is pushed to the unit)."""
    row = session.execute(
        text(f"{TASKING_SELECT} WHERE t.id = :id"), {"id": tasking.id, "agency": tasking.unit_agency_code}
    ).one()
    return tasking_out(row)
