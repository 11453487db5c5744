"""Patrol coordination routes: units and positions, incidents, dispatch, taskings, joint patrols,
coverage. Thin: each calls one service function inside the request's transaction."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request
from fastapi.responses import Response

from api.deps import PrincipalDep, SessionDep, SessionFactoryDep, sync_broker
from api.mobile import IdempotencyDep, cached
from api.params import TimeRangeDep
from api.responses import GeoJSONResponse
from api.schemas import ErrorOut
from core.settings import get_settings
from patrols import dispatch, incidents, joint, pages, positions, push, schemas, taskings, units

log = logging.getLogger("borderwatch.api.patrols")

router = APIRouter(tags=["patrols"])

_E = {"model": ErrorOut}
ERRORS = {400: _E, 401: _E, 403: _E, 404: _E, 409: _E, 422: _E}
READ = {**ERRORS, 304: {"description": "Not modified (If-None-Match matched the ETag)"}}
IDEM_NOTE = " Send an `Idempotency-Key` header so that a retry replays the first response."

UnitId = Annotated[int, Path(ge=1, le=2**62)]
IncidentId = Annotated[int, Path(ge=1, le=2**62)]
TaskingId = Annotated[int, Path(ge=1, le=2**62)]
PatrolId = Annotated[int, Path(ge=1, le=2**62)]
Cursor = Annotated[str | None, Query(max_length=64, description="next_cursor of the previous page")]
PageLimit = Annotated[int, Query(ge=1, le=pages.MAX_PAGE)]


# -- units ---------------------------------------------------------------------------------
@router.post(
    "/units",
    status_code=201,
    response_model=schemas.UnitOut,
    responses=ERRORS,
    summary="Register a patrol unit of the caller's agency (admin, supervisor)." + IDEM_NOTE,
)
def create_unit(
    body: schemas.UnitCreate, session: SessionDep, principal: PrincipalDep, idem: IdempotencyDep
) -> Response:
    return idem.respond(session, 201, lambda: units.create_unit(session=session, principal=principal, unit_in=body))


@router.get("/units", response_model=schemas.UnitPage, responses=READ, summary="Visible units, by id")
def list_units(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    cursor: Cursor = None,
    limit: PageLimit = pages.DEFAULT_PAGE,
    status: Annotated[list[schemas.UnitStatus] | None, Query()] = None,
    kind: Annotated[list[schemas.UnitKind] | None, Query()] = None,
) -> Response:
    return cached(
        request,
        units.list_units(session=session, principal=principal, cursor=cursor, limit=limit, status=status, kind=kind),
    )


@router.get("/units/{unit_id}", response_model=schemas.UnitOut, responses=READ, summary="One unit")
def get_unit(request: Request, unit_id: UnitId, session: SessionDep, principal: PrincipalDep) -> Response:
    return cached(request, units.get_unit(session=session, principal=principal, unit_id=unit_id))


@router.put(
    "/units/{unit_id}/status",
    response_model=schemas.UnitOut,
    responses=ERRORS,
    summary="Move the unit along available → en_route → on_scene → returning → available (or off_duty)",
)
def change_unit_status(
    unit_id: UnitId, body: schemas.StatusChange, session: SessionDep, principal: PrincipalDep
) -> schemas.UnitOut:
    return units.change_unit_status(session=session, principal=principal, unit_id=unit_id, change=body)


@router.post(
    "/units/{unit_id}/positions",
    response_model=schemas.PositionBatchResult,
    responses=ERRORS,
    summary="Report a batch of positions; each has a client_id, so a resent batch changes nothing",
)
def report_positions(
    unit_id: UnitId, body: schemas.PositionBatch, session: SessionDep, principal: PrincipalDep, idem: IdempotencyDep
) -> Response:
    return idem.respond(
        session,
        200,
        lambda: positions.record_positions(session=session, principal=principal, unit_id=unit_id, batch=body),
    )


@router.get(
    "/units/{unit_id}/positions",
    responses={
        **READ,
        200: {
            "description": "The unit's position history, newest first",
            "content": {"application/geo+json": {"schema": {"type": "object"}}},
        },
    },
    summary="Position history as a GeoJSON FeatureCollection",
)
def unit_positions(
    request: Request,
    unit_id: UnitId,
    session: SessionDep,
    principal: PrincipalDep,
    time_range: TimeRangeDep,
    limit: PageLimit = pages.MAX_PAGE,
) -> Response:
    collection = positions.unit_track_geojson(
        session=session, principal=principal, unit_id=unit_id, start=time_range.start, end=time_range.end, limit=limit
    )
    return cached(request, collection, media_type=GeoJSONResponse.media_type)


@router.put(
    "/units/{unit_id}/credentials",
    response_model=schemas.UnitCredential,
    responses=ERRORS,
    summary="Issue the unit's broker credential (a new password each time; shown once)",
)
def issue_credential(
    unit_id: UnitId,
    session: SessionDep,
    principal: PrincipalDep,
    background: BackgroundTasks,
    session_factory: SessionFactoryDep,
) -> schemas.UnitCredential:
    credential = units.issue_unit_credential(
        session=session, principal=principal, unit_id=unit_id, topic_root=get_settings().mqtt_topic_root
    )
    # After the commit: the broker files are written from the committed registry.
    background.add_task(sync_broker, session_factory)
    return credential


@router.delete(
    "/units/{unit_id}/credentials",
    status_code=204,
    response_class=Response,
    responses=ERRORS,
    summary="Withdraw the unit's broker credential and revoke its user's API tokens (a lost device)",
)
def revoke_credential(
    unit_id: UnitId,
    session: SessionDep,
    principal: PrincipalDep,
    background: BackgroundTasks,
    session_factory: SessionFactoryDep,
) -> Response:
    units.revoke_unit_credential(session=session, principal=principal, unit_id=unit_id)
    background.add_task(sync_broker, session_factory)
    return Response(status_code=204)


@router.get(
    "/units/{unit_id}/taskings",
    response_model=schemas.TaskingSync,
    responses=READ,
    summary="The unit's taskings; with since= only those changed since that sync_token",
)
def unit_taskings(
    request: Request,
    unit_id: UnitId,
    session: SessionDep,
    principal: PrincipalDep,
    since: Annotated[str | None, Query(max_length=20, description="sync_token of the last sync")] = None,
    cursor: Cursor = None,
    limit: PageLimit = pages.DEFAULT_PAGE,
) -> Response:
    page = taskings.unit_taskings(
        session=session, principal=principal, unit_id=unit_id, since=since, cursor=cursor, limit=limit
    )
    return cached(request, page)


# -- incidents -----------------------------------------------------------------------------
@router.post(
    "/incidents",
    status_code=201,
    response_model=schemas.IncidentOut,
    responses=ERRORS,
    summary="Open an incident from alerts or by hand." + IDEM_NOTE,
)
def create_incident(
    body: schemas.IncidentCreate, session: SessionDep, principal: PrincipalDep, idem: IdempotencyDep
) -> Response:
    return idem.respond(
        session, 201, lambda: incidents.create_incident(session=session, principal=principal, incident_in=body)
    )


@router.get(
    "/incidents", response_model=schemas.IncidentPage, responses=READ, summary="Visible incidents, newest first"
)
def list_incidents(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    cursor: Cursor = None,
    limit: PageLimit = pages.DEFAULT_PAGE,
    status: Annotated[list[schemas.IncidentStatus] | None, Query()] = None,
) -> Response:
    return cached(
        request,
        incidents.list_incidents(session=session, principal=principal, cursor=cursor, limit=limit, status=status),
    )


@router.get("/incidents/{incident_id}", response_model=schemas.IncidentOut, responses=READ, summary="One incident")
def get_incident(request: Request, incident_id: IncidentId, session: SessionDep, principal: PrincipalDep) -> Response:
    return cached(request, incidents.get_incident(session=session, principal=principal, incident_id=incident_id))


@router.get(
    "/incidents/{incident_id}/timeline",
    response_model=schemas.Timeline,
    responses=READ,
    summary="Notes and status changes: who and when",
)
def incident_timeline(
    request: Request, incident_id: IncidentId, session: SessionDep, principal: PrincipalDep
) -> Response:
    return cached(request, incidents.timeline(session=session, principal=principal, incident_id=incident_id))


@router.post(
    "/incidents/{incident_id}/notes",
    status_code=201,
    response_model=schemas.Timeline,
    responses=ERRORS,
    summary="Add a note to the timeline." + IDEM_NOTE,
)
def add_note(
    incident_id: IncidentId, body: schemas.NoteIn, session: SessionDep, principal: PrincipalDep, idem: IdempotencyDep
) -> Response:
    return idem.respond(
        session,
        201,
        lambda: incidents.add_note(session=session, principal=principal, incident_id=incident_id, note=body.note),
    )


@router.put(
    "/incidents/{incident_id}/status",
    response_model=schemas.IncidentOut,
    responses=ERRORS,
    summary="Resolve, call a false alarm or close; tasked units are freed",
)
def change_incident_status(
    incident_id: IncidentId, body: schemas.IncidentStatusChange, session: SessionDep, principal: PrincipalDep
) -> schemas.IncidentOut:
    return incidents.change_incident_status(session=session, principal=principal, incident_id=incident_id, change=body)


@router.get(
    "/incidents/{incident_id}/recommendation",
    response_model=schemas.Recommendation,
    responses=ERRORS,
    summary="Eligible units ranked by estimated time of arrival",
)
def recommendation(
    incident_id: IncidentId,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> schemas.Recommendation:
    return dispatch.recommend(session=session, principal=principal, incident_id=incident_id, limit=limit)


@router.post(
    "/incidents/{incident_id}/taskings",
    status_code=201,
    response_model=schemas.TaskingOut,
    responses=ERRORS,
    summary="Task a unit to the incident (pushed to the unit over MQTT)." + IDEM_NOTE,
)
def assign(
    incident_id: IncidentId,
    body: schemas.TaskingCreate,
    session: SessionDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    background: BackgroundTasks,
) -> Response:
    def produce() -> schemas.TaskingOut:
        tasking = taskings.assign(session=session, principal=principal, incident_id=incident_id, tasking_in=body)
        # Background tasks run after the response, hence after the commit.
        background.add_task(push.publish_tasking, taskings.tasking_for_unit(session=session, tasking=tasking))
        return tasking

    return idem.respond(session, 201, produce)


@router.get(
    "/incidents/{incident_id}/taskings",
    response_model=list[schemas.TaskingOut],
    responses=READ,
    summary="The incident's taskings",
)
def incident_taskings(
    request: Request, incident_id: IncidentId, session: SessionDep, principal: PrincipalDep
) -> Response:
    return cached(
        request,
        [
            t.model_dump(mode="json")
            for t in taskings.incident_taskings(session=session, principal=principal, incident_id=incident_id)
        ],
    )


# -- taskings ------------------------------------------------------------------------------
@router.get("/taskings/{tasking_id}", response_model=schemas.TaskingOut, responses=READ, summary="One tasking")
def get_tasking(request: Request, tasking_id: TaskingId, session: SessionDep, principal: PrincipalDep) -> Response:
    return cached(request, taskings.get_tasking(session=session, principal=principal, tasking_id=tasking_id))


@router.post(
    "/taskings/{tasking_id}/accept",
    response_model=schemas.TaskingOut,
    responses=ERRORS,
    summary="The unit accepts and is en route; accepting again changes nothing",
)
def accept(
    tasking_id: TaskingId, session: SessionDep, principal: PrincipalDep, body: schemas.TaskingResponse | None = None
) -> schemas.TaskingOut:
    return taskings.accept(session=session, principal=principal, tasking_id=tasking_id, response=body)


@router.post(
    "/taskings/{tasking_id}/decline",
    response_model=schemas.TaskingOut,
    responses=ERRORS,
    summary="The unit declines; declining again changes nothing",
)
def decline(
    tasking_id: TaskingId, session: SessionDep, principal: PrincipalDep, body: schemas.TaskingResponse | None = None
) -> schemas.TaskingOut:
    return taskings.decline(session=session, principal=principal, tasking_id=tasking_id, response=body)


# -- joint patrols and coverage ------------------------------------------------------------
@router.post(
    "/joint-patrols",
    status_code=201,
    response_model=schemas.JointPatrolOut,
    responses=ERRORS,
    summary="Plan a joint patrol in a shared sector (admin, supervisor)." + IDEM_NOTE,
)
def create_joint_patrol(
    body: schemas.JointPatrolCreate, session: SessionDep, principal: PrincipalDep, idem: IdempotencyDep
) -> Response:
    return idem.respond(
        session, 201, lambda: joint.create_joint_patrol(session=session, principal=principal, patrol_in=body)
    )


@router.get(
    "/joint-patrols",
    response_model=schemas.JointPatrolPage,
    responses=READ,
    summary="Joint patrols the caller's agency takes part in",
)
def list_joint_patrols(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    cursor: Cursor = None,
    limit: PageLimit = pages.DEFAULT_PAGE,
    active: Annotated[bool, Query(description="only those under way now")] = False,
) -> Response:
    from datetime import datetime, timezone

    page = joint.list_joint_patrols(
        session=session,
        principal=principal,
        cursor=cursor,
        limit=limit,
        active_at=datetime.now(timezone.utc) if active else None,
    )
    return cached(request, page)


@router.get(
    "/joint-patrols/{patrol_id}",
    response_model=schemas.JointPatrolOut,
    responses=READ,
    summary="One joint patrol with its route and hand-over points",
)
def get_joint_patrol(request: Request, patrol_id: PatrolId, session: SessionDep, principal: PrincipalDep) -> Response:
    return cached(request, joint.get_joint_patrol(session=session, principal=principal, patrol_id=patrol_id))


Hours = Annotated[int, Query(ge=1, le=24 * 365, description="Not patrolled within this many hours")]


@router.get(
    "/coverage",
    response_model=schemas.Coverage,
    responses=READ,
    summary="For each border segment of the caller's state: when its units last patrolled the buffer",
)
def coverage(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    return cached(
        request, joint.coverage(session=session, principal=principal, buffer_m=get_settings().border_buffer_m)
    )


@router.get(
    "/coverage/gaps",
    response_model=schemas.Coverage,
    responses=READ,
    summary="Segments not patrolled within N hours, high impact first",
)
def coverage_gaps(request: Request, session: SessionDep, principal: PrincipalDep, hours: Hours = 24) -> Response:
    return cached(
        request,
        joint.coverage(session=session, principal=principal, buffer_m=get_settings().border_buffer_m, gaps_hours=hours),
    )
