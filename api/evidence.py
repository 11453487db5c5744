"""Evidence and its chain of custody over HTTP: items on incidents, hand-overs accepted by the
receiving agency, custody events, the chain with its verification, uploaded bytes checked against
the recorded hash. Thin: each route calls one service function inside the request's transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.deps import PrincipalDep, SessionDep
from api.mobile import IdempotencyDep, cached
from api.schemas import ErrorOut
from core.settings import get_settings
from patrols.evidence import content, schemas, service, uploads

router = APIRouter(tags=["evidence"])

_E = {"model": ErrorOut}
ERRORS = {400: _E, 401: _E, 403: _E, 404: _E, 409: _E, 422: _E}
READ = {**ERRORS, 304: {"description": "Not modified (If-None-Match matched the ETag)"}}
IDEM_NOTE = " Send an `Idempotency-Key` header so that a retry replays the first response."

IncidentId = Annotated[int, Path(ge=1, le=2**62)]
ItemId = Annotated[int, Path(ge=1, le=2**62)]
Cursor = Annotated[str | None, Query(max_length=64, description="next_cursor of the previous page")]
PageLimit = Annotated[int, Query(ge=1, le=service.MAX_PAGE)]


@router.get(
    "/incidents/{incident_id}/evidence",
    response_model=schemas.EvidencePage,
    responses=READ,
    summary="The incident's evidence the caller's agency may see, newest first",
)
def list_evidence(
    request: Request,
    incident_id: IncidentId,
    session: SessionDep,
    principal: PrincipalDep,
    cursor: Cursor = None,
    limit: PageLimit = service.DEFAULT_PAGE,
) -> Response:
    return cached(
        request,
        service.list_items(session=session, principal=principal, incident_id=incident_id, cursor=cursor, limit=limit),
    )


@router.post(
    "/incidents/{incident_id}/evidence",
    status_code=201,
    response_model=schemas.EvidenceOut,
    responses=ERRORS,
    summary="Register evidence on an incident (its first custody event: collected)." + IDEM_NOTE,
)
def create_evidence(
    incident_id: IncidentId,
    body: schemas.EvidenceCreate,
    session: SessionDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
) -> Response:
    return idem.respond(
        session,
        201,
        lambda: service.create_item(session=session, principal=principal, incident_id=incident_id, item_in=body),
    )


@router.get(
    "/evidence/{item_id}",
    response_model=schemas.EvidenceOut,
    responses=READ,
    summary="One evidence item: what it is, who holds it, its status",
)
def get_evidence(request: Request, item_id: ItemId, session: SessionDep, principal: PrincipalDep) -> Response:
    return cached(request, service.get_item(session=session, principal=principal, item_id=item_id))


@router.get(
    "/evidence/{item_id}/chain",
    response_model=schemas.ChainOut,
    responses=READ,
    summary="The chain of custody in order, verified: where it breaks if it does",
)
def evidence_chain(request: Request, item_id: ItemId, session: SessionDep, principal: PrincipalDep) -> Response:
    return cached(request, service.chain(session=session, principal=principal, item_id=item_id))


@router.post(
    "/evidence/{item_id}/handover",
    response_model=schemas.EvidenceOut,
    responses=ERRORS,
    summary="Hand the item to another agency (the custodian's supervisors, or its unit); in transit "
    "until accepted." + IDEM_NOTE,
)
def handover(
    item_id: ItemId, body: schemas.HandoverCreate, session: SessionDep, principal: PrincipalDep, idem: IdempotencyDep
) -> Response:
    return idem.respond(
        session, 200, lambda: service.handover(session=session, principal=principal, item_id=item_id, handover_in=body)
    )


@router.post(
    "/evidence/{item_id}/accept",
    response_model=schemas.EvidenceOut,
    responses=ERRORS,
    summary="The receiving agency takes the item, with the receiver's acknowledgement." + IDEM_NOTE,
)
def accept(
    item_id: ItemId, body: schemas.AcceptIn, session: SessionDep, principal: PrincipalDep, idem: IdempotencyDep
) -> Response:
    return idem.respond(
        session, 200, lambda: service.accept(session=session, principal=principal, item_id=item_id, accept_in=body)
    )


@router.post(
    "/evidence/{item_id}/decline",
    response_model=schemas.EvidenceOut,
    responses=ERRORS,
    summary="The receiving agency refuses the pending hand-over, or the giver withdraws it." + IDEM_NOTE,
)
def decline(
    item_id: ItemId, body: schemas.DeclineIn, session: SessionDep, principal: PrincipalDep, idem: IdempotencyDep
) -> Response:
    return idem.respond(
        session, 200, lambda: service.decline(session=session, principal=principal, item_id=item_id, decline_in=body)
    )


@router.post(
    "/evidence/{item_id}/events",
    status_code=201,
    response_model=schemas.EvidenceOut,
    responses=ERRORS,
    summary="The custodian seals, unseals, examines, releases, destroys or returns the item." + IDEM_NOTE,
)
def record_event(
    item_id: ItemId, body: schemas.EventIn, session: SessionDep, principal: PrincipalDep, idem: IdempotencyDep
) -> Response:
    return idem.respond(
        session, 201, lambda: service.record_event(session=session, principal=principal, item_id=item_id, event_in=body)
    )


async def _upload(
    request: Request, item_id: ItemId, session: SessionDep, principal: PrincipalDep
) -> AsyncIterator[content.ContentSpool]:
    """The request body, hashed and spooled to the evidence directory as it arrives (refused past the
    cap); the spool file is gone once the request is over, whether the bytes were kept or not. Who may
    upload is checked first: a refused caller's bytes are neither read nor written."""
    await run_in_threadpool(uploads.check_upload, session=session, principal=principal, item_id=item_id)
    settings = get_settings()
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.evidence_max_bytes:
        raise content.ContentTooLarge(
            f"the upload is larger than {settings.evidence_max_bytes} bytes", max_bytes=settings.evidence_max_bytes
        )
    spool = await run_in_threadpool(content.ContentSpool, settings.evidence_dir, settings.evidence_max_bytes)
    try:
        async for chunk in request.stream():
            await run_in_threadpool(spool.write, chunk)
        yield spool
    finally:
        spool.discard()


@router.put(
    "/evidence/{item_id}/content",
    response_model=schemas.EvidenceOut,
    responses={**ERRORS, 413: _E},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    summary="Upload the item's bytes (the raw body): kept only if their SHA-256 is the recorded one; "
    "sending them again changes nothing",
)
def upload_content(
    item_id: ItemId,
    session: SessionDep,
    principal: PrincipalDep,
    spool: Annotated[content.ContentSpool, Depends(_upload, scope="function")],
) -> schemas.EvidenceOut:
    return uploads.store_content(
        session=session, principal=principal, item_id=item_id, spool=spool, directory=get_settings().evidence_dir
    )


@router.get(
    "/evidence/{item_id}/content/verify",
    response_model=schemas.ContentCheck,
    responses=ERRORS,
    summary="Hash the stored bytes again and compare them with the recorded SHA-256",
)
def verify_content(item_id: ItemId, session: SessionDep, principal: PrincipalDep) -> schemas.ContentCheck:
    return uploads.check_content(
        session=session, principal=principal, item_id=item_id, directory=get_settings().evidence_dir
    )
