"""What crosses the wire for the liaison hotline."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

ItemType = Literal["alert", "incident"]
AgencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}-[A-Z0-9]{2,24}$")]
Reason = Annotated[str, StringConstraints(min_length=3, max_length=2000, pattern=r"^[^\x00]*\S[^\x00]*$")]


class PushCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_type: ItemType
    item_id: Annotated[int, Strict(), Field(ge=1, le=2**62)]
    to_agency: AgencyCode
    reason: Reason = Field(description="Why the partner must know now (recorded with who and when)")


class PushOut(BaseModel):
    id: int
    from_agency: str
    to_agency: str
    item_type: ItemType
    item_id: int
    reason: str
    pushed_by: str
    pushed_at: datetime
    item: dict[str, Any] = Field(description="The item as it was when pushed")


class PushPage(BaseModel):
    items: list[PushOut]
    next_cursor: str | None
