"""What crosses the wire for watch-lists."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints

from watchlists.models import WATCHLIST_KINDS, WATCHLIST_SEVERITIES

WatchlistKind = Literal[WATCHLIST_KINDS]  # type: ignore[valid-type]
WatchlistSeverity = Literal[WATCHLIST_SEVERITIES]  # type: ignore[valid-type]


class WatchlistEntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: WatchlistKind
    value: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")
    ]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]
    severity: WatchlistSeverity = "high"
    expires_at: AwareDatetime | None = None


class WatchlistEntryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)] | None = None
    severity: WatchlistSeverity | None = None
    active: bool | None = None
    expires_at: AwareDatetime | None = None


class WatchlistEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    agency_code: str
    kind: str
    value: str
    display_value: str
    reason: str
    severity: str
    active: bool
    expires_at: datetime | None
    created_by: str
    created_at: datetime
