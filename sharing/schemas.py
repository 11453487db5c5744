"""What crosses the wire for sharing agreements."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, Strict, StringConstraints

from core.vocabulary import ALERT_KINDS, INCIDENT_CATEGORIES

AgencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}-[A-Z0-9]{2,24}$")]
AlertKind = Literal[ALERT_KINDS]  # type: ignore[valid-type]
Category = Literal[INCIDENT_CATEGORIES]  # type: ignore[valid-type]
PlaceId = Annotated[int, Strict(), Field(ge=1, le=2**31 - 1)]
Purpose = Annotated[str, StringConstraints(min_length=3, max_length=2000, pattern=r"^[^\x00]*\S[^\x00]*$")]


class AgreementCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_agency: AgencyCode | None = Field(None, description="The receiving agency (or give to_sector_zone_id)")
    to_sector_zone_id: PlaceId | None = Field(
        None, description="A joint patrol sector: every member agency (but the releasing one) receives"
    )
    alert_kinds: list[AlertKind] = Field(
        default_factory=list, max_length=len(ALERT_KINDS), description="Alert kinds released (none: no alerts)"
    )
    incident_categories: list[Category] = Field(
        default_factory=list,
        max_length=len(INCIDENT_CATEGORIES),
        description="Incident categories released (none: no incidents)",
    )
    zone_ids: list[PlaceId] = Field(
        default_factory=list,
        max_length=100,
        description="Released only inside these zones or near these segments; both empty: anywhere",
    )
    segment_ids: list[PlaceId] = Field(default_factory=list, max_length=100)
    valid_from: AwareDatetime | None = Field(None, description="Items from this time on (default: now)")
    valid_until: AwareDatetime | None = Field(
        None, description="Items before this time, and the agreement ends then (default: open-ended)"
    )
    personal_data: bool = Field(
        False, description="Whether personal fields are released; without it they are removed from every shared record"
    )
    purpose: Purpose = Field(description="Purpose and legal basis of the release")


class AgreementOut(BaseModel):
    id: int
    from_agency: str
    to_agency: str | None
    to_sector_zone_id: int | None
    alert_kinds: list[str]
    incident_categories: list[str]
    zone_ids: list[int]
    segment_ids: list[int]
    valid_from: datetime
    valid_until: datetime | None
    personal_data: bool
    purpose: str
    created_by: str
    created_at: datetime
    withdrawn_at: datetime | None
    withdrawn_by: str | None
    direction: Literal["outgoing", "incoming"] = Field(description="Seen from the caller's agency")
    active: bool = Field(description="Not withdrawn and not past valid_until")


class AgreementPage(BaseModel):
    items: list[AgreementOut]
    next_cursor: str | None
