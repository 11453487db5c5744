"""What crosses the wire for patrols: units, positions, incidents, taskings, recommendations,
joint patrols and coverage. Places go out as RFC 7946 geometries (``{"type": "Point", ...}``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, Strict, StringConstraints, model_validator

from patrols.models import (
    INCIDENT_CATEGORIES,
    INCIDENT_PRIORITIES,
    INCIDENT_STATUSES,
    TASKING_STATUSES,
    UNIT_KINDS,
    UNIT_STATUSES,
)

UnitKind = Literal[UNIT_KINDS]  # type: ignore[valid-type]
UnitStatus = Literal[UNIT_STATUSES]  # type: ignore[valid-type]
Category = Literal[INCIDENT_CATEGORIES]  # type: ignore[valid-type]
Priority = Literal[INCIDENT_PRIORITIES]  # type: ignore[valid-type]
IncidentStatus = Literal[INCIDENT_STATUSES]  # type: ignore[valid-type]
TaskingStatus = Literal[TASKING_STATUSES]  # type: ignore[valid-type]
# Statuses an operator may set by hand; the others follow the taskings.
ClosingStatus = Literal["resolved", "false_alarm", "closed"]

Callsign = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")]
Capability = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]
ClientId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
Username = Annotated[str, StringConstraints(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]+$")]
AgencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}-[A-Z0-9]{2,24}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=r"^[^\x00]*\S[^\x00]*$")]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]*\S[^\x00-\x1f]*$")]
# Strict: a JSON true or "6.5" is not a number here.
Lon = Annotated[float, Strict(), Field(ge=-180, le=180, allow_inf_nan=False)]
Lat = Annotated[float, Strict(), Field(ge=-90, le=90, allow_inf_nan=False)]
Id = Annotated[int, Strict(), Field(ge=1, le=2**62)]
Number = Annotated[float, Strict()]

MAX_POSITIONS_PER_BATCH = 1000


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class PointGeometry(BaseModel):
    type: Literal["Point"] = "Point"
    coordinates: list[float] = Field(description="[longitude, latitude] in WGS 84")


class LineGeometry(BaseModel):
    type: Literal["LineString"] = "LineString"
    coordinates: list[list[float]]


# -- units ---------------------------------------------------------------------------------
class UnitCreate(_In):
    callsign: Callsign
    kind: UnitKind
    capabilities: list[Capability] = Field(default_factory=list, max_length=32)
    cruising_speed_kmh: Number = Field(ge=1, le=2000)
    home_lon: Lon
    home_lat: Lat
    username: Username | None = Field(
        default=None, description="The patrol_unit user of the caller's agency whose device reports for the unit"
    )


class UnitOut(BaseModel):
    id: int
    agency_code: str
    callsign: str
    kind: UnitKind
    capabilities: list[str]
    cruising_speed_kmh: float
    status: UnitStatus
    status_at: datetime
    username: str | None
    home_base: PointGeometry
    geometry: PointGeometry
    position_at: datetime | None
    version: int
    updated_at: datetime


class UnitPage(BaseModel):
    items: list[UnitOut]
    next_cursor: str | None


class StatusChange(_In):
    status: UnitStatus
    note: Text | None = None


class PositionIn(_In):
    client_id: ClientId = Field(description="Made by the device; a report resent with the same id is stored once")
    observed_at: AwareDatetime
    lon: Lon
    lat: Lat
    speed_kmh: Number | None = Field(default=None, ge=0, le=2000)
    heading_deg: Number | None = Field(default=None, ge=0, le=360)
    accuracy_m: Number | None = Field(default=None, ge=0, le=100000)


class PositionBatch(_In):
    positions: list[PositionIn] = Field(min_length=1, max_length=MAX_POSITIONS_PER_BATCH)


class PositionBatchResult(BaseModel):
    received: int
    stored: int = Field(description="Reports not seen before")
    duplicates: int = Field(description="Reports already stored under the same client_id")
    position_updated: bool = Field(description="Whether the unit's last known position moved forward")


class UnitCredential(BaseModel):
    mqtt_username: str
    mqtt_password: str = Field(description="Shown once; stored only hashed")
    taskings_topic: str


# -- incidents -----------------------------------------------------------------------------
class IncidentCreate(_In):
    """From alerts (``alert_ids``; the place defaults to the first alert's) or by hand (``lon``/``lat``)."""

    alert_ids: list[Id] = Field(default_factory=list, max_length=100)
    title: Title | None = None
    category: Category = "other"
    priority: Priority = "medium"
    lon: Lon | None = None
    lat: Lat | None = None
    note: Text | None = None

    @model_validator(mode="after")
    def _place(self) -> "IncidentCreate":
        if (self.lon is None) != (self.lat is None):
            raise ValueError("lon and lat must be given together")
        if self.lon is None and not self.alert_ids:
            raise ValueError("an incident needs alert_ids or a place (lon and lat)")
        if self.title is None and not self.alert_ids:
            raise ValueError("an incident made by hand needs a title")
        if len(set(self.alert_ids)) != len(self.alert_ids):
            raise ValueError("alert_ids must not repeat")
        return self


class IncidentOut(BaseModel):
    id: int
    agency_code: str
    title: str
    category: Category
    priority: Priority
    status: IncidentStatus
    domain: Literal["land", "maritime"]
    state: str | None = Field(description="The state whose land or territorial sea holds the place")
    geometry: PointGeometry
    alert_ids: list[int]
    created_by: str | None = Field(description="Null when redacted")
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    version: int
    redacted: bool = Field(
        False,
        description="A partner's incident shared without personal data: title, "
        "created_by, timeline notes and persons removed",
    )
    shared_by: str | None = Field(None, description="The partner agency that shared it; null for the caller's own")


class IncidentPage(BaseModel):
    items: list[IncidentOut]
    next_cursor: str | None


class IncidentStatusChange(_In):
    status: ClosingStatus
    note: Text | None = None


class NoteIn(_In):
    note: Text


class TimelineEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    kind: Literal["created", "alert_linked", "note", "status", "tasking"]
    status_from: str | None
    status_to: str | None
    note: str | None
    details: dict[str, Any]


class Timeline(BaseModel):
    incident_id: int
    entries: list[TimelineEntry]


# -- dispatch ------------------------------------------------------------------------------
class Candidate(BaseModel):
    unit_id: int
    callsign: str
    agency_code: str
    kind: UnitKind
    capabilities: list[str]
    cruising_speed_kmh: float
    geometry: PointGeometry
    distance_m: float = Field(description="Great-circle distance from the unit's last position")
    travel_distance_m: float = Field(description="distance_m, times the detour factor for land travel")
    eta_s: float
    authority: Literal["own_state", "joint_sector"]


class Recommendation(BaseModel):
    incident_id: int
    incident_domain: Literal["land", "maritime"]
    eligible_kinds: list[UnitKind]
    eta_method: str
    land_detour_factor: float
    candidates_considered: int
    units: list[Candidate]


class TaskingCreate(_In):
    unit_id: Id
    note: Text | None = None


class TaskingOut(BaseModel):
    id: int
    incident_id: int
    unit_id: int
    agency_code: str
    unit_agency_code: str
    status: TaskingStatus
    note: str | None
    eta_s: float | None
    created_by: str | None  # null for a reader of a redacted incident who is not party to the tasking
    created_at: datetime
    updated_at: datetime
    responded_at: datetime | None
    version: int
    incident: dict[str, Any] = Field(description="Title, category, priority, status and place of the incident")


class TaskingSync(BaseModel):
    items: list[TaskingOut]
    next_cursor: str | None
    sync_token: str = Field(description="Send as since= next time to receive only what changed")


class TaskingResponse(_In):
    note: Text | None = None


# -- joint patrols and coverage ------------------------------------------------------------
class HandoverIn(_In):
    name: Title
    lon: Lon
    lat: Lat
    from_agency: AgencyCode
    to_agency: AgencyCode


class JointPatrolCreate(_In):
    name: Title
    zone_id: Id = Field(description="A joint patrol sector whose agreement includes the caller's agency")
    agencies: list[AgencyCode] = Field(min_length=2, max_length=8)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    unit_ids: list[Id] = Field(default_factory=list, max_length=100)
    waypoints: list[tuple[Lon, Lat]] = Field(default_factory=list, max_length=500)
    handover_points: list[HandoverIn] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _shape(self) -> "JointPatrolCreate":
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if len(self.waypoints) == 1:
            raise ValueError("a route needs at least two waypoints (or none)")
        if len(set(self.agencies)) != len(self.agencies) or len(set(self.unit_ids)) != len(self.unit_ids):
            raise ValueError("agencies and unit_ids must not repeat")
        return self


class HandoverOut(BaseModel):
    seq: int
    name: str
    from_agency: str
    to_agency: str
    geometry: PointGeometry


class JointPatrolOut(BaseModel):
    id: int
    owner_agency: str
    name: str
    zone_id: int
    zone_name: str
    agencies: list[str]
    starts_at: datetime
    ends_at: datetime
    unit_ids: list[int]
    route: LineGeometry | None
    handover_points: list[HandoverOut]
    created_by: str
    created_at: datetime


class JointPatrolPage(BaseModel):
    items: list[JointPatrolOut]
    next_cursor: str | None


class SegmentCoverage(BaseModel):
    segment_id: int
    name: str
    kind: Literal["land", "maritime"]
    impact_level: Literal["low", "medium", "high"]
    left_state: str
    right_state: str
    last_patrolled_at: datetime | None
    last_unit_id: int | None


class Coverage(BaseModel):
    buffer_m: float
    within_hours: int | None
    segments: list[SegmentCoverage]
