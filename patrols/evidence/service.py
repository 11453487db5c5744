"""What evidence does: items attached to incidents, their custody events chained by SHA-256
(``chain``), hand-overs between agencies in two steps (the giver hands over, the receiving agency
accepts). The bytes of an item are ``uploads``' (on disk: ``content``), the check of every chain
``verification``'s. Callers own the transaction.

Who sees an item: the incident's agency and every agency that held the item or was asked to take
it (``evidence_items.agencies``). Sharing an incident does not share its evidence; an item is
attached only to an incident the caller can see (the incident rule in force, through
``patrols.incidents.get_incident``). Who acts on it:

- register: admins, supervisors, operators and patrol unit devices (the unit becomes the custodian);
- hand over: supervisors and admins of the custodian agency, or the device of the custodian unit;
- accept or decline a hand-over: admins, supervisors and operators of the receiving agency, or the
  device of the unit it is handed to; the giver's supervisors may withdraw it (decline);
- seal, unseal, examine: the custodian agency's admins, supervisors, operators, or the custodian unit;
- release, destroy, return: the custodian agency's supervisors and admins.

Appends to one item's chain are serialised by a lock on the item's row; every change is also in
the audit trail, with the hash of the custody event it wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from audit import service as audit
from core.errors import Conflict, InvalidInput, NotAuthorised, NotFound
from core.models import Agency
from core.paging import decode_cursor, encode_cursor
from core.permissions import DISPATCHERS, EVIDENCE_REGISTRARS, MANAGERS, RoleNotAllowed, require_role
from core.security import Principal
from patrols.evidence import schemas
from patrols.evidence.chain import FACTS, append, audited_hashes, check_chain, event_rows, fact_text
from patrols.evidence.models import FINAL_STATUSES, GENESIS, EvidenceItem
from patrols.incidents import get_incident
from patrols.models import PatrolUnit
from patrols.schemas import PointGeometry

DEFAULT_PAGE = 100
MAX_PAGE = 500
MAX_CLOCK_SKEW = timedelta(minutes=5)


# -- errors --------------------------------------------------------------------------------
class EvidenceNotFound(NotFound):
    code = "evidence_not_found"


class NotCustodian(NotAuthorised):
    code = "not_custodian"


class NotReceiver(NotAuthorised):
    code = "not_receiver"


class NotInTransit(Conflict):
    code = "not_in_transit"


class EvidenceInTransit(Conflict):
    code = "evidence_in_transit"


class EvidenceDisposed(Conflict):
    code = "evidence_disposed"


class SealConflict(Conflict):
    code = "seal_conflict"


class NoContent(Conflict):
    code = "evidence_has_no_content"


class ContentMismatch(InvalidInput):
    code = "content_hash_mismatch"


# -- reading -------------------------------------------------------------------------------
ITEM_SELECT = """
    SELECT e.id, e.incident_id, e.agency_code, e.kind, e.description, e.content_uri, e.content_sha256,
           e.content_size, e.media_type, e.content_stored_at, e.quantity, e.seal_number, e.sealed, e.collected_by,
           e.collected_at, ST_X(e.geom) AS lon, ST_Y(e.geom) AS lat, e.custodian_agency, e.custodian,
           e.custodian_unit_id, e.status, e.pending_agency, e.pending_custodian, e.pending_unit_id, e.agencies,
           e.head_seq, e.head_hash, e.created_by, e.created_at, e.updated_at, i.agency_code AS incident_agency
    FROM evidence_items e JOIN incidents i ON i.id = e.incident_id
"""
# The incident's agency and every agency that held the item or was asked to take it.
_ITEM_VISIBLE = "(e.agencies @> ARRAY[CAST(:agency AS varchar)] OR i.agency_code = :agency)"


def _location(lon: float | None, lat: float | None) -> list[float] | None:
    return None if lon is None else [round(lon, 7), round(lat, 7)]


def _facts(row) -> dict:
    """The item's facts as the collected event records them."""
    m = row._mapping
    return {**{f: fact_text(m[f]) for f in FACTS if f != "location"}, "location": _location(m["lon"], m["lat"])}


