"""What the liaison hotline does: an operator pushes one alert or incident of their agency to a
named partner agency with a reason; the partner's users read exactly the pushed copies. Every
push and every read of a pushed item is in the audit trail. Callers own the transaction.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from audit import service as audit
from core.errors import InvalidInput, NotFound
from core.models import Agency
from core.paging import decode_cursor, encode_cursor
from core.permissions import DISPATCHERS, LIAISON_READERS, require_role
from core.security import Principal
from patrols.liaison import schemas
from patrols.liaison.models import PartnerPush

DEFAULT_PAGE = 100
MAX_PAGE = 500


class PushNotFound(NotFound):
    code = "push_not_found"


# What a partner receives of each kind of item: facts and place, no internal identifiers or details.
_SNAPSHOTS = {
    "alert": """SELECT jsonb_build_object(
                    'id', a.id, 'agency_code', a.agency_code, 'kind', a.kind, 'severity', a.severity,
                    'status', a.status, 'title', a.title, 'observed_at', a.observed_at, 'class', a.class,
                    'from_state', a.from_state, 'to_state', a.to_state,
                    'lon', round(ST_X(a.geom)::numeric, 7), 'lat', round(ST_Y(a.geom)::numeric, 7)) AS item
                FROM alerts a WHERE a.id = :id AND a.agency_code = :agency""",
    "incident": """SELECT jsonb_build_object(
                    'id', i.id, 'agency_code', i.agency_code, 'title', i.title, 'category', i.category,
                    'priority', i.priority, 'status', i.status, 'domain', i.domain, 'state', i.state,
                    'created_at', i.created_at,
                    'lon', round(ST_X(i.geom)::numeric, 7), 'lat', round(ST_Y(i.geom)::numeric, 7)) AS item
                FROM incidents i WHERE i.id = :id AND i.agency_code = :agency""",
}


def _out(p: PartnerPush) -> schemas.PushOut:
    return schemas.PushOut(
        id=p.id,
        from_agency=p.from_agency,
        to_agency=p.to_agency,
        item_type=p.item_type,
        item_id=p.item_id,
        reason=p.reason,
        pushed_by=p.pushed_by,
        pushed_at=p.pushed_at,
        item=p.item,
    )


def push(*, session: Session, principal: Principal, push_in: schemas.PushCreate) -> schemas.PushOut:
    """Push one of the caller's agency's alerts or incidents to a partner agency, with a reason."""
    require_role(principal, DISPATCHERS, "push alerts or incidents to partner agencies")
    if push_in.to_agency == principal.agency_code:
        raise InvalidInput("to_agency must be another agency than the caller's", field="to_agency")
    if session.get(Agency, push_in.to_agency) is None:
        raise NotFound(f"agency {push_in.to_agency} does not exist", field="to_agency")
    item = session.execute(
        text(_SNAPSHOTS[push_in.item_type]), {"id": push_in.item_id, "agency": principal.agency_code}
    ).scalar_one_or_none()
    if item is None:
        raise NotFound(
            f"{push_in.item_type} {push_in.item_id} does not exist or is not {principal.agency_code}'s", field="item_id"
        )
    row = PartnerPush(
        from_agency=principal.agency_code,
        to_agency=push_in.to_agency,
        item_type=push_in.item_type,
        item_id=push_in.item_id,
        reason=push_in.reason.strip(),
        pushed_by=principal.username,
        item=item,
    )
    session.add(row)
    session.flush()
    session.refresh(row)
    audit.record(
        session=session,
        actor=principal.username,
        action=f"{push_in.item_type}.push",
        entity_type=push_in.item_type,
        entity_id=push_in.item_id,
        agencies=[principal.agency_code, push_in.to_agency],
        details={"push_id": row.id, "to_agency": push_in.to_agency, "reason": row.reason},
    )
    return _out(row)


def _page(session: Session, column: str, principal: Principal, cursor: str | None, limit: int):
    before = decode_cursor(cursor)
    query = session.query(PartnerPush).filter(getattr(PartnerPush, column) == principal.agency_code)
    if before is not None:
        query = query.filter(PartnerPush.id < before)
    rows = query.order_by(PartnerPush.id.desc()).limit(limit + 1).all()
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


def inbox(
    *, session: Session, principal: Principal, cursor: str | None = None, limit: int = DEFAULT_PAGE
) -> schemas.PushPage:
    """What partners pushed to the caller's agency, newest first; the read is audited."""
    require_role(principal, LIAISON_READERS, "read what partners pushed")
    rows, next_cursor = _page(session, "to_agency", principal, cursor, limit)
    if rows:
        audit.record(
            session=session,
            actor=principal.username,
            action="partner_push.read",
            entity_type="partner_push",
            entity_id="inbox",
            agencies={principal.agency_code, *(r.from_agency for r in rows)},
            details={"push_ids": [r.id for r in rows]},
        )
    return schemas.PushPage(items=[_out(r) for r in rows], next_cursor=next_cursor)


def inbox_item(*, session: Session, principal: Principal, push_id: int) -> schemas.PushOut:
    """One push to the caller's agency (404 for any other); the read is audited."""
    require_role(principal, LIAISON_READERS, "read what partners pushed")
    row = session.get(PartnerPush, push_id)
    if row is None or row.to_agency != principal.agency_code:
        raise PushNotFound(f"push {push_id} does not exist or was not pushed to {principal.agency_code}")
    audit.record(
        session=session,
        actor=principal.username,
        action="partner_push.read",
        entity_type="partner_push",
        entity_id=row.id,
        agencies=[row.to_agency, row.from_agency],
        details={"push_ids": [row.id]},
    )
    return _out(row)


def outbox(
    *, session: Session, principal: Principal, cursor: str | None = None, limit: int = DEFAULT_PAGE
) -> schemas.PushPage:
    """What the caller's agency pushed to partners, newest first."""
    require_role(principal, DISPATCHERS, "list pushes to partners")
    rows, next_cursor = _page(session, "from_agency", principal, cursor, limit)
    return schemas.PushPage(items=[_out(r) for r in rows], next_cursor=next_cursor)
