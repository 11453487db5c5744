"""What crosses the wire for sensors: the MQTT detection payload and API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, TypedDict

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from sensors.models import DETECTION_CLASSES, SENSOR_KINDS

Token = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
IdentifierKey = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]
IdentifierValue = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")]
ObjectClass = Literal[DETECTION_CLASSES]  # type: ignore[valid-type]
_REAL_MIN = 1.18e-38  # smallest normal PostgreSQL `real` (float4); below it the database refuses the value


def _as_real(value: float | None) -> float | None:
    """Values stored as `real` that are too small for it become 0 (a confidence of 1e-300 is 0)."""
    return 0.0 if value is not None and 0 < abs(value) < _REAL_MIN else value


Real = AfterValidator(_as_real)
_DOUBLE_MIN = 2.2250738585072014e-308  # smallest normal double; PostgreSQL refuses subnormal input


def _as_double(value: float | None) -> float | None:
    """Coordinates too small for a normal double (below a nanometre's worth by far) become 0."""
    return 0.0 if value is not None and 0 < abs(value) < _DOUBLE_MIN else value


Double = AfterValidator(_as_double)


class DetectionPayload(BaseModel):
    """The JSON body a gateway publishes on ``.../{sensor}/detections`` (docs/mqtt.md)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, populate_by_name=True, frozen=True)

    event_id: Token
    sensor_id: Token
    observed_at: AwareDatetime
    lon: Annotated[float | None, Double] = Field(default=None, ge=-180, le=180)
    lat: Annotated[float | None, Double] = Field(default=None, ge=-90, le=90)
    object_class: ObjectClass = Field(alias="class")
    confidence: Annotated[float, Real] = Field(ge=0, le=1)
    track_id: Token | None = None
    speed_mps: Annotated[float | None, Real] = Field(default=None, ge=0, le=400)
    heading_deg: Annotated[float | None, Real] = Field(default=None, ge=0, le=360)
    identifiers: dict[IdentifierKey, IdentifierValue] = Field(default_factory=dict, max_length=16)

    @model_validator(mode="after")
    def _position_is_both_or_none(self) -> "DetectionPayload":
        if (self.lon is None) != (self.lat is None):
            raise ValueError("lon and lat must be given together (or both left out to use the sensor's location)")
        return self

    def track_key(self) -> str | None:
        """Tracks are per sensor, except vessels by MMSI, which every receiver sees alike."""
        mmsi = self.identifiers.get("mmsi")
        if mmsi:
            return f"mmsi:{mmsi}"
        if self.track_id:
            return f"{self.sensor_id}:{self.track_id}"
        return None


class GatewayStatus(BaseModel):
    """The retained body on ``.../{gateway}/status`` (the last will says ``offline``)."""

    model_config = ConfigDict(extra="ignore")

    status: Literal["online", "offline"]
    at: AwareDatetime | None = None


class GatewayCreate(BaseModel):
    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{1,63}$")]
    agency_code: str
    name: str = ""


class SensorCreate(BaseModel):
    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{1,63}$")]
    gateway_id: str
    kind: Literal[SENSOR_KINDS]  # type: ignore[valid-type]
    name: str = ""
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    coverage_radius_m: float | None = Field(default=None, gt=0, le=200_000)


# A validated detection ready for the batch insert: a plain dict, because batches are large and
# are handed to PostgreSQL column by column ("class" is its key, as in the payload).
DetectionRow = TypedDict(
    "DetectionRow",
    {
        "sensor_id": str,
        "agency_code": str,
        "event_id": str,
        "observed_at": datetime,
        "lon": float | None,
        "lat": float | None,
        "class": str,
        "confidence": float,
        "track_id": str | None,
        "track_key": str | None,
        "speed_mps": float | None,
        "heading_deg": float | None,
        "identifiers": dict[str, str],
        "raw": str,
    },
)
