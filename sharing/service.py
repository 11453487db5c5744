"""What sharing agreements do: an agency releases some of its alerts and incidents to a partner
agency (or to every member of a joint patrol sector), by kind or category, by place, within a
validity window, with or without personal data. Callers own the transaction.

This module is the one place that says who may read which alert and incident, and which of
their fields. Every read path (feature endpoints, OGC API - Features, the incident API, the
live feed and Cursor-on-Target, maps, reports) builds its SQL from the fragments below, which
bind the reader's agency as ``:agency``. They are evaluated in the database at read time, with
nothing cached: an agreement withdrawn or past its ``valid_until`` releases nothing from the
next statement on.

A row is *visible* to the reader when it is the reader's agency's own, or when an agreement in
force releases it to the reader: the agreement comes from the row's agency, names the reader
(directly, or as a member of its joint sector as the sector's member list stands now), lists the
row's alert kind or incident category, the row lies inside one of its zones or within
``SEGMENT_NEAR_DEG`` of one of its segments (or the agreement names no place), and the row's
time (an alert's ``observed_at``, an incident's ``created_at``) is inside its window.

A visible row is *redacted* when it is not the reader's own and no agreement that releases it
grants personal data: personal fields are then replaced in SQL, in the derived tables
``ALERTS_SEEN`` and ``INCIDENTS_SEEN`` that every read path selects from instead of the tables
themselves, so no endpoint can forget them. Personal fields: an alert's
title (a watch-list hit names the plate or vessel), its track key (``mmsi:...``, a camera's
track id) and details (watch-list entries, the rendezvous partner's track); an incident's title
(free text), who created it, the notes of its timeline and the persons involved in it.
Detections and sensors are never shared: they are raw sensor data; a shared alert carries its
place, time, kind and object class.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from audit import service as audit
from core.errors import Conflict, InvalidInput, NotAuthorised, NotFound
from core.models import Agency
from core.paging import encode_cursor
from core.permissions import MANAGERS
from core.security import Principal
from sharing import schemas
from sharing.models import SharingAgreement

DEFAULT_PAGE = 100
MAX_PAGE = 500
# An item is "at" a segment when within this many degrees of its line (about 5.5 km).
SEGMENT_NEAR_DEG = 0.05
SHARED_READ = "shared.read"


class AgreementNotFound(NotFound):
    code = "agreement_not_found"


class AgreementNotAllowed(NotAuthorised):
    code = "agreement_not_allowed"


class AgreementWithdrawn(Conflict):
    code = "agreement_withdrawn"


# -- the visibility SQL (binds :agency, the reader's agency) ---------------------------------
# Agreements in force now whose recipients include the reader.
_NOT_ENDED = "(g.withdrawn_at IS NULL AND (g.valid_until IS NULL OR g.valid_until > now()))"
_TO_READER = """(g.to_agency = :agency OR EXISTS (
          SELECT 1 FROM zones sz WHERE sz.id = g.to_sector_zone_id
            AND sz.member_agencies @> ARRAY[CAST(:agency AS varchar)]))"""
_IN_FORCE = f"{_NOT_ENDED} AND {_TO_READER}"


def _place(geom: str) -> str:
    return f"""((cardinality(g.zone_ids) = 0 AND cardinality(g.segment_ids) = 0)
          OR EXISTS (SELECT 1 FROM zones gz WHERE gz.id = ANY(g.zone_ids) AND ST_Intersects(gz.geom, {geom}))
          OR EXISTS (SELECT 1 FROM border_segments gs WHERE gs.id = ANY(g.segment_ids)
                       AND ST_DWithin(gs.geom, {geom}, {SEGMENT_NEAR_DEG})))"""


def _released(alias: str, *, what: str, of: str, at: str, personal: bool) -> str:
    """An agreement in force releases row ``alias`` to the reader (granting personal data if ``personal``)."""
    return f"""({alias}.agency_code = ANY(ARRAY(SELECT g.from_agency FROM sharing_agreements g WHERE {_IN_FORCE}))
      AND EXISTS (SELECT 1 FROM sharing_agreements g
        WHERE g.from_agency = {alias}.agency_code AND {_IN_FORCE}
          AND {of} = ANY(g.{what})
          AND {at} >= g.valid_from AND (g.valid_until IS NULL OR {at} < g.valid_until)
          {"AND g.personal_data" if personal else ""}
          AND {_place(f"{alias}.geom")}))"""


def alert_visible(alias: str = "a") -> str:
    """WHERE condition: the alert ``alias`` is the reader's own or released to the reader."""
    released = _released(alias, what="alert_kinds", of=f"{alias}.kind", at=f"{alias}.observed_at", personal=False)
    return f"({alias}.agency_code = :agency OR {released})"


