"""The liaison hotline over HTTP: push an alert or incident to a partner agency; read what partners pushed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path, Query

from api.deps import PrincipalDep, SessionDep
from api.schemas import ErrorOut
from core import topics
from core.settings import get_settings
from patrols import push as mqtt_push
from patrols.liaison import schemas, service

router = APIRouter(prefix="/liaison", tags=["liaison"])

_E = {"model": ErrorOut}
ERRORS = {401: _E, 403: _E, 404: _E, 422: _E}
Cursor = Annotated[str | None, Query(max_length=64, description="next_cursor of the previous page")]
PageLimit = Annotated[int, Query(ge=1, le=service.MAX_PAGE)]


def _publish(pushed: schemas.PushOut) -> None:
    settings = get_settings()
    mqtt_push.publish_json(
        topics.alerts(settings.mqtt_topic_root, pushed.to_agency),
        {"kind": "partner_push", **pushed.model_dump(mode="json")},
        settings=settings,
    )


@router.post(
    "/pushes",
    status_code=201,
    response_model=schemas.PushOut,
    responses=ERRORS,
    summary="Push one alert or incident of the caller's agency to a partner agency, with a reason "
    "(operator, supervisor, admin); published on the partner's alert topic",
)
def push_item(
    body: schemas.PushCreate, session: SessionDep, principal: PrincipalDep, background: BackgroundTasks
) -> schemas.PushOut:
    pushed = service.push(session=session, principal=principal, push_in=body)
    # After the response: the request's transaction has committed by then.
    background.add_task(_publish, pushed)
    return pushed


@router.get(
    "/inbox",
    response_model=schemas.PushPage,
    responses=ERRORS,
    summary="What partner agencies pushed to the caller's agency, newest first",
)
def inbox(
    session: SessionDep, principal: PrincipalDep, cursor: Cursor = None, limit: PageLimit = service.DEFAULT_PAGE
) -> schemas.PushPage:
    return service.inbox(session=session, principal=principal, cursor=cursor, limit=limit)


@router.get(
    "/inbox/{push_id}",
    response_model=schemas.PushOut,
    responses=ERRORS,
    summary="One item pushed to the caller's agency",
)
def inbox_item(
    push_id: Annotated[int, Path(ge=1, le=2**62)], session: SessionDep, principal: PrincipalDep
) -> schemas.PushOut:
    return service.inbox_item(session=session, principal=principal, push_id=push_id)


@router.get(
    "/outbox",
    response_model=schemas.PushPage,
    responses=ERRORS,
    summary="What the caller's agency pushed to partners, newest first",
)
def outbox(
    session: SessionDep, principal: PrincipalDep, cursor: Cursor = None, limit: PageLimit = service.DEFAULT_PAGE
) -> schemas.PushPage:
    return service.outbox(session=session, principal=principal, cursor=cursor, limit=limit)
