"""Query parameters shared by the feature endpoints: bbox, time range, limit, simplify (the box and
time range are those of the feature layers, ``features.filters``)."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query

from api.errors import InvalidParameter
from features.filters import BBox, TimeRange

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000
MAX_SIMPLIFY_DEG = 1.0

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def parse_bbox(raw: str | None) -> BBox | None:
    if raw is None or raw == "":
        return None
    parts = raw.split(",")
    if len(parts) != 4:
        raise InvalidParameter(
            f"bbox must be 4 comma-separated numbers minlon,minlat,maxlon,maxlat (got {len(parts)} values)",
            parameter="bbox",
        )
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise InvalidParameter("bbox values must be numbers: minlon,minlat,maxlon,maxlat", parameter="bbox") from None
    if not all(math.isfinite(v) for v in values):
        raise InvalidParameter("bbox values must be finite numbers", parameter="bbox")
    minlon, minlat, maxlon, maxlat = values
    if not (-180 <= minlon <= 180 and -180 <= maxlon <= 180):
        raise InvalidParameter("bbox longitudes must lie within -180..180", parameter="bbox")
    if not (-90 <= minlat <= 90 and -90 <= maxlat <= 90):
        raise InvalidParameter("bbox latitudes must lie within -90..90", parameter="bbox")
    if minlon >= maxlon or minlat >= maxlat:
        raise InvalidParameter(
            "bbox minimum must be less than maximum (minlon < maxlon, minlat < maxlat)", parameter="bbox"
        )
    return BBox(minlon, minlat, maxlon, maxlat)


def parse_datetime(raw: str | None, name: str) -> datetime | None:
    if raw is None or raw == "":
        return None
    if not _RFC3339.match(raw):
        raise InvalidParameter(
            f"{name} must be an RFC 3339 date-time with a time zone, e.g. 2026-11-22T07:00:00Z", parameter=name
        )
    text = raw.replace("z", "Z").replace("Z", "+00:00")
    # Python reads at most microseconds; cut finer fractions.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParameter(f"{name} is not a valid date-time: {raw}", parameter=name) from None


def bbox_param(
    bbox: Annotated[
        str | None,
        Query(description="minlon,minlat,maxlon,maxlat in WGS 84 degrees", examples=["99.5,5.5,102.5,7.0"]),
    ] = None,
) -> BBox | None:
    return parse_bbox(bbox)


def time_range_param(
    start: Annotated[str | None, Query(description="Earliest observed_at (RFC 3339), inclusive")] = None,
    end: Annotated[str | None, Query(description="Latest observed_at (RFC 3339), inclusive")] = None,
) -> TimeRange:
    s, e = parse_datetime(start, "start"), parse_datetime(end, "end")
    if s is not None and e is not None and s > e:
        raise InvalidParameter("start must not be after end", parameter="start")
    return TimeRange(s, e)


BBoxDep = Annotated[BBox | None, Depends(bbox_param)]
TimeRangeDep = Annotated[TimeRange, Depends(time_range_param)]
LimitDep = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"At most this many features (≤ {MAX_LIMIT})")]
SimplifyDep = Annotated[
    float | None,
    Query(
        ge=0,
        le=MAX_SIMPLIFY_DEG,
        allow_inf_nan=False,
        description="Simplification tolerance in degrees (topology preserved); omit for full detail",
    ),
]