def alert_personal(alias: str = "a") -> str:
    """Condition: the reader may see the alert's personal fields (own, or released with personal data)."""
    released = _released(alias, what="alert_kinds", of=f"{alias}.kind", at=f"{alias}.observed_at", personal=True)
    return f"({alias}.agency_code = :agency OR {released})"


def incident_visible(alias: str = "i") -> str:
    """WHERE condition: the incident ``alias`` is the reader's own or released to the reader."""
    released = _released(
        alias, what="incident_categories", of=f"{alias}.category", at=f"{alias}.created_at", personal=False
    )
    return f"({alias}.agency_code = :agency OR {released})"


def incident_personal(alias: str = "i") -> str:
    """Condition: the reader may see the incident's personal fields (own, or released with personal data)."""
    released = _released(
        alias, what="incident_categories", of=f"{alias}.category", at=f"{alias}.created_at", personal=True
    )
    return f"({alias}.agency_code = :agency OR {released})"


def agreement_covers(owner: str, at: str, sector: str) -> str:
    """Condition: an agreement in force from agency ``owner`` to the reader, directly or to the joint
    sector ``sector`` (a zone id expression), has time ``at`` inside its window: the window in which
    a partner sees where the owner's units were in that sector (``patrols.positions``)."""
    return f"""EXISTS (SELECT 1 FROM sharing_agreements g
        WHERE g.from_agency = {owner} AND {_NOT_ENDED}
          AND (g.to_agency = :agency OR g.to_sector_zone_id = {sector})
          AND {at} >= g.valid_from AND (g.valid_until IS NULL OR {at} < g.valid_until))"""


ALERT_VISIBLE_SQL = alert_visible("a")
INCIDENT_VISIBLE_SQL = incident_visible("i")


def alerts_seen(alias: str = "a") -> str:
    """A FROM-clause item: the alerts table as the reader sees it, under ``alias``. Personal fields
    (title, track_key, details) are replaced where the reader is not granted them; ``redacted``
    says so, and ``shared_by`` names the partner (null for the reader's own). Read paths select
    from this, never from ``alerts`` itself, so none can forget the redaction; they still add
    :func:`alert_visible` to their WHERE clause."""
    return f"""(SELECT x.id, x.agency_code, x.kind, x.severity, x.status, x.observed_at, x.created_at, x.sensor_id,
               x.class, x.from_state, x.to_state, x.segment_id, x.zone_id, x.detection_id, x.detection_ids, x.geom,
               CASE WHEN p.personal THEN x.title ELSE replace(x.kind, '_', ' ') END AS title,
               CASE WHEN p.personal THEN x.track_key END AS track_key,
               CASE WHEN p.personal THEN x.details ELSE '{{}}'::jsonb END AS details,
               NOT p.personal AS redacted,
               CASE WHEN x.agency_code <> :agency THEN x.agency_code END AS shared_by
        FROM alerts x CROSS JOIN LATERAL (SELECT {alert_personal("x")} AS personal) p) {alias}"""


def incidents_seen(alias: str = "i") -> str:
    """A FROM-clause item: the incidents table as the reader sees it, under ``alias`` (personal
    fields: title, created_by), with ``redacted`` and ``shared_by``; see :func:`alerts_seen`."""
    return f"""(SELECT x.id, x.agency_code, x.category, x.priority, x.status, x.domain, x.state, x.geom,
               x.created_at, x.updated_at, x.closed_at, x.version, x.change_xid,
               CASE WHEN p.personal THEN x.title ELSE replace(x.category, '_', ' ') END AS title,
               CASE WHEN p.personal THEN x.created_by END AS created_by,
               NOT p.personal AS redacted,
               CASE WHEN x.agency_code <> :agency THEN x.agency_code END AS shared_by
        FROM incidents x CROSS JOIN LATERAL (SELECT {incident_personal("x")} AS personal) p) {alias}"""


ALERTS_SEEN = alerts_seen("a")
INCIDENTS_SEEN = incidents_seen("i")


# -- the audit of shared reads -----------------------------------------------------------------
def record_shared_read(
    *, session: Session, principal: Principal, entity_type: str, rows: Iterable[tuple[int, str | None]], via: str
) -> None:
    """One audit entry for a read that returned partners' rows: ``rows`` are (id, shared_by) pairs
    (shared_by None for the reader's own, which are not recorded). Nothing when none were shared."""
    shared = sorted({(int(i), by) for i, by in rows if by is not None})
    if not shared:
        return
    ids = [i for i, _ in shared]
    owners = sorted({by for _, by in shared})
    audit.record(
        session=session,
        actor=principal.username,
        action=SHARED_READ,
        entity_type=entity_type,
        entity_id=ids[0] if len(ids) == 1 else "batch",
        agencies={principal.agency_code, *owners},
        details={"ids": ids, "count": len(ids), "shared_by": owners, "via": via},
    )


