"""What crosses the wire for persons in incidents and the reports on them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from patrols.people.models import AGE_GROUPS, PERSON_ROLES, SEXES

PersonRole = Literal[PERSON_ROLES]  # type: ignore[valid-type]
Sex = Literal[SEXES]  # type: ignore[valid-type]
AgeGroup = Literal[AGE_GROUPS]  # type: ignore[valid-type]
Nationality = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Dimension = Literal["period", "category", "segment", "role", "sex", "age_group", "nationality"]
Period = Literal["month", "quarter", "year"]


class PersonCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: PersonRole
    sex: Sex = "unknown"
    age_group: AgeGroup = "unknown"
    nationality: Nationality | None = None


class PersonOut(BaseModel):
    id: int
    incident_id: int
    role: str
    sex: str
    age_group: str
    nationality: str | None
    created_by: str
    created_at: datetime


class ReportCell(BaseModel):
    key: dict[str, str]
    persons: int


class PersonReport(BaseModel):
    group_by: list[str]
    period: str
    min_cell: int
    withheld: bool = Field(description="Whether cells were withheld (which ones is not said)")
    cells: list[ReportCell] = Field(
        description="Published cells only: a combination not listed holds nobody or was withheld"
    )
