"""Incidents and their timeline: opened from alerts or by hand, noted, moved along their status
as their units move, resolved or closed. Callers own the transaction.

Scope: an agency sees its own incidents and those a partner releases to it by a sharing agreement
(``sharing.service``, redacted there too). Changes are made by the owning agency only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from audit import service as audit
from audit.service import Change
from core.errors import Conflict, NotFound
from core.paging import decode_cursor
from core.permissions import DISPATCHERS, require_role
from core.security import Principal
from patrols import schemas
from patrols.errors import IllegalTransition, IncidentNotFound
from patrols.models import Incident, IncidentAlert, IncidentEvent
from patrols.pages import DEFAULT_PAGE, page_of, point
from sharing import service as sharing

OPEN_INCIDENT = ("new", "assigned", "en_route", "on_scene")
CLOSED_INCIDENT = ("resolved", "false_alarm", "closed")
# Closing an incident ends its open taskings: accepted ones completed, the others cancelled.
ENDED_TASKING_ACTIONS = {"completed": "tasking.complete", "cancelled": "tasking.cancel"}

# Personal fields come out of the SQL already redacted where no agreement grants them (sharing.service).
INCIDENT_SELECT = f"""
    SELECT i.id, i.agency_code, i.title, i.category, i.priority, i.status, i.domain, i.state,
           ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, i.created_by, i.created_at, i.updated_at, i.closed_at,
           i.version, i.redacted, i.shared_by,
           ARRAY(SELECT ia.alert_id FROM incident_alerts ia WHERE ia.incident_id = i.id ORDER BY ia.alert_id)
             AS alert_ids
    FROM {sharing.INCIDENTS_SEEN}
"""
# Own incidents, and partners' that a sharing agreement releases to the caller's agency.
INCIDENT_VISIBLE_SQL = sharing.INCIDENT_VISIBLE_SQL


def incident_out(row) -> schemas.IncidentOut:
    """An incident row of :data:`INCIDENT_SELECT` as it goes out."""
    return schemas.IncidentOut(
        id=row.id,
        agency_code=row.agency_code,
        title=row.title,
        category=row.category,
        priority=row.priority,
        status=row.status,
        domain=row.domain,
        state=row.state,
        geometry=point(row.lon, row.lat),
        alert_ids=list(row.alert_ids),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        closed_at=row.closed_at,
        version=row.version,
        redacted=row.redacted,
        shared_by=row.shared_by,
    )


def add_event(
    session: Session,
    incident_id: int,
    actor: str,
    kind: str,
    *,
    status_from: str | None = None,
    status_to: str | None = None,
    note: str | None = None,
    details: dict | None = None,
) -> None:
    """Add an entry to the incident's timeline."""
    session.add(
        IncidentEvent(
            incident_id=incident_id,
            actor=actor,
            kind=kind,
            status_from=status_from,
            status_to=status_to,
            note=note,
            details=details or {},
        )
    )


def _place_of(session: Session, lon: float, lat: float) -> tuple[str, str | None]:
    """(domain, state) of a point: land inside a state's land area, else maritime; the state of the land or sea."""
    row = session.execute(
        text(
            """WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g)
           SELECT (SELECT s.code FROM states s, p WHERE ST_Intersects(s.geom, p.g) LIMIT 1) AS land,
                  (SELECT z.state FROM zones z, p WHERE z.kind = 'territorial_sea' AND z.state IS NOT NULL
                     AND ST_Intersects(z.geom, p.g) LIMIT 1) AS sea"""
        ),
        {"lon": lon, "lat": lat},
    ).one()
    return ("land" if row.land else "maritime"), (row.land or row.sea)


