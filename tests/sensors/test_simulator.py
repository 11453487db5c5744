"""The simulator's tracks stay within their sensor's range, so the demo's detections are stored,
not refused as ``outside_coverage``; tracks near the border still cross it."""

from __future__ import annotations

import random

from pyproj import Geod
from shapely.geometry import LineString

from sensors import demo
from sensors.simulator import _STEP_M, plan_track

GEOD = Geod(ellps="WGS84")
SENSORS = [s for gw in demo.DEMO_GATEWAYS for s in gw["sensors"]]


def _metres(a, b) -> float:
    return GEOD.inv(a[0], a[1], b[0], b[1])[2]


def test_every_fix_is_within_the_sensors_range():
    rng = random.Random(7)
    # a boundary 1.2 km east of each sensor, running north-south
    for sensor in SENSORS:
        origin = (sensor["lon"], sensor["lat"])
        line = LineString([(origin[0] + 0.011, origin[1] - 0.2), (origin[0] + 0.011, origin[1] + 0.2)])
        for step in _STEP_M.values():
            for cross in (True, False):
                for boundary in (line, None):
                    points = plan_track(boundary, origin, sensor["range_m"], step, cross, rng)
                    assert len(points) >= 3, (sensor["id"], step)
                    far = max(_metres(origin, p) for p in points)
                    assert far <= sensor["range_m"], (sensor["id"], step, cross, far)


def test_a_crossing_track_near_the_border_crosses_it():
    rng = random.Random(11)
    origin = (100.4246, 6.6281)
    line = LineString([(origin[0] + 0.005, origin[1] - 0.2), (origin[0] + 0.005, origin[1] + 0.2)])
    points = plan_track(line, origin, 3000.0, _STEP_M["person"], True, rng)
    sides = {p[0] > origin[0] + 0.005 for p in points}
    assert sides == {True, False}
