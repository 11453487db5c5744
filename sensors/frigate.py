"""Frigate camera events (``frigate/events``) relayed by a registered gateway, as detections.

A gateway relays each Frigate event of a camera to ``ROOT/gw/{agency}/{gateway}/{sensor}/frigate``
(under its own prefix, so the broker ACL holds); ``sensor`` is the camera's sensor. Frigate
sends ``{"type": "new"|"update"|"end", "before": {...}, "after": {...}}`` with label, score,
zones and ids but no coordinates. The ``after`` state becomes one detection:

* place: the first of ``current_zones`` that has a polygon configured for the sensor
  (``borderwatch gateway frigate-zone``), at a point inside it; otherwise the camera's location;
* track: the Frigate event id, so every update of one tracked object is one track;
* event id: ``{frigate id}@{frame_time}``, so a redelivered message stores nothing twice while
  each new frame of the object is a new detection;
* class from the Frigate label (person; car, truck, bus, motorcycle, bicycle as vehicle; boat;
  airplane as aircraft; animals), confidence from ``score``, time from ``frame_time``.

Events Frigate itself marks ``false_positive`` are not detections and are dropped.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from core.db import session_scope
from core.errors import InvalidInput, InvalidPayload, NotFound
from sensors.schemas import DetectionRow

_ZONES_TTL_S = 30.0
LABEL_CLASSES = {
    "person": "person",
    "car": "vehicle",
    "truck": "vehicle",
    "bus": "vehicle",
    "motorcycle": "vehicle",
    "bicycle": "vehicle",
    "license_plate": "vehicle",
    "boat": "boat",
    "airplane": "aircraft",
    **{
        animal: "animal"
        for animal in (
            "dog",
            "cat",
            "bird",
            "horse",
            "sheep",
            "cow",
            "elephant",
            "bear",
            "zebra",
            "giraffe",
            "deer",
            "fox",
            "goat",
            "rabbit",
            "raccoon",
            "squirrel",
        )
    },
}


class FrigateObject(BaseModel):
    """The fields of a Frigate tracked object that a detection needs (others are kept in ``raw``)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00/]+$")
    camera: str = Field(min_length=1, max_length=64)
    frame_time: float = Field(gt=0, allow_inf_nan=False)
    label: str = Field(min_length=1, max_length=64)
    score: float = Field(ge=0, le=1, allow_inf_nan=False)
    top_score: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    false_positive: bool = False
    current_zones: list[str] = Field(default_factory=list, max_length=64)
    entered_zones: list[str] = Field(default_factory=list, max_length=64)
    start_time: float | None = None
    end_time: float | None = None


class FrigateEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["new", "update", "end"]
    before: FrigateObject | None = None
    after: FrigateObject


class FrigateZones:
    """A short-lived cache of the configured zone points, refreshed on a miss and every 30 s."""

    def __init__(self) -> None:
        self._points: dict[tuple[str, str], tuple[float, float]] = {}
        self._loaded: dict[str, float] = {}

    def prepare(self, engine: Engine, sensor_ids: set[str]) -> None:
        now = time.monotonic()
        stale = {s for s in sensor_ids if now - self._loaded.get(s, -_ZONES_TTL_S) >= _ZONES_TTL_S}
        if not stale:
            return
        with session_scope(engine) as session:
            rows = session.execute(
                text(
                    """SELECT sensor_id, name, ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat
                   FROM frigate_zones WHERE sensor_id = ANY(CAST(:ids AS text[]))"""
                ),
                {"ids": sorted(stale)},
            ).all()
        self._points = {k: v for k, v in self._points.items() if k[0] not in stale}
        self._points.update({(r.sensor_id, r.name): (r.lon, r.lat) for r in rows})
        self._loaded.update({s: now for s in stale})

    def place(self, sensor_id: str, zones: list[str]) -> tuple[float | None, float | None, str | None]:
        for zone in zones:
            point = self._points.get((sensor_id, zone))
            if point is not None:
                return point[0], point[1], zone
        return None, None, None


def parse_event(
    payload: bytes, *, sensor, zones: FrigateZones, window: tuple[datetime, datetime], max_bytes: int
) -> list[DetectionRow]:
    """The detection of one Frigate event of ``sensor`` (a registered sensor checked against the topic),
    or none for a false positive; ``InvalidPayload`` with the reason otherwise."""
    if len(payload) > max_bytes:
        raise InvalidPayload(f"payload of {len(payload)} bytes exceeds the limit of {max_bytes} bytes")
    if b"\\u0000" in payload:
        raise InvalidPayload("payload contains a NUL character (\\u0000), which cannot be stored")
    try:
        raw = payload.decode("utf-8")
        event = FrigateEvent.model_validate_json(raw)
    except UnicodeDecodeError as exc:
        raise InvalidPayload(f"payload is not valid UTF-8: {exc.reason} at byte {exc.start}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "payload"
        raise InvalidPayload(f"not a Frigate event: {where}: {first.get('msg', '')}") from exc
    obj = event.after
    if obj.false_positive:
        return []
    observed_at = datetime.fromtimestamp(obj.frame_time, timezone.utc)
    oldest, newest = window
    if not oldest <= observed_at <= newest:
        raise InvalidPayload(f"frame_time {observed_at.isoformat()} is outside the accepted window")
    lon, lat, zone = zones.place(sensor.id, obj.current_zones)
    return [
        {
            "sensor_id": sensor.id,
            "agency_code": sensor.agency_code,
            "event_id": f"{obj.id}@{obj.frame_time:.6f}",
            "observed_at": observed_at,
            "lon": lon,
            "lat": lat,
            "class": LABEL_CLASSES.get(obj.label, "unknown"),
            "confidence": obj.score,
            "track_id": obj.id,
            "track_key": f"{sensor.id}:{obj.id}",
            "speed_mps": None,
            "heading_deg": None,
            "identifiers": {},
            "raw": raw,
        }
    ]


def set_zone(*, session: Session, sensor_id: str, name: str, polygon_wkt: str) -> None:
    """Place (or move) Frigate zone ``name`` of a camera sensor: a valid WGS 84 polygon."""
    if session.execute(text("SELECT 1 FROM sensors WHERE id = :id"), {"id": sensor_id}).first() is None:
        raise NotFound(f"sensor {sensor_id} is not registered")
    check = None
    if polygon_wkt.strip().upper().startswith("POLYGON"):
        try:
            with session.begin_nested():
                check = session.execute(
                    text(
                        """SELECT GeometryType(g) AS kind, ST_IsValid(g) AS valid, ST_IsValidReason(g) AS reason
                       FROM (SELECT ST_GeomFromText(:wkt, 4326) AS g) p"""
                    ),
                    {"wkt": polygon_wkt},
                ).one()
        except DBAPIError:
            check = None
    if check is None or check.kind != "POLYGON":
        raise InvalidInput("the zone must be a WKT POLYGON in lon/lat (WGS 84)", field="polygon")
    if not check.valid:
        raise InvalidInput(f"the zone polygon is not valid: {check.reason}", field="polygon")
    session.execute(
        text(
            """INSERT INTO frigate_zones (sensor_id, name, geom) VALUES (:sensor, :name, ST_GeomFromText(:wkt, 4326))
           ON CONFLICT (sensor_id, name) DO UPDATE SET geom = EXCLUDED.geom, updated_at = now()"""
        ),
        {"sensor": sensor_id, "name": name, "wkt": polygon_wkt},
    )