def create_incident(
    *, session: Session, principal: Principal, incident_in: schemas.IncidentCreate
) -> schemas.IncidentOut:
    """An incident of the caller's agency, from its own alerts (each in one incident at most) or by hand."""
    require_role(principal, DISPATCHERS, "create incidents")
    alerts = []
    if incident_in.alert_ids:
        alerts = session.execute(
            text(
                """SELECT a.id, a.title, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat, ia.incident_id
               FROM alerts a LEFT JOIN incident_alerts ia ON ia.alert_id = a.id
               WHERE a.id = ANY(CAST(:ids AS bigint[])) AND a.agency_code = :agency
               ORDER BY array_position(CAST(:ids AS bigint[]), a.id)
               FOR UPDATE OF a"""
            ),
            {"ids": incident_in.alert_ids, "agency": principal.agency_code},
        ).all()
        missing = sorted(set(incident_in.alert_ids) - {a.id for a in alerts})
        if missing:
            raise NotFound(f"alerts {missing} do not exist or are not {principal.agency_code}'s", alert_ids=missing)
        taken = {a.id: a.incident_id for a in alerts if a.incident_id is not None}
        if taken:
            raise Conflict(f"alerts already belong to incidents: {taken}", alerts={str(k): v for k, v in taken.items()})
    lon, lat = (incident_in.lon, incident_in.lat) if incident_in.lon is not None else (alerts[0].lon, alerts[0].lat)
    domain, state = _place_of(session, lon, lat)
    incident = Incident(
        agency_code=principal.agency_code,
        title=incident_in.title or alerts[0].title,
        category=incident_in.category,
        priority=incident_in.priority,
        status="new",
        domain=domain,
        state=state,
        geom=f"SRID=4326;POINT({lon} {lat})",
        created_by=principal.username,
    )
    session.add(incident)
    session.flush()
    add_event(
        session,
        incident.id,
        principal.username,
        "created",
        status_to="new",
        note=incident_in.note,
        details={"domain": domain, "state": state},
    )
    for alert in alerts:
        session.add(IncidentAlert(alert_id=alert.id, incident_id=incident.id))
        add_event(session, incident.id, principal.username, "alert_linked", details={"alert_id": alert.id})
    if alerts:
        session.execute(
            text("UPDATE alerts SET status = 'incident' WHERE id = ANY(CAST(:ids AS bigint[]))"),
            {"ids": [a.id for a in alerts]},
        )
    session.flush()
    audit.record(
        session=session,
        actor=principal.username,
        action="incident.create",
        entity_type="incident",
        entity_id=incident.id,
        agencies=[incident.agency_code],
        details={
            "title": incident.title,
            "category": incident.category,
            "priority": incident.priority,
            "domain": domain,
            "state": state,
            "lon": lon,
            "lat": lat,
            "alert_ids": [a.id for a in alerts],
        },
    )
    return get_incident(session=session, principal=principal, incident_id=incident.id)


def get_incident(*, session: Session, principal: Principal, incident_id: int) -> schemas.IncidentOut:
    row = session.execute(
        text(f"{INCIDENT_SELECT} WHERE i.id = :id AND {INCIDENT_VISIBLE_SQL}"),
        {"id": incident_id, "agency": principal.agency_code},
    ).one_or_none()
    if row is None:
        raise IncidentNotFound(f"incident {incident_id} does not exist or is not visible to {principal.agency_code}")
    sharing.record_shared_read(
        session=session, principal=principal, entity_type="incident", rows=[(row.id, row.shared_by)], via="incident"
    )
    return incident_out(row)


def list_incidents(
    *,
    session: Session,
    principal: Principal,
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE,
    status: Sequence[str] | None = None,
) -> schemas.IncidentPage:
    """Visible incidents, newest first."""
    before = decode_cursor(cursor)
    where = [INCIDENT_VISIBLE_SQL]
    params: dict = {"agency": principal.agency_code, "limit": limit + 1}
    if before is not None:
        where.append("i.id < :before")
        params["before"] = before
    if status:
        where.append("i.status = ANY(CAST(:status AS text[]))")
        params["status"] = list(status)
    rows = session.execute(
        text(f"{INCIDENT_SELECT} WHERE {' AND '.join(where)} ORDER BY i.id DESC LIMIT :limit"), params
    ).all()
    rows, next_cursor = page_of(rows, limit)
    sharing.record_shared_read(
        session=session,
        principal=principal,
        entity_type="incident",
        rows=[(r.id, r.shared_by) for r in rows],
        via="incidents",
    )
    return schemas.IncidentPage(items=[incident_out(r) for r in rows], next_cursor=next_cursor)


def own_incident_for_update(session: Session, principal: Principal, incident_id: int) -> Incident:
    """The incident, locked, if it is the caller's agency's."""
    incident = session.get(Incident, incident_id, with_for_update=True)
    if incident is None or incident.agency_code != principal.agency_code:
        raise IncidentNotFound(f"incident {incident_id} does not exist or is not visible to {principal.agency_code}")
    return incident


