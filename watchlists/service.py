"""What the watch-list domain does: entries of one agency, created, listed, changed, removed.

Every function takes the caller's agency and never touches another agency's entries; an
entry of another agency is reported as not found. Values are stored in their normal form
(``bw_watchlist_value``), the one the ingest rule matches detections against.

Creations, changes and deletions are appended to the audit trail in the change's transaction
(``watchlist.create``, ``watchlist.update`` with each changed field's old and new value,
``watchlist.delete`` with the whole entry as it was), so an entry's history outlives it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit import service as audit
from core.errors import Conflict, InvalidInput, NotFound
from watchlists.models import WatchlistEntry
from watchlists.schemas import WatchlistEntryIn, WatchlistEntryUpdate


def normal_form(*, session: Session, kind: str, value: str) -> str:
    return session.execute(select(func.bw_watchlist_value(kind, value))).scalar_one()


def create_entry(*, session: Session, agency_code: str, username: str, entry_in: WatchlistEntryIn) -> WatchlistEntry:
    value = normal_form(session=session, kind=entry_in.kind, value=entry_in.value)
    if not value:
        raise InvalidInput(f"{entry_in.kind} {entry_in.value!r} has nothing to match on")
    if entry_in.kind == "mmsi" and len(value) != 9:
        raise InvalidInput(f"an MMSI has 9 digits, got {entry_in.value!r}")
    if entry_in.kind == "imo" and len(value) != 7:
        raise InvalidInput(f"an IMO number has 7 digits, got {entry_in.value!r}")
    existing = session.scalar(
        select(WatchlistEntry.id).where(
            WatchlistEntry.agency_code == agency_code,
            WatchlistEntry.kind == entry_in.kind,
            WatchlistEntry.value == value,
        )
    )
    if existing is not None:
        raise Conflict(f"{entry_in.kind} {value} is already on the watch-list (entry {existing})", entry_id=existing)
    entry = WatchlistEntry(
        agency_code=agency_code,
        kind=entry_in.kind,
        value=value,
        display_value=entry_in.value,
        reason=entry_in.reason,
        severity=entry_in.severity,
        expires_at=entry_in.expires_at,
        created_by=username,
    )
    session.add(entry)
    session.flush()
    session.refresh(entry)
    _record(session, username, "watchlist.create", entry, snapshot(entry))
    return entry


# What the audit trail keeps of an entry.
AUDITED_FIELDS = (
    "kind",
    "value",
    "display_value",
    "reason",
    "severity",
    "active",
    "expires_at",
    "created_by",
    "created_at",
)


def _plain(value):
    return value.isoformat() if isinstance(value, datetime) else value


def snapshot(entry: WatchlistEntry) -> dict:
    """The entry's audited fields as JSON values."""
    return {name: _plain(getattr(entry, name)) for name in AUDITED_FIELDS}


def _record(session: Session, actor: str, action: str, entry: WatchlistEntry, details: dict) -> None:
    audit.record(
        session=session,
        actor=actor,
        action=action,
        entity_type="watchlist_entry",
        entity_id=entry.id,
        agencies=[entry.agency_code],
        details=details,
    )


def list_entries(
    *, session: Session, agency_code: str, kinds: list[str] | None = None, active: bool | None = None, limit: int = 100
) -> list[WatchlistEntry]:
    query = select(WatchlistEntry).where(WatchlistEntry.agency_code == agency_code)
    if kinds:
        query = query.where(WatchlistEntry.kind.in_(kinds))
    if active is not None:
        query = query.where(WatchlistEntry.active.is_(active))
    return list(session.scalars(query.order_by(WatchlistEntry.id).limit(limit)))


def get_entry(*, session: Session, agency_code: str, entry_id: int) -> WatchlistEntry:
    entry = session.get(WatchlistEntry, entry_id)
    if entry is None or entry.agency_code != agency_code:
        raise NotFound(f"watch-list entry {entry_id} not found")
    return entry


def update_entry(
    *, session: Session, agency_code: str, entry_id: int, update: WatchlistEntryUpdate, actor: str
) -> WatchlistEntry:
    entry = get_entry(session=session, agency_code=agency_code, entry_id=entry_id)
    changes = {}
    for name, value in update.model_dump(exclude_unset=True).items():
        if value is None and name != "expires_at":
            raise InvalidInput(f"{name} cannot be null")
        before = getattr(entry, name)
        if before != value:
            changes[name] = {"from": _plain(before), "to": _plain(value)}
        setattr(entry, name, value)
    session.flush()
    if changes:
        _record(session, actor, "watchlist.update", entry, {"changes": changes})
    return entry


def delete_entry(*, session: Session, agency_code: str, entry_id: int, actor: str) -> None:
    entry = get_entry(session=session, agency_code=agency_code, entry_id=entry_id)
    # The trail keeps the whole entry: what was watched for, why, and by whom, after the row is gone.
    kept = snapshot(entry)
    session.delete(entry)
    session.flush()
    _record(session, actor, "watchlist.delete", entry, kept)
