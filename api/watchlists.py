"""Watch-list endpoints: the caller's agency's plates and vessel identifiers.

Everyone authenticated in an agency may read its watch-list; operators, supervisors and
admins may change it. Another agency's entries do not exist for the caller (404).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api.deps import PrincipalDep, SessionDep
from api.params import DEFAULT_LIMIT, LimitDep
from core.errors import NotAuthorised
from core.permissions import WATCHLIST_EDITORS
from core.security import Principal
from watchlists import service
from watchlists.schemas import WatchlistEntryIn, WatchlistEntryOut, WatchlistEntryUpdate, WatchlistKind

# Entry ids are 32-bit (serial): a larger one cannot name an entry.
EntryId = Annotated[int, Path(ge=1, le=2**31 - 1)]

router = APIRouter(prefix="/watchlists", tags=["watch-lists"])


def _require_editor(principal: Principal) -> None:
    if principal.role not in WATCHLIST_EDITORS:
        raise NotAuthorised(f"role {principal.role} may not change the watch-list")


@router.get("", response_model=list[WatchlistEntryOut], summary="The caller's agency's watch-list entries")
def list_entries(
    session: SessionDep,
    principal: PrincipalDep,
    kind: Annotated[list[WatchlistKind] | None, Query()] = None,
    active: bool | None = None,
    limit: LimitDep = DEFAULT_LIMIT,
) -> list[WatchlistEntryOut]:
    entries = service.list_entries(
        session=session, agency_code=principal.agency_code, kinds=kind, active=active, limit=limit
    )
    return [WatchlistEntryOut.model_validate(e) for e in entries]


@router.post("", response_model=WatchlistEntryOut, status_code=201, summary="Put an identifier on the watch-list")
def create_entry(entry_in: WatchlistEntryIn, session: SessionDep, principal: PrincipalDep) -> WatchlistEntryOut:
    _require_editor(principal)
    entry = service.create_entry(
        session=session, agency_code=principal.agency_code, username=principal.username, entry_in=entry_in
    )
    return WatchlistEntryOut.model_validate(entry)


@router.get("/{entry_id}", response_model=WatchlistEntryOut, summary="One watch-list entry")
def get_entry(entry_id: EntryId, session: SessionDep, principal: PrincipalDep) -> WatchlistEntryOut:
    return WatchlistEntryOut.model_validate(
        service.get_entry(session=session, agency_code=principal.agency_code, entry_id=entry_id)
    )


@router.patch("/{entry_id}", response_model=WatchlistEntryOut, summary="Change reason, severity, expiry or activity")
def update_entry(
    entry_id: EntryId, update: WatchlistEntryUpdate, session: SessionDep, principal: PrincipalDep
) -> WatchlistEntryOut:
    _require_editor(principal)
    return WatchlistEntryOut.model_validate(
        service.update_entry(
            session=session,
            agency_code=principal.agency_code,
            entry_id=entry_id,
            update=update,
            actor=principal.username,
        )
    )


@router.delete("/{entry_id}", status_code=204, response_class=Response, summary="Remove a watch-list entry")
def delete_entry(entry_id: EntryId, session: SessionDep, principal: PrincipalDep) -> Response:
    _require_editor(principal)
    service.delete_entry(
        session=session, agency_code=principal.agency_code, entry_id=entry_id, actor=principal.username
    )
    return Response(status_code=204)