def _item_out(row) -> schemas.EvidenceOut:
    m = row._mapping
    return schemas.EvidenceOut(
        **{
            k: m[k]
            for k in (
                "id",
                "incident_id",
                "agency_code",
                "kind",
                "description",
                "content_uri",
                "content_sha256",
                "content_size",
                "media_type",
                "quantity",
                "seal_number",
                "sealed",
                "collected_by",
                "collected_at",
                "custodian_agency",
                "custodian",
                "custodian_unit_id",
                "status",
                "pending_agency",
                "pending_custodian",
                "pending_unit_id",
                "head_hash",
                "created_by",
                "created_at",
                "updated_at",
            )
        },
        content_stored=m["content_stored_at"] is not None,
        location=PointGeometry(coordinates=_location(m["lon"], m["lat"])) if m["lon"] is not None else None,
        agencies=sorted(m["agencies"]),
        events=m["head_seq"],
    )


def visible_row(session: Session, principal: Principal, item_id: int):
    row = session.execute(
        text(f"{ITEM_SELECT} WHERE e.id = :id AND {_ITEM_VISIBLE}"), {"id": item_id, "agency": principal.agency_code}
    ).one_or_none()
    if row is None:
        raise EvidenceNotFound(f"evidence {item_id} does not exist or is not visible to {principal.agency_code}")
    return row


def audit_read(session: Session, principal: Principal, row, what: str) -> None:
    """Reads by an agency other than the collecting one are reads of shared data: recorded."""
    if principal.agency_code != row.agency_code:
        audit.record(
            session=session,
            actor=principal.username,
            action=f"evidence.{what}",
            entity_type="evidence",
            entity_id=row.id,
            agencies=[principal.agency_code, row.agency_code, row.incident_agency],
            details={"head_seq": row.head_seq, "head_hash": row.head_hash},
        )


def get_item(*, session: Session, principal: Principal, item_id: int) -> schemas.EvidenceOut:
    row = visible_row(session, principal, item_id)
    audit_read(session, principal, row, "read")
    return _item_out(row)


def list_items(
    *, session: Session, principal: Principal, incident_id: int, cursor: str | None = None, limit: int = DEFAULT_PAGE
) -> schemas.EvidencePage:
    """The incident's items the caller may see, newest first; 404 if it sees neither the incident nor any item."""
    before = decode_cursor(cursor)
    rows = session.execute(
        text(
            f"""{ITEM_SELECT} WHERE e.incident_id = :incident AND {_ITEM_VISIBLE}
            AND (CAST(:before AS bigint) IS NULL OR e.id < :before) ORDER BY e.id DESC LIMIT :limit"""
        ),
        {"incident": incident_id, "agency": principal.agency_code, "before": before, "limit": limit + 1},
    ).all()
    if not rows and before is None:
        get_incident(session=session, principal=principal, incident_id=incident_id)
    rows, next_cursor = rows[:limit], (encode_cursor(rows[limit - 1].id) if len(rows) > limit else None)
    others = [r for r in rows if r.agency_code != principal.agency_code]
    if others:
        audit.record(
            session=session,
            actor=principal.username,
            action="evidence.list_read",
            entity_type="incident",
            entity_id=incident_id,
            agencies={principal.agency_code, *(r.agency_code for r in others)},
            details={"item_ids": [r.id for r in others]},
        )
    return schemas.EvidencePage(items=[_item_out(r) for r in rows], next_cursor=next_cursor)


def item_for_check(row) -> dict:
    return {**_facts(row), "head_seq": row.head_seq, "head_hash": row.head_hash}


def chain(*, session: Session, principal: Principal, item_id: int) -> schemas.ChainOut:
    """The item's custody events in order, with whether the chain holds and where it breaks."""
    row = visible_row(session, principal, item_id)
    events = event_rows(session, [item_id])[item_id]
    problems = check_chain(item_for_check(row), events, audited_hashes(session, [item_id])[item_id])
    audit_read(session, principal, row, "chain_read")
    return schemas.ChainOut(
        item_id=item_id,
        verified=not problems,
        broken_at=min((p.seq for p in problems), default=None),
        problems=[schemas.ChainProblem(kind=p.kind, seq=p.seq, message=p.message) for p in problems],
        events=[schemas.CustodyEventOut(**{k: v for k, v in e.items() if k != "item_id"}) for e in events],
    )


