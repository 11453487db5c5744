"""Sharing agreements over HTTP: what the caller's agency releases to partners, and what partners release to it."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query

from api.deps import PrincipalDep, SessionDep
from api.schemas import ErrorOut
from core.paging import decode_cursor
from sharing import schemas, service

router = APIRouter(prefix="/sharing", tags=["sharing"])

_E = {"model": ErrorOut}
ERRORS = {400: _E, 401: _E, 403: _E, 404: _E, 409: _E, 422: _E}
AgreementId = Annotated[int, Path(ge=1, le=2**62)]


@router.post(
    "/agreements",
    status_code=201,
    response_model=schemas.AgreementOut,
    responses=ERRORS,
    summary="Release the caller's agency's alerts and incidents to a partner agency or to the members "
    "of a joint sector (supervisor, admin)",
)
def create_agreement(
    body: schemas.AgreementCreate, session: SessionDep, principal: PrincipalDep
) -> schemas.AgreementOut:
    return service.create_agreement(session=session, principal=principal, agreement_in=body)


@router.get(
    "/agreements",
    response_model=schemas.AgreementPage,
    responses=ERRORS,
    summary="Agreements the caller's agency gives (outgoing) and receives (incoming), newest first",
)
def list_agreements(
    session: SessionDep,
    principal: PrincipalDep,
    direction: Literal["outgoing", "incoming"] | None = None,
    active: Annotated[bool | None, Query(description="Only agreements in force (true) or ended (false)")] = None,
    cursor: Annotated[str | None, Query(max_length=40, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = service.DEFAULT_PAGE,
) -> schemas.AgreementPage:
    return service.list_agreements(
        session=session,
        principal=principal,
        direction=direction,
        active=active,
        cursor=decode_cursor(cursor),
        limit=limit,
    )


@router.get(
    "/agreements/{agreement_id}",
    response_model=schemas.AgreementOut,
    responses=ERRORS,
    summary="One agreement the caller's agency gives or receives",
)
def get_agreement(agreement_id: AgreementId, session: SessionDep, principal: PrincipalDep) -> schemas.AgreementOut:
    return service.get_agreement(session=session, principal=principal, agreement_id=agreement_id)


@router.post(
    "/agreements/{agreement_id}/withdraw",
    response_model=schemas.AgreementOut,
    responses=ERRORS,
    summary="Withdraw an agreement now: what it released is no longer visible from the next read on "
    "(the releasing agency's supervisor, admin)",
)
def withdraw_agreement(
    agreement_id: AgreementId,
    session: SessionDep,
    principal: PrincipalDep,
    reason: Annotated[str | None, Body(embed=True, max_length=2000)] = None,
) -> schemas.AgreementOut:
    return service.withdraw_agreement(session=session, principal=principal, agreement_id=agreement_id, reason=reason)