# -- agreements ----------------------------------------------------------------------------------
def _require_manager(principal: Principal, action: str) -> None:
    if principal.role not in MANAGERS:
        raise AgreementNotAllowed(f"role {principal.role} may not {action} (needs one of {', '.join(MANAGERS)})")


def _active(row: SharingAgreement, now: datetime) -> bool:
    return row.withdrawn_at is None and (row.valid_until is None or row.valid_until > now)


def _out(row: SharingAgreement, principal: Principal, now: datetime) -> schemas.AgreementOut:
    return schemas.AgreementOut(
        id=row.id,
        from_agency=row.from_agency,
        to_agency=row.to_agency,
        to_sector_zone_id=row.to_sector_zone_id,
        alert_kinds=list(row.alert_kinds),
        incident_categories=list(row.incident_categories),
        zone_ids=list(row.zone_ids),
        segment_ids=list(row.segment_ids),
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        personal_data=row.personal_data,
        purpose=row.purpose,
        created_by=row.created_by,
        created_at=row.created_at,
        withdrawn_at=row.withdrawn_at,
        withdrawn_by=row.withdrawn_by,
        direction="outgoing" if row.from_agency == principal.agency_code else "incoming",
        active=_active(row, now),
    )


def _now(session: Session) -> datetime:
    # The database's clock, the one the visibility SQL compares valid_until with.
    return session.execute(text("SELECT now()")).scalar_one()


def create_agreement(
    *, session: Session, principal: Principal, agreement_in: schemas.AgreementCreate
) -> schemas.AgreementOut:
    """A new agreement releasing the caller's agency's items (supervisors and admins; audited)."""
    _require_manager(principal, "create sharing agreements")
    a = agreement_in
    if (a.to_agency is None) == (a.to_sector_zone_id is None):
        raise InvalidInput("give exactly one of to_agency and to_sector_zone_id", field="to_agency")
    if a.to_agency is not None:
        if a.to_agency == principal.agency_code:
            raise InvalidInput("to_agency must be another agency than the caller's", field="to_agency")
        if session.get(Agency, a.to_agency) is None:
            raise InvalidInput(f"agency {a.to_agency} does not exist", field="to_agency")
    else:
        sector = session.execute(
            text("SELECT kind, member_agencies FROM zones WHERE id = :id"), {"id": a.to_sector_zone_id}
        ).one_or_none()
        if sector is None or sector.kind != "joint_patrol_sector":
            raise InvalidInput(f"zone {a.to_sector_zone_id} is not a joint patrol sector", field="to_sector_zone_id")
        if principal.agency_code not in sector.member_agencies:
            raise InvalidInput(
                f"{principal.agency_code} is not a member of joint sector {a.to_sector_zone_id}",
                field="to_sector_zone_id",
            )
    if not a.alert_kinds and not a.incident_categories:
        raise InvalidInput("an agreement releases at least one alert kind or incident category", field="alert_kinds")
    # Zones the releasing agency owns or is a member of (the zones it sees); segments are shared geography.
    for column, sql, ids in (
        (
            "zone_ids",
            "SELECT id FROM zones WHERE id = ANY(CAST(:ids AS int[])) AND (owner_agency = :agency "
            "OR member_agencies @> ARRAY[CAST(:agency AS varchar)])",
            a.zone_ids,
        ),
        ("segment_ids", "SELECT id FROM border_segments WHERE id = ANY(CAST(:ids AS int[]))", a.segment_ids),
    ):
        found = (
            set(session.execute(text(sql), {"ids": list(ids), "agency": principal.agency_code}).scalars())
            if ids
            else set()
        )
        missing = sorted(set(ids) - found)
        if missing:
            raise InvalidInput(
                f"{column} {missing} do not exist or are not {principal.agency_code}'s to name", field=column
            )
    now = _now(session)
    valid_from = a.valid_from or now
    if a.valid_until is not None and a.valid_until <= valid_from:
        raise InvalidInput("valid_until must be after valid_from", field="valid_until")
    row = SharingAgreement(
        from_agency=principal.agency_code,
        to_agency=a.to_agency,
        to_sector_zone_id=a.to_sector_zone_id,
        alert_kinds=sorted(set(a.alert_kinds)),
        incident_categories=sorted(set(a.incident_categories)),
        zone_ids=sorted(set(a.zone_ids)),
        segment_ids=sorted(set(a.segment_ids)),
        valid_from=valid_from,
        valid_until=a.valid_until,
        personal_data=a.personal_data,
        purpose=a.purpose.strip(),
        created_by=principal.username,
    )
    session.add(row)
    session.flush()
    session.refresh(row)
    recipients = [a.to_agency] if a.to_agency else _sector_members(session, a.to_sector_zone_id)
    audit.record(
        session=session,
        actor=principal.username,
        action="sharing.create",
        entity_type="agreement",
        entity_id=row.id,
        agencies=[row.from_agency, *recipients],
        details={
            "to_agency": row.to_agency,
            "to_sector_zone_id": row.to_sector_zone_id,
            "alert_kinds": row.alert_kinds,
            "incident_categories": row.incident_categories,
            "zone_ids": row.zone_ids,
            "segment_ids": row.segment_ids,
            "valid_from": row.valid_from.isoformat(),
            "valid_until": row.valid_until.isoformat() if row.valid_until else None,
            "personal_data": row.personal_data,
            "purpose": row.purpose,
        },
    )
    return _out(row, principal, now)