def incident_evidence(
    *, session: Session, principal: Principal, incident_id: int, limit: int = MAX_PAGE
) -> list[tuple[schemas.EvidenceOut, bool]]:
    """The incident's items the caller may see (at most ``limit``, newest first), each with whether its
    chain holds: for the incident map (two queries, whatever the number of items)."""
    rows = session.execute(
        text(f"{ITEM_SELECT} WHERE e.incident_id = :incident AND {_ITEM_VISIBLE} ORDER BY e.id DESC LIMIT :limit"),
        {"incident": incident_id, "agency": principal.agency_code, "limit": limit},
    ).all()
    ids = [r.id for r in rows]
    events, audited = event_rows(session, ids), audited_hashes(session, ids)
    return [(_item_out(r), not check_chain(item_for_check(r), events[r.id], audited[r.id])) for r in rows]


# -- changes -------------------------------------------------------------------------------
def _own_unit(session: Session, principal: Principal) -> PatrolUnit | None:
    if principal.role != "patrol_unit":
        return None
    return session.execute(select(PatrolUnit).where(PatrolUnit.username == principal.username)).scalar_one_or_none()


def item_for_update(session: Session, principal: Principal, item_id: int) -> tuple[EvidenceItem, object]:
    """The item, locked (its chain grows one event at a time), if the caller may see it."""
    row = visible_row(session, principal, item_id)
    item = session.get(EvidenceItem, item_id, with_for_update=True, populate_existing=True)
    return item, row


def _record(
    session: Session,
    principal: Principal,
    item: EvidenceItem,
    action: str,
    incident_agency: str,
    event: dict,
    extra: Iterable[str | None] = (),
    details: dict | None = None,
) -> None:
    audit.record(
        session=session,
        actor=principal.username,
        action=f"evidence.{action}",
        entity_type="evidence",
        entity_id=item.id,
        agencies=[item.agency_code, incident_agency, principal.agency_code, *extra],
        details={
            "incident_id": item.incident_id,
            "event_seq": event["seq"],
            "event_hash": event["hash"],
            **(details or {}),
        },
    )


def reload_item(session: Session, principal: Principal, item_id: int) -> schemas.EvidenceOut:
    return _item_out(visible_row(session, principal, item_id))


def create_item(
    *, session: Session, principal: Principal, incident_id: int, item_in: schemas.EvidenceCreate
) -> schemas.EvidenceOut:
    """Register an item on an incident the caller can see; the caller's agency is its first custodian."""
    require_role(principal, EVIDENCE_REGISTRARS, "register evidence")
    incident = get_incident(session=session, principal=principal, incident_id=incident_id)
    now = datetime.now(timezone.utc)
    collected_at = item_in.collected_at or now
    if collected_at > now + MAX_CLOCK_SKEW:
        raise InvalidInput("collected_at lies in the future", field="collected_at")
    unit = _own_unit(session, principal)
    collected_by = item_in.collected_by or (unit.callsign if unit else principal.username)
    custodian = item_in.custodian or collected_by
    item = EvidenceItem(
        incident_id=incident_id,
        agency_code=principal.agency_code,
        kind=item_in.kind,
        description=item_in.description,
        content_uri=item_in.content_uri,
        content_sha256=item_in.content_sha256,
        content_size=item_in.content_size,
        media_type=item_in.media_type,
        quantity=item_in.quantity,
        seal_number=item_in.seal_number,
        sealed=item_in.seal_number is not None,
        collected_by=collected_by,
        collected_at=collected_at,
        geom=f"SRID=4326;POINT({item_in.lon} {item_in.lat})" if item_in.lon is not None else None,
        custodian_agency=principal.agency_code,
        custodian=custodian,
        custodian_unit_id=unit.id if unit else None,
        status="in_custody",
        agencies=sorted({principal.agency_code}),
        head_seq=0,
        head_hash=GENESIS,
        created_by=principal.username,
    )
    session.add(item)
    session.flush()
    # The facts as stored (the database's rounding of time and place), so the check compares like with like.
    facts = _facts(session.execute(text(f"{ITEM_SELECT} WHERE e.id = :id"), {"id": item.id}).one())
    event = append(
        session,
        item,
        principal,
        "collected",
        to_agency=principal.agency_code,
        to_custodian=custodian,
        note=item_in.note,
        details={**facts, "seal_number": item.seal_number, "custodian_unit_id": item.custodian_unit_id},
    )
    _record(
        session,
        principal,
        item,
        "create",
        incident.agency_code,
        event,
        details={"kind": item.kind, "content_sha256": item.content_sha256},
    )
    return reload_item(session, principal, item.id)


