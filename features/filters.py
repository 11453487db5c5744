"""What a feature read may be narrowed by: a box, a time range, and the filters a layer declares.

Every condition is a fixed SQL fragment naming the layer's columns; values go in as bind
parameters. :class:`Where` gathers them for one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000


@dataclass(frozen=True)
class BBox:
    """WGS 84 longitude/latitude box, as in RFC 7946 section 5 (no antimeridian crossing)."""

    minlon: float
    minlat: float
    maxlon: float
    maxlat: float


@dataclass(frozen=True)
class TimeRange:
    """Bounds on a layer's time column, both inclusive; either may be open."""

    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class AnyOf:
    """The column equals one of the values given (no values: no condition)."""

    column: str
    sql_type: str = "text"

    def apply(self, where: Where, name: str, values: Sequence | None) -> None:
        if values:
            where.add(f"{self.column} = ANY(CAST(:{name} AS {self.sql_type}[]))", **{name: list(values)})


@dataclass(frozen=True)
class AtLeast:
    """The column is at or after the value given (None: no condition)."""

    column: str

    def apply(self, where: Where, name: str, value: object) -> None:
        if value is not None:
            where.add(f"{self.column} >= :{name}", **{name: value})


@dataclass(frozen=True)
class After:
    """The column is strictly after the value given (None: no condition)."""

    column: str

    def apply(self, where: Where, name: str, value: object) -> None:
        if value is not None:
            where.add(f"{self.column} > :{name}", **{name: value})


@dataclass(frozen=True)
class OnlyIf:
    """A fixed condition, applied when the flag given is true (e.g. the caller's agency's rows only)."""

    condition: str

    def apply(self, where: Where, name: str, flag: bool) -> None:
        if flag:
            where.add(self.condition)


Filter = AnyOf | AtLeast | After | OnlyIf


@dataclass
class Where:
    """AND-ed conditions of one statement and their bind parameters."""

    clauses: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)

    def add(self, clause: str, **params) -> None:
        self.clauses.append(clause)
        self.params.update(params)

    def bbox(self, column: str, bbox: BBox | None) -> None:
        if bbox is not None:
            # && on the envelope uses the GiST index.
            self.add(
                f"{column} && ST_MakeEnvelope(:minlon, :minlat, :maxlon, :maxlat, 4326)",
                minlon=bbox.minlon,
                minlat=bbox.minlat,
                maxlon=bbox.maxlon,
                maxlat=bbox.maxlat,
            )

    def time_range(self, column: str | None, time_range: TimeRange | None) -> None:
        # A layer without a time of its own is not filtered by time.
        if time_range is None or column is None:
            return
        if time_range.start is not None:
            self.add(f"{column} >= :start", start=time_range.start)
        if time_range.end is not None:
            self.add(f"{column} <= :end", end=time_range.end)

    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "true"