def add_note(*, session: Session, principal: Principal, incident_id: int, note: str) -> schemas.Timeline:
    require_role(principal, DISPATCHERS, "add notes to incidents")
    incident = own_incident_for_update(session, principal, incident_id)
    add_event(session, incident.id, principal.username, "note", note=note)
    incident.updated_at = datetime.now(timezone.utc)
    session.flush()
    audit.record(
        session=session,
        actor=principal.username,
        action="incident.note",
        entity_type="incident",
        entity_id=incident.id,
        agencies=[incident.agency_code],
        details={"note": note},
    )
    return timeline(session=session, principal=principal, incident_id=incident_id)


def timeline(*, session: Session, principal: Principal, incident_id: int) -> schemas.Timeline:
    """The incident's events; of a redacted (shared without personal data) incident, without notes and
    with the owning agency in place of each actor."""
    incident = get_incident(session=session, principal=principal, incident_id=incident_id)
    rows = session.execute(
        text(
            "SELECT e.id, e.at, CASE WHEN :redacted THEN :owner ELSE e.actor END AS actor, e.kind, e.status_from, "
            "e.status_to, CASE WHEN :redacted THEN NULL ELSE e.note END AS note, e.details FROM incident_events e "
            "WHERE e.incident_id = :id ORDER BY e.id"
        ),
        {"id": incident_id, "redacted": incident.redacted, "owner": incident.agency_code},
    ).all()
    return schemas.Timeline(incident_id=incident_id, entries=[schemas.TimelineEntry(**r._mapping) for r in rows])


def incident_follows(session: Session, incident_id: int, target: str, actor: str, note: str, details: dict) -> None:
    """Move an open incident forward as its units move (never backwards, never out of a closed state)."""
    order = {"new": 0, "assigned": 1, "en_route": 2, "on_scene": 3}
    incident = session.get(Incident, incident_id, with_for_update=True)
    if incident.status in order and order[target] > order[incident.status]:
        add_event(
            session,
            incident.id,
            actor,
            "status",
            status_from=incident.status,
            status_to=target,
            note=note,
            details=details,
        )
        audit.record(
            session=session,
            actor=actor,
            action="incident.status",
            entity_type="incident",
            entity_id=incident.id,
            agencies=[incident.agency_code],
            details={"from": incident.status, "to": target, "reason": note, **details},
        )
        incident.status = target
        session.flush()


def change_incident_status(
    *, session: Session, principal: Principal, incident_id: int, change: schemas.IncidentStatusChange
) -> schemas.IncidentOut:
    """Resolve, call a false alarm, or close; open taskings end and their units become available."""
    require_role(principal, DISPATCHERS, "change an incident's status")
    incident = own_incident_for_update(session, principal, incident_id)
    target = change.status
    if target == incident.status:
        return get_incident(session=session, principal=principal, incident_id=incident_id)
    if incident.status == "closed" or (incident.status in CLOSED_INCIDENT and target != "closed"):
        raise IllegalTransition(
            f"incident {incident_id} is {incident.status}; it can only be closed",
            status=incident.status,
            requested=target,
        )
    status_from = incident.status
    add_event(
        session,
        incident.id,
        principal.username,
        "status",
        status_from=incident.status,
        status_to=target,
        note=change.note,
    )
    incident.status = target
    incident.closed_at = incident.closed_at or datetime.now(timezone.utc)
    session.flush()
    freed = session.execute(
        text(
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
        ),
        {"id": incident.id},
    ).one()
    changes = [
        Change(
            principal.username,
            "incident.status",
            "incident",
            incident.id,
            [incident.agency_code],
            {"from": status_from, "to": target, "note": change.note},
        )
    ]
    for ended in orjson.loads(freed.ended):
        add_event(
            session,
            incident.id,
            principal.username,
            "tasking",
            status_to=ended["status"],
            details={"tasking_id": ended["id"], "unit_id": ended["unit_id"]},
        )
        changes.append(
            Change(
                principal.username,
                ENDED_TASKING_ACTIONS[ended["status"]],
                "tasking",
                ended["id"],
                [incident.agency_code, ended["unit_agency_code"]],
                {"incident_id": incident.id, "unit_id": ended["unit_id"], "to": ended["status"]},
            )
        )
    for unit in orjson.loads(freed.freed):
        changes.append(
            Change(
                principal.username,
                "unit.status",
                "unit",
                unit["id"],
                [unit["agency_code"], incident.agency_code],
                {"from": unit["was"], "to": "available", "incident_id": incident.id},
            )
        )
    session.flush()
    audit.record_many(session=session, changes=changes)
    return get_incident(session=session, principal=principal, incident_id=incident_id)
