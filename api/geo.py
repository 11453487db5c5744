"""Feature endpoints: each layer of ``features`` as a GeoJSON FeatureCollection (``features.geojson``).

Filters repeat to mean "any of": ``?severity=high&severity=critical``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import StringConstraints

import features.alerts
import features.detections
import features.handover_points
import features.incidents
import features.patrol_routes
import features.segments
import features.sensors
import features.states
import features.units
import features.zones
from api.deps import PrincipalDep, SessionDep
from api.params import DEFAULT_LIMIT, BBoxDep, LimitDep, SimplifyDep, TimeRangeDep, parse_datetime
from api.responses import GeoJSONResponse
from core.settings import get_settings
from core.vocabulary import ALERT_KINDS, SEVERITIES
from features.geojson import collection
from geo.models import IMPACT_LEVELS, SEGMENT_KINDS, ZONE_KINDS
from patrols import joint
from patrols.models import INCIDENT_PRIORITIES, INCIDENT_STATUSES, UNIT_KINDS, UNIT_STATUSES
from sensors.models import DETECTION_CLASSES, SENSOR_KINDS

router = APIRouter(tags=["features"], default_response_class=GeoJSONResponse)

_GEOJSON = {
    200: {
        "description": "An RFC 7946 FeatureCollection with numberReturned and timeStamp",
        "content": {"application/geo+json": {"schema": {"type": "object"}}},
    }
}

SegmentKind = Literal[SEGMENT_KINDS]  # type: ignore[valid-type]
ZoneKind = Literal[ZONE_KINDS]  # type: ignore[valid-type]
SensorKind = Literal[SENSOR_KINDS]  # type: ignore[valid-type]
AlertKind = Literal[ALERT_KINDS]  # type: ignore[valid-type]
ImpactLevel = Literal[IMPACT_LEVELS]  # type: ignore[valid-type]
Severity = Literal[SEVERITIES]  # type: ignore[valid-type]
ObjectClass = Literal[DETECTION_CLASSES]  # type: ignore[valid-type]
UnitStatus = Literal[UNIT_STATUSES]  # type: ignore[valid-type]
UnitKind = Literal[UNIT_KINDS]  # type: ignore[valid-type]
IncidentStatus = Literal[INCIDENT_STATUSES]  # type: ignore[valid-type]
IncidentPriority = Literal[INCIDENT_PRIORITIES]  # type: ignore[valid-type]
SensorId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00]+$")]
TrackKey = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]
Status = Annotated[str, StringConstraints(min_length=1, max_length=16, pattern=r"^[^\x00]+$")]


@router.get("/states", responses=_GEOJSON, summary="Member states' land areas (shared; the maps' base layer)")
def states(
    session: SessionDep,
    principal: PrincipalDep,
    bbox: BBoxDep,
    simplify: SimplifyDep = None,
    limit: LimitDep = DEFAULT_LIMIT,
) -> GeoJSONResponse:
    return GeoJSONResponse(
        collection(
            features.states.LAYER,
            session=session,
            principal=principal,
            bbox=bbox,
            simplify=simplify,
            limit=limit,
        )
    )


@router.get("/segments", responses=_GEOJSON, summary="Border segments (shared by all agencies)")
def segments(
    session: SessionDep,
    principal: PrincipalDep,
    bbox: BBoxDep,
    simplify: SimplifyDep = None,
    kind: Annotated[list[SegmentKind] | None, Query()] = None,
    impact_level: Annotated[list[ImpactLevel] | None, Query()] = None,
    limit: LimitDep = DEFAULT_LIMIT,
) -> GeoJSONResponse:
    return GeoJSONResponse(
        collection(
            features.segments.LAYER,
            session=session,
            principal=principal,
            bbox=bbox,
            kinds=kind,
            impact_levels=impact_level,
            simplify=simplify,
            limit=limit,
        )
    )


@router.get("/zones", responses=_GEOJSON, summary="Zones the caller's agency owns or is a member of")
def zones(
    session: SessionDep,
    principal: PrincipalDep,
    bbox: BBoxDep,
    simplify: SimplifyDep = None,
    kind: Annotated[list[ZoneKind] | None, Query()] = None,
    limit: LimitDep = DEFAULT_LIMIT,
) -> GeoJSONResponse:
    return GeoJSONResponse(
        collection(
            features.zones.LAYER,
            session=session,
            principal=principal,
            bbox=bbox,
            kinds=kind,
            simplify=simplify,
            limit=limit,
        )
    )


@router.get("/sensors", responses=_GEOJSON, summary="The caller's agency's sensors")
def sensors(
    session: SessionDep,
    principal: PrincipalDep,
    bbox: BBoxDep,
    kind: Annotated[list[SensorKind] | None, Query()] = None,
    limit: LimitDep = DEFAULT_LIMIT,
) -> GeoJSONResponse:
    return GeoJSONResponse(
        collection(
            features.sensors.LAYER,
            session=session,
            principal=principal,
            bbox=bbox,
            kinds=kind,
            limit=limit,
        )
    )


@router.get("/detections", responses=_GEOJSON, summary="The caller's agency's detections, newest first")
def detections(
    session: SessionDep,
    principal: PrincipalDep,
    bbox: BBoxDep,
    time_range: TimeRangeDep,
    sensor_id: Annotated[list[SensorId] | None, Query()] = None,
    object_class: Annotated[list[ObjectClass] | None, Query(alias="class")] = None,
    track_key: Annotated[list[TrackKey] | None, Query()] = None,
    since: Annotated[
        str | None, Query(description="Only detections received at or after this time (RFC 3339), for polling")
    ] = None,
    limit: LimitDep = DEFAULT_LIMIT,
) -> GeoJSONResponse:
    return GeoJSONResponse(
        collection(
            features.detections.LAYER,
            session=session,
            principal=principal,
            bbox=bbox,
            time_range=time_range,
            sensor_ids=sensor_id,
            classes=object_class,
            track_keys=track_key,
            received_since=parse_datetime(since, "since"),
            limit=limit,
        )
    )


@router.get(
    "/alerts",
    responses=_GEOJSON,
    summary="The caller's agency's alerts, and partners' that sharing agreements release to it "
    "(personal fields removed where not granted), newest first",
)
def alerts(
    session: SessionDep,
    principal: PrincipalDep,
    bbox: BBoxDep,
    time_range: TimeRangeDep,
    kind: Annotated[list[AlertKind] | None, Query()] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    status: Annotated[list[Status] | None, Query()] = None,
    object_class: Annotated[list[ObjectClass] | None, Query(alias="class")] = None,
    sensor_id: Annotated[list[SensorId] | None, Query()] = None,
    track_key: Annotated[list[TrackKey] | None, Query()] = None,
    limit: LimitDep = DEFAULT_LIMIT,
) -> GeoJSONResponse:
    return GeoJSONResponse(
        collection(
            features.alerts.LAYER,
            session=session,
            principal=principal,
            bbox=bbox,
            time_range=time_range,
            kinds=kind,
            severities=severity,
            statuses=status,
            classes=object_class,
            sensor_ids=sensor_id,
            track_keys=track_key,
            limit=limit,
        )
    )


# -- patrol coordination as map features (the COP's unit, incident and joint patrol layers) ---
@router.get(
    "/features/units",
    responses=_GEOJSON,
    summary="Patrol units at their last position (own, and partners' inside a shared joint sector)",
)
def unit_features(
    session: SessionDep,
    principal: PrincipalDep,
    bbox: BBoxDep,
    status: Annotated[list[UnitStatus] | None, Query()] = None,
    kind: Annotated[list[UnitKind] | None, Query()] = None,
    limit: LimitDep = DEFAULT_LIMIT,
) -> GeoJSONResponse:
    return GeoJSONResponse(
        collection(
            features.units.LAYER,
            session=session,
            principal=principal,
            bbox=bbox,
            statuses=status,
            kinds=kind,
            limit=limit,
        )
    )


@router.get(
    "/features/incidents",
    responses=_GEOJSON,
    summary="Incidents (own, and partners' that sharing agreements release to the caller's agency), newest first",
)
def incident_features(
    session: SessionDep,
    principal: PrincipalDep,
    bbox: BBoxDep,
    status: Annotated[list[IncidentStatus] | None, Query()] = None,
    priority: Annotated[list[IncidentPriority] | None, Query()] = None,
    limit: LimitDep = DEFAULT_LIMIT,
) -> GeoJSONResponse:
    return GeoJSONResponse(
        collection(
            features.incidents.LAYER,
            session=session,
            principal=principal,
            bbox=bbox,
            statuses=status,
            priorities=priority,
            limit=limit,
        )
    )


Ended = Annotated[bool, Query(description="include joint patrols that have ended")]


@router.get(
    "/features/joint-patrol-routes",
    responses=_GEOJSON,
    summary="Routes of the joint patrols the caller's agency takes part in (not ended, unless asked)",
)
def joint_patrol_route_features(
    session: SessionDep,
    principal: PrincipalDep,
    bbox: BBoxDep,
    ended: Ended = False,
    limit: LimitDep = DEFAULT_LIMIT,
) -> GeoJSONResponse:
    return GeoJSONResponse(
        collection(
            features.patrol_routes.LAYER,
            session=session,
            principal=principal,
            bbox=bbox,
            at=None if ended else datetime.now(timezone.utc),
            limit=limit,
        )
    )


@router.get(
    "/features/handover-points",
    responses=_GEOJSON,
    summary="Hand-over points of the joint patrols the caller's agency takes part in (not ended, unless asked)",
)
def handover_point_features(
    session: SessionDep,
    principal: PrincipalDep,
    bbox: BBoxDep,
    ended: Ended = False,
    limit: LimitDep = DEFAULT_LIMIT,
) -> GeoJSONResponse:
    return GeoJSONResponse(
        collection(
            features.handover_points.LAYER,
            session=session,
            principal=principal,
            bbox=bbox,
            at=None if ended else datetime.now(timezone.utc),
            limit=limit,
        )
    )


@router.get(
    "/features/segment-coverage",
    responses=_GEOJSON,
    summary="Border segments of the caller's state: when its units last patrolled each, and the gaps",
)
def segment_coverage_features(
    session: SessionDep,
    principal: PrincipalDep,
    bbox: BBoxDep,
    simplify: SimplifyDep = None,
    hours: Annotated[
        int, Query(ge=1, le=24 * 365, description="a segment not patrolled within this many hours is a gap")
    ] = 24,
    gaps: Annotated[bool, Query(description="only the gaps")] = False,
    limit: LimitDep = DEFAULT_LIMIT,
) -> GeoJSONResponse:
    return GeoJSONResponse(
        joint.coverage_geojson(
            session=session,
            principal=principal,
            buffer_m=get_settings().border_buffer_m,
            gaps_hours=hours,
            bbox=(bbox.minlon, bbox.minlat, bbox.maxlon, bbox.maxlat) if bbox else None,
            simplify=simplify,
            only_gaps=gaps,
            limit=limit,
        )
    )
