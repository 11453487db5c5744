"""Feature endpoints: segments, zones, sensors, detections and alerts as GeoJSON FeatureCollections.

Filters repeat to mean "any of": ``?severity=high&severity=critical``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import StringConstraints

from api import queries
from api.deps import PrincipalDep, SessionDep
from api.params import DEFAULT_LIMIT, BBoxDep, LimitDep, SimplifyDep, TimeRangeDep, parse_datetime
from api.responses import GeoJSONResponse
from geo.models import IMPACT_LEVELS, SEGMENT_KINDS, ZONE_KINDS
from sensors.models import ALERT_KINDS, DETECTION_CLASSES, SENSOR_KINDS, SEVERITIES

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
    return GeoJSONResponse(queries.states_geojson(
        session=session, principal=principal, bbox=bbox, simplify=simplify, limit=limit,
    ))


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
    return GeoJSONResponse(queries.segments_geojson(
        session=session, principal=principal, bbox=bbox, kinds=kind, impact_levels=impact_level,
        simplify=simplify, limit=limit,
    ))


@router.get("/zones", responses=_GEOJSON, summary="Zones the caller's agency owns or is a member of")
def zones(
    session: SessionDep,
    principal: PrincipalDep,
    bbox: BBoxDep,
    simplify: SimplifyDep = None,
    kind: Annotated[list[ZoneKind] | None, Query()] = None,
    limit: LimitDep = DEFAULT_LIMIT,
) -> GeoJSONResponse:
    return GeoJSONResponse(queries.zones_geojson(
        session=session, principal=principal, bbox=bbox, kinds=kind, simplify=simplify, limit=limit,
    ))


@router.get("/sensors", responses=_GEOJSON, summary="The caller's agency's sensors")
def sensors(
    session: SessionDep,
    principal: PrincipalDep,
    bbox: BBoxDep,
    kind: Annotated[list[SensorKind] | None, Query()] = None,
    limit: LimitDep = DEFAULT_LIMIT,
) -> GeoJSONResponse:
    return GeoJSONResponse(queries.sensors_geojson(
        session=session, principal=principal, bbox=bbox, kinds=kind, limit=limit,
    ))


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
    return GeoJSONResponse(queries.detections_geojson(
        session=session, principal=principal, bbox=bbox, time_range=time_range, sensor_ids=sensor_id,
        classes=object_class, track_keys=track_key, received_since=parse_datetime(since, "since"), limit=limit,
    ))


@router.get("/alerts", responses=_GEOJSON, summary="The caller's agency's alerts, newest first")
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
    return GeoJSONResponse(queries.alerts_geojson(
        session=session, principal=principal, bbox=bbox, time_range=time_range, kinds=kind, severities=severity,
        statuses=status, classes=object_class, sensor_ids=sensor_id, track_keys=track_key, limit=limit,
    ))
