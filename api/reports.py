"""Persons in incidents and the disaggregated reports on them (JSON or CSV)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from api.deps import PrincipalDep, SessionDep
from api.params import TimeRangeDep
from api.schemas import ErrorOut
from core.settings import get_settings
from patrols.people import schemas, service

router = APIRouter(tags=["people"])

_E = {"model": ErrorOut}
ERRORS = {401: _E, 403: _E, 404: _E, 422: _E}
IncidentId = Annotated[int, Path(ge=1, le=2**62)]


@router.post(
    "/incidents/{incident_id}/persons",
    status_code=201,
    response_model=schemas.PersonOut,
    responses=ERRORS,
    summary="Record a person involved in the incident (role, sex, age group, nationality)",
)
def add_person(
    incident_id: IncidentId, body: schemas.PersonCreate, session: SessionDep, principal: PrincipalDep
) -> schemas.PersonOut:
    return service.add_person(session=session, principal=principal, incident_id=incident_id, person_in=body)


@router.get(
    "/incidents/{incident_id}/persons",
    response_model=list[schemas.PersonOut],
    responses=ERRORS,
    summary="Persons involved in the incident",
)
def list_persons(incident_id: IncidentId, session: SessionDep, principal: PrincipalDep) -> list[schemas.PersonOut]:
    return service.list_persons(session=session, principal=principal, incident_id=incident_id)


@router.get(
    "/reports/persons",
    response_model=schemas.PersonReport,
    responses={**ERRORS, 200: {"content": {"text/csv": {}}}},
    summary="Persons in the caller's agency's incidents counted by period, category, segment, role, sex, "
    "age group and nationality, by the incidents' creation time (start, end); cells below "
    "BW_REPORT_MIN_CELL and their complements withheld, no totals",
)
def person_report(
    session: SessionDep,
    principal: PrincipalDep,
    group_by: Annotated[list[schemas.Dimension], Query(min_length=1, max_length=service.MAX_DIMENSIONS)],
    when: TimeRangeDep,
    period: schemas.Period = "month",
    format: Literal["json", "csv"] = "json",
) -> Response | schemas.PersonReport:
    report = service.person_report(
        session=session,
        principal=principal,
        group_by=group_by,
        period=period,
        start=when.start,
        end=when.end,
        threshold=get_settings().report_min_cell,
    )
    if format == "csv":
        return Response(
            service.report_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="persons.csv"'},
        )
    return report