def _sector_members(session: Session, zone_id: int | None) -> list[str]:
    if zone_id is None:
        return []
    members = session.execute(text("SELECT member_agencies FROM zones WHERE id = :id"), {"id": zone_id}).scalar()
    return list(members or [])


def _concerns(session: Session, row: SharingAgreement, principal: Principal) -> bool:
    if principal.agency_code in (row.from_agency, row.to_agency):
        return True
    return principal.agency_code in _sector_members(session, row.to_sector_zone_id)


def get_agreement(*, session: Session, principal: Principal, agreement_id: int) -> schemas.AgreementOut:
    """One agreement the caller's agency gives or receives (404 for any other)."""
    row = session.get(SharingAgreement, agreement_id)
    if row is None or not _concerns(session, row, principal):
        raise AgreementNotFound(f"agreement {agreement_id} does not exist or does not concern {principal.agency_code}")
    return _out(row, principal, _now(session))


def list_agreements(
    *,
    session: Session,
    principal: Principal,
    direction: str | None = None,
    active: bool | None = None,
    cursor: int | None = None,
    limit: int = DEFAULT_PAGE,
) -> schemas.AgreementPage:
    """Agreements the caller's agency gives (outgoing) and receives (incoming), newest first."""
    where = ["g.id < :before" if cursor is not None else "true"]
    outgoing = "g.from_agency = :agency"
    incoming = f"(g.from_agency <> :agency AND {_TO_READER})"
    where.append({"outgoing": outgoing, "incoming": incoming}.get(direction or "", f"({outgoing} OR {incoming})"))
    if active is not None:
        where.append(_NOT_ENDED if active else f"NOT {_NOT_ENDED}")
    ids = (
        session.execute(
            text(f"SELECT g.id FROM sharing_agreements g WHERE {' AND '.join(where)} ORDER BY g.id DESC LIMIT :limit"),
            {"agency": principal.agency_code, "before": cursor, "limit": limit + 1},
        )
        .scalars()
        .all()
    )
    more = len(ids) > limit
    ids = ids[:limit]
    rows = {r.id: r for r in session.query(SharingAgreement).filter(SharingAgreement.id.in_(ids))} if ids else {}
    now = _now(session)
    return schemas.AgreementPage(
        items=[_out(rows[i], principal, now) for i in ids], next_cursor=encode_cursor(ids[-1]) if more else None
    )


def withdraw_agreement(
    *, session: Session, principal: Principal, agreement_id: int, reason: str | None = None
) -> schemas.AgreementOut:
    """End an agreement now (its releasing agency's supervisors and admins; audited). Items it
    released are no longer visible to its recipients from the next statement on."""
    _require_manager(principal, "withdraw sharing agreements")
    row = session.get(SharingAgreement, agreement_id, with_for_update=True)
    if row is None or not _concerns(session, row, principal):
        raise AgreementNotFound(f"agreement {agreement_id} does not exist or does not concern {principal.agency_code}")
    if row.from_agency != principal.agency_code:
        raise AgreementNotAllowed(
            f"only {row.from_agency}, which releases under agreement {agreement_id}, may withdraw it"
        )
    if row.withdrawn_at is not None:
        raise AgreementWithdrawn(f"agreement {agreement_id} was withdrawn at {row.withdrawn_at.isoformat()}")
    now = _now(session)
    row.withdrawn_at, row.withdrawn_by = now, principal.username
    session.flush()
    recipients = [row.to_agency] if row.to_agency else _sector_members(session, row.to_sector_zone_id)
    audit.record(
        session=session,
        actor=principal.username,
        action="sharing.withdraw",
        entity_type="agreement",
        entity_id=row.id,
        agencies=[row.from_agency, *recipients],
        details={"withdrawn_at": now.isoformat(), "reason": reason},
    )
    return _out(row, principal, now)
