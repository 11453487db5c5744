"""Property: a random track across the Thai-Malaysian line raises exactly one crossing alert,
with the direction given by the states its first and last fixes lie in; a track that stays on
one side raises none. Truth comes from the state polygons (shapely), not from the rule itself."""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point
from sqlalchemy import text

from alerts import geofence
from sensors import service
from sensors.schemas import DetectionRow, GatewayCreate, SensorCreate


def _state_of(point: Point, states: dict) -> str | None:
    for code, geom in states.items():
        if geom.contains(point):
            return code
    return None


def _track(line: LineString, frac: float, offsets: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points at (along, across) metre offsets from a point of the line, across = its left normal."""
    at = line.interpolate(frac, normalized=True)
    p = line.interpolate(max(0.0, frac - 0.002), normalized=True)
    q = line.interpolate(min(1.0, frac + 0.002), normalized=True)
    kx, ky = 1 / (111_320 * math.cos(math.radians(at.y))), 1 / 110_540
    tx, ty = (q.x - p.x) / kx, (q.y - p.y) / ky
    n = math.hypot(tx, ty)
    tx, ty = tx / n, ty / n
    return [(at.x + (tx * a - ty * c) * kx, at.y + (ty * a + tx * c) * ky) for a, c in offsets]


def _run(session, sensor: str, points: list[tuple[float, float]]) -> list[dict]:
    track = uuid.uuid4().hex[:10]
    t0 = datetime.now(timezone.utc) - timedelta(minutes=10)
    rows = [
        DetectionRow(
            sensor_id=sensor,
            agency_code="TH-RTP",
            event_id=uuid.uuid4().hex,
            observed_at=t0 + timedelta(seconds=20 * i),
            lon=lon,
            lat=lat,
            confidence=0.9,
            track_id=track,
            track_key=f"{sensor}:{track}",
            speed_mps=None,
            heading_deg=None,
            identifiers={},
            raw="{}",
            **{"class": "person"},
        )
        for i, (lon, lat) in enumerate(points)
    ]
    alerts = []
    # Fixes arrive in two batches, as they would from the broker.
    for part in (rows[: len(rows) // 2], rows[len(rows) // 2 :]):
        stored = service.store_detections(session=session, rows=part)
        alerts += geofence.raise_alerts(session=session, batch=stored.batch, cooldown_s=600, max_gap_s=3600)
    return [a for a in alerts if a["kind"] == "crossing"]


offsets = st.tuples(st.floats(-600, 600), st.floats(-3500, 3500))


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    frac=st.floats(0.1, 0.9),
    start=st.floats(200, 4000),
    end=st.floats(200, 4000),
    middle=st.lists(offsets, max_size=4),
    flip=st.booleans(),
)
def test_a_track_across_the_border_raises_one_crossing_with_its_direction(
    session, border, sensor, frac, start, end, middle, flip
):
    sign = -1 if flip else 1
    points = _track(border["line"], frac, [(0, -sign * start), *middle, (0, sign * end)])
    states = [_state_of(Point(p), border["states"]) for p in points]
    assume(None not in states and states[0] != states[-1])
    legs = [LineString(points[i : i + 2]) for i in range(len(points) - 1)]
    # Only the main segment may be touched, so the truth is about one line.
    assume(not any(leg.intersects(seg) for leg in legs for seg in border["all"] if not seg.equals(border["line"])))
    with session.begin_nested() as savepoint:
        crossings = _run(session, sensor, points)
        savepoint.rollback()
    assert [(c["from_state"], c["to_state"], c["segment_id"]) for c in crossings] == [
        (states[0], states[-1], border["id"])
    ]


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frac=st.floats(0.1, 0.9), side=st.sampled_from([-1, 1]), fixes=st.lists(offsets, min_size=2, max_size=6))
def test_a_track_that_stays_on_one_side_raises_no_crossing(session, border, sensor, frac, side, fixes):
    points = _track(border["line"], frac, [(a, side * (abs(c) + 150)) for a, c in fixes])
    legs = [LineString(points[i : i + 2]) for i in range(len(points) - 1)]
    assume(not any(leg.intersects(seg) for leg in legs for seg in border["all"]))
    with session.begin_nested() as savepoint:
        crossings = _run(session, sensor, points)
        savepoint.rollback()
    assert crossings == []


def test_a_tracked_object_that_stays_inside_a_buffer_enters_it_once(session, sensor):
    """Fixes hours apart at the same spot inside the Thai buffer strip: one entry, not one per cooldown."""
    track = uuid.uuid4().hex[:10]
    t0 = datetime.now(timezone.utc) - timedelta(hours=5)
    rows = [
        DetectionRow(
            sensor_id=sensor,
            agency_code="TH-RTP",
            event_id=uuid.uuid4().hex,
            observed_at=t0 + timedelta(hours=i),
            lon=100.4195,
            lat=6.5300,
            confidence=0.9,
            track_id=track,
            track_key=f"{sensor}:{track}",
            speed_mps=None,
            heading_deg=None,
            identifiers={},
            raw="{}",
            **{"class": "person"},
        )
        for i in range(4)
    ]
    entries = []
    for row in rows:
        stored = service.store_detections(session=session, rows=[row])
        entries += [
            a
            for a in geofence.raise_alerts(session=session, batch=stored.batch, cooldown_s=600, max_gap_s=3600)
            if a["kind"] == "zone_entry"
        ]
    assert len(entries) == 1


def test_zone_entries_are_raised_only_for_zones_of_the_detections_agency(session, sensor):
    """The Thai buffer strip is TH-RTP's: a Malaysian sensor's detection there is no entry alert for it."""
    gw_id = f"gw-{uuid.uuid4().hex[:8]}"
    service.create_gateway(session=session, gateway_in=GatewayCreate(id=gw_id, agency_code="MY-PDRM"))
    my_sensor = f"cam-{uuid.uuid4().hex[:8]}"
    service.create_sensor(
        session=session, sensor_in=SensorCreate(id=my_sensor, gateway_id=gw_id, kind="camera", lon=100.42, lat=6.5)
    )
    t = datetime.now(timezone.utc) - timedelta(minutes=1)
    zones = {}
    for sensor_id, agency in ((sensor, "TH-RTP"), (my_sensor, "MY-PDRM")):
        row = DetectionRow(
            sensor_id=sensor_id,
            agency_code=agency,
            event_id=uuid.uuid4().hex,
            observed_at=t,
            lon=100.4195,
            lat=6.5300,
            confidence=0.9,
            track_id=None,
            track_key=None,
            speed_mps=None,
            heading_deg=None,
            identifiers={},
            raw="{}",
            **{"class": "person"},
        )
        stored = service.store_detections(session=session, rows=[row])
        alerts = geofence.raise_alerts(session=session, batch=stored.batch, cooldown_s=600, max_gap_s=3600)
        zones[agency] = [
            session.execute(text("SELECT owner_agency FROM zones WHERE id = :z"), {"z": a["zone_id"]}).scalar()
            for a in alerts
            if a["kind"] == "zone_entry"
        ]
    assert zones == {"TH-RTP": ["TH-RTP"], "MY-PDRM": []}