def _ensure_open(item: EvidenceItem) -> None:
    if item.status in FINAL_STATUSES:
        raise EvidenceDisposed(f"evidence {item.id} was {item.status}: its chain of custody has ended")
    if item.status == "in_transit":
        raise EvidenceInTransit(
            f"evidence {item.id} is being handed to {item.pending_agency}: it must be accepted or declined first"
        )


def ensure_custodian(item: EvidenceItem, principal: Principal, action: str) -> None:
    if item.custodian_agency != principal.agency_code:
        raise NotCustodian(
            f"evidence {item.id} is held by {item.custodian_agency}: only the custodian agency may {action}",
            custodian_agency=item.custodian_agency,
        )


def _ensure_role_or_unit(
    session: Session, principal: Principal, roles: Sequence[str], unit_id: int | None, action: str
) -> None:
    """One of ``roles``, or the device of the unit ``unit_id``."""
    if principal.role in roles:
        return
    unit = _own_unit(session, principal)
    if unit is None or unit_id is None or unit.id != unit_id:
        who = f", or the device of unit {unit_id}" if unit_id is not None else ""
        raise RoleNotAllowed(f"role {principal.role} may not {action} (needs one of {', '.join(roles)}{who})")


def handover(
    *, session: Session, principal: Principal, item_id: int, handover_in: schemas.HandoverCreate
) -> schemas.EvidenceOut:
    """The custodian hands the item to another agency: in transit until that agency accepts."""
    item, row = item_for_update(session, principal, item_id)
    ensure_custodian(item, principal, "hand it over")
    _ensure_role_or_unit(session, principal, MANAGERS, item.custodian_unit_id, "hand evidence over")
    _ensure_open(item)
    if handover_in.to_agency == item.custodian_agency:
        raise InvalidInput("to_agency must be another agency than the custodian", field="to_agency")
    if session.get(Agency, handover_in.to_agency) is None:
        raise NotFound(f"agency {handover_in.to_agency} does not exist", field="to_agency")
    if handover_in.to_unit_id is not None:
        unit = session.get(PatrolUnit, handover_in.to_unit_id)
        if unit is None or unit.agency_code != handover_in.to_agency:
            raise NotFound(
                f"unit {handover_in.to_unit_id} is not a unit of {handover_in.to_agency}", field="to_unit_id"
            )
    event = append(
        session,
        item,
        principal,
        "handover",
        from_agency=item.custodian_agency,
        from_custodian=item.custodian,
        to_agency=handover_in.to_agency,
        to_custodian=handover_in.to_custodian,
        note=handover_in.reason,
        details={"to_unit_id": handover_in.to_unit_id},
    )
    item.status, item.pending_agency = "in_transit", handover_in.to_agency
    item.pending_custodian, item.pending_unit_id = handover_in.to_custodian, handover_in.to_unit_id
    item.agencies = sorted({*item.agencies, handover_in.to_agency})
    session.flush()
    _record(
        session,
        principal,
        item,
        "handover",
        row.incident_agency,
        event,
        [handover_in.to_agency],
        details={"to_agency": handover_in.to_agency, "reason": handover_in.reason},
    )
    return reload_item(session, principal, item.id)


def _pending(item: EvidenceItem) -> None:
    if item.status != "in_transit":
        raise NotInTransit(f"evidence {item.id} is not being handed over (it is {item.status})")


def accept(*, session: Session, principal: Principal, item_id: int, accept_in: schemas.AcceptIn) -> schemas.EvidenceOut:
    """The receiving agency takes the item: its custodian from now on, with the receiver's acknowledgement."""
    item, row = item_for_update(session, principal, item_id)
    _pending(item)
    if principal.agency_code != item.pending_agency:
        raise NotReceiver(
            f"evidence {item.id} is being handed to {item.pending_agency}: only that agency may accept it",
            pending_agency=item.pending_agency,
        )
    _ensure_role_or_unit(session, principal, DISPATCHERS, item.pending_unit_id, "accept evidence")
    if accept_in.handover_seq is not None and accept_in.handover_seq != item.head_seq:
        raise Conflict(
            f"the pending hand-over of evidence {item.id} is event {item.head_seq}, not {accept_in.handover_seq}",
            pending_seq=item.head_seq,
        )
    giver, giver_custodian = item.custodian_agency, item.custodian
    custodian = accept_in.custodian or item.pending_custodian
    event = append(
        session,
        item,
        principal,
        "received",
        from_agency=giver,
        from_custodian=giver_custodian,
        to_agency=principal.agency_code,
        to_custodian=custodian,
        note=accept_in.acknowledgement,
        details={
            "handover_seq": item.head_seq,
            "received_by": accept_in.received_by,
            "seal_intact": accept_in.seal_intact,
            "signature": accept_in.signature,
            "to_unit_id": item.pending_unit_id,
        },
    )
    item.custodian_agency, item.custodian = principal.agency_code, custodian
    item.custodian_unit_id = item.pending_unit_id
    item.status, item.pending_agency, item.pending_custodian, item.pending_unit_id = "in_custody", None, None, None
    session.flush()
    _record(
        session,
        principal,
        item,
        "accept",
        row.incident_agency,
        event,
        [giver],
        details={"from_agency": giver, "received_by": accept_in.received_by},
    )
    return reload_item(session, principal, item.id)


