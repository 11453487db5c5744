"""The audit trail over HTTP: supervisors and admins read the entries that concern their agency."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, SessionDep
from api.schemas import ErrorOut
from audit import schemas, service

router = APIRouter(tags=["audit"])

_E = {"model": ErrorOut}


@router.get(
    "/audit",
    response_model=schemas.AuditPage,
    responses={401: _E, 403: _E, 422: _E},
    summary="Audit entries concerning the caller's agency, newest first (supervisor, admin)",
)
def list_audit(
    session: SessionDep,
    principal: PrincipalDep,
    cursor: Annotated[str | None, Query(max_length=64, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = service.DEFAULT_PAGE,
    entity_type: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z_]+$")] = None,
    entity_id: Annotated[str | None, Query(max_length=96, pattern=r"^[\x21-\x7e]+$")] = None,
    action: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z_.]+$")] = None,
) -> schemas.AuditPage:
    return service.list_entries(
        session=session,
        principal=principal,
        cursor=cursor,
        limit=limit,
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
    )
