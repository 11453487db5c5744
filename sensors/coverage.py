"""Whether a detection lies within what its sensor can see.

A sensor sees as far as its own range (``sensors.range_m``, set from the coverage radius it was
registered with) or, without one, the default of its kind (``BW_SENSOR_RANGE_<KIND>_M``). A
position further than that from the sensor's registered location is refused (a dead letter whose
reason starts with ``outside_coverage``): a gateway cannot place its sensors' detections anywhere
it likes, e.g. on another agency's side of the border. The check runs at parse time on the
ingest's registry cache (one query per refresh, none per row); a position left out of the payload
is the sensor's own and always within.
"""

from __future__ import annotations

import math
from typing import Protocol

from core.settings import Settings

OUTSIDE_COVERAGE = "outside_coverage"
_EARTH_RADIUS_M = 6_371_008.8


class Located(Protocol):
    id: str
    kind: str
    lon: float | None
    lat: float | None
    range_m: float | None


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres (the spherical Earth is within 0.5 % of the spheroid)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def outside(sensor: Located, lon: float | None, lat: float | None, settings: Settings) -> str | None:
    """Why a position is outside the sensor's coverage, or None when it is within."""
    if lon is None or lat is None or sensor.lon is None or sensor.lat is None:
        return None
    reach = sensor.range_m or settings.sensor_range_m(sensor.kind)
    away = distance_m(sensor.lon, sensor.lat, lon, lat)
    if away <= reach:
        return None
    return (
        f"{OUTSIDE_COVERAGE}: position ({lon:.5f}, {lat:.5f}) is {away / 1000:.1f} km from sensor "
        f"{sensor.id!r}, whose range is {reach / 1000:.1f} km"
    )