def decline(
    *, session: Session, principal: Principal, item_id: int, decline_in: schemas.DeclineIn
) -> schemas.EvidenceOut:
    """The receiving agency refuses the pending hand-over, or the giver withdraws it: back in the giver's custody."""
    item, row = item_for_update(session, principal, item_id)
    _pending(item)
    if principal.agency_code == item.pending_agency:
        _ensure_role_or_unit(session, principal, DISPATCHERS, item.pending_unit_id, "decline evidence")
        by = "receiver"
    elif principal.agency_code == item.custodian_agency:
        _ensure_role_or_unit(session, principal, MANAGERS, item.custodian_unit_id, "withdraw a hand-over")
        by = "giver"
    else:
        raise NotReceiver(
            f"evidence {item.id} is being handed from {item.custodian_agency} to "
            f"{item.pending_agency}: only they may call it off"
        )
    receiver = item.pending_agency
    event = append(
        session,
        item,
        principal,
        "handover_declined",
        from_agency=item.custodian_agency,
        from_custodian=item.custodian,
        to_agency=receiver,
        to_custodian=item.pending_custodian,
        note=decline_in.reason,
        details={"handover_seq": item.head_seq, "by": by},
    )
    item.status, item.pending_agency, item.pending_custodian, item.pending_unit_id = "in_custody", None, None, None
    session.flush()
    _record(
        session,
        principal,
        item,
        "decline",
        row.incident_agency,
        event,
        [receiver],
        details={"by": by, "reason": decline_in.reason},
    )
    return reload_item(session, principal, item.id)


_DISPOSALS = {"released": "released", "destroyed": "destroyed", "returned": "returned"}


def record_event(
    *, session: Session, principal: Principal, item_id: int, event_in: schemas.EventIn
) -> schemas.EvidenceOut:
    """The custodian seals, unseals, examines, releases, destroys or returns the item."""
    item, row = item_for_update(session, principal, item_id)
    ensure_custodian(item, principal, f"record {event_in.kind}")
    roles = MANAGERS if event_in.kind in _DISPOSALS else DISPATCHERS
    _ensure_role_or_unit(
        session,
        principal,
        roles,
        item.custodian_unit_id if roles is DISPATCHERS else None,
        f"record {event_in.kind} evidence",
    )
    _ensure_open(item)
    details: dict = {}
    if event_in.kind == "sealed":
        if item.sealed:
            raise SealConflict(f"evidence {item.id} is already sealed ({item.seal_number}): unseal it first")
        details["seal_number"] = event_in.seal_number
    elif event_in.kind == "unsealed":
        if not item.sealed:
            raise SealConflict(f"evidence {item.id} is not sealed")
        details["seal_number"] = item.seal_number
    event = append(
        session,
        item,
        principal,
        event_in.kind,
        from_agency=item.custodian_agency,
        from_custodian=item.custodian,
        to_custodian=event_in.recipient,
        note=event_in.note,
        details=details,
    )
    if event_in.kind == "sealed":
        item.sealed, item.seal_number = True, event_in.seal_number
    elif event_in.kind == "unsealed":
        item.sealed = False
    elif event_in.kind in _DISPOSALS:
        item.status = _DISPOSALS[event_in.kind]
    session.flush()
    _record(
        session, principal, item, event_in.kind, row.incident_agency, event, details={"note": event_in.note, **details}
    )
    return reload_item(session, principal, item.id)
