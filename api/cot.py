"""Cursor-on-Target over HTTP: the caller's current picture (units, incidents, recent alerts) as
one XML document ``<events>`` of CoT 2.0 ``<event>`` elements. ``borderwatch cot-serve``
streams the same events over TCP."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import PrincipalDep, SessionDep
from api.schemas import ErrorOut
from interop import cot

router = APIRouter(tags=["cursor-on-target"])

CotType = Literal["unit", "alert", "incident"]


@router.get(
    "/cot",
    response_class=Response,
    responses={
        200: {
            "description": "<events> with one CoT <event> per unit, incident and alert",
            "content": {"application/xml": {"schema": {"type": "string"}}},
        },
        401: {"model": ErrorOut},
        422: {"model": ErrorOut},
    },
    summary="The caller's picture as Cursor-on-Target events",
)
def cot_events(
    session: SessionDep,
    principal: PrincipalDep,
    types: Annotated[list[CotType] | None, Query(description="What to include (all if omitted)")] = None,
    alert_hours: Annotated[float, Query(gt=0, le=24 * 30, description="Alerts observed within this many hours")] = 24,
    stale_s: Annotated[int, Query(ge=10, le=86400, description="Seconds until current markers go stale")] = 300,
) -> Response:
    events = cot.picture(
        session=session,
        principal=principal,
        types=tuple(types or ("unit", "alert", "incident")),
        alert_hours=alert_hours,
        stale_after=timedelta(seconds=stale_s),
    )
    body = cot.XML_DECLARATION + b"\n<events>\n" + b"".join(e + b"\n" for e in events) + b"</events>\n"
    return Response(body, media_type="application/xml")
