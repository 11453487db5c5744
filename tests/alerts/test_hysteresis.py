"""Crossing hysteresis: GPS noise along the border does not flap, a crossing between fixes
minutes apart is found, and a true crossing alerts once with its direction. Rolled back per test."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone

from shapely.geometry import Point

from alerts import geofence
from sensors import service
from sensors.schemas import DetectionRow
from tests.alerts.test_crossings import _state_of, _track

HYSTERESIS_M = 40.0


def _metres(a, b) -> float:
    import math

    return math.hypot((a[0] - b[0]) * 111_320 * math.cos(math.radians(a[1])), (a[1] - b[1]) * 110_540)


def _rows(sensor_id: str, points, seconds_apart: float) -> list[DetectionRow]:
    track = uuid.uuid4().hex[:10]
    t0 = datetime.now(timezone.utc) - timedelta(hours=3)
    return [
        DetectionRow(
            sensor_id=sensor_id,
            agency_code="TH-RTP",
            event_id=uuid.uuid4().hex,
            observed_at=t0 + timedelta(seconds=seconds_apart * i),
            lon=lon,
            lat=lat,
            confidence=0.9,
            track_id=track,
            track_key=f"{sensor_id}:{track}",
            speed_mps=None,
            heading_deg=None,
            identifiers={},
            raw="{}",
            **{"class": "person"},
        )
        for i, (lon, lat) in enumerate(points)
    ]


def _alerts(session, rows, hysteresis_m: float, batch: int = 3) -> list[dict]:
    out = []
    for i in range(0, len(rows), batch):
        stored = service.store_detections(session=session, rows=rows[i : i + batch])
        out += geofence.raise_alerts(
            session=session, batch=stored.batch, cooldown_s=600, max_gap_s=3600, hysteresis_m=hysteresis_m
        )
    return out


def test_noise_along_the_line_flaps_without_hysteresis_and_not_with_it(session, border, sensor):
    rng = random.Random(5)
    # 40 fixes walking along the line 8 m on one side, each with up to 15 m of noise (the frame
    # is taken afresh every 20 m, so the walk follows the line's bends)
    length_m = sum(_metres(a, b) for a, b in zip(border["line"].coords, border["line"].coords[1:]))
    points = _track(border["line"], 0.4, [(0, 600)])
    for i in range(40):
        frac = 0.4 + 20 * i / length_m
        points += _track(border["line"], frac, [(rng.uniform(-5, 5), 8 + rng.uniform(-15, 15))])
    points += _track(border["line"], 0.4 + 800 / length_m, [(0, 600)])
    with session.begin_nested() as sp:
        without = [a for a in _alerts(session, _rows(sensor, points, 30), 0.0) if a["kind"] == "crossing"]
        sp.rollback()
    with session.begin_nested() as sp:
        with_hysteresis = _alerts(session, _rows(sensor, points, 30), HYSTERESIS_M)
        sp.rollback()
    assert len(without) >= 1  # the noise takes some fixes over the line
    assert [a for a in with_hysteresis if a["kind"] == "crossing"] == []
    # and it entered the Thai buffer once, at its first fix
    assert len([a for a in with_hysteresis if a["kind"] == "zone_entry"]) == 1


def test_a_crossing_between_fixes_ten_minutes_apart_alerts_once_with_its_direction(session, border, sensor):
    # far on one side, three noisy fixes inside the band, then far on the other side ten minutes later
    points = _track(border["line"], 0.55, [(0, -900), (5, -20), (10, 12), (15, -6), (300, 1200), (320, 1500)])
    states = [_state_of(Point(p), border["states"]) for p in points]
    with session.begin_nested() as sp:
        rows = _rows(sensor, points, 600)
        crossings = [a for a in _alerts(session, rows, HYSTERESIS_M, batch=2) if a["kind"] == "crossing"]
        sp.rollback()
    assert [(c["from_state"], c["to_state"]) for c in crossings] == [(states[0], states[-1])]
    # the leg is from the last fix clearly on the first side to the first fix clearly on the other
    assert crossings[0]["observed_at"] == rows[4]["observed_at"]


def _dwell_alerts(session, rows, dwell_s: int) -> list[dict]:
    from alerts import zone_dwell
    from core.settings import Settings

    settings = Settings(zone_dwell_s=dwell_s, crossing_hysteresis_m=HYSTERESIS_M)
    out = []
    for row in rows:  # one fix per batch, as a slow stream would come
        stored = service.store_detections(session=session, rows=[row])
        out += geofence.raise_alerts(
            session=session,
            batch=stored.batch,
            cooldown_s=600,
            max_gap_s=3600,
            hysteresis_m=HYSTERESIS_M,
            zone_dwell_s=dwell_s,
        )
        out += zone_dwell.raise_zone_entries_after_dwell(session=session, batch=stored.batch, settings=settings)
    return [a for a in out if a["kind"] == "zone_entry"]


def test_zone_entry_waits_for_the_dwell_time(session, border, sensor):
    probe = _track(border["line"], 0.45, [(0, 500), (0, -500)])
    states = [_state_of(Point(p), border["states"]) for p in probe]
    th = 1 if states[0] == "TH" else -1
    # outside (Malaysian side), 60 s inside the Thai buffer, out again: shorter than the dwell time
    brief = _track(border["line"], 0.45, [(0, -th * 600), (10, th * 300), (20, th * 320), (30, -th * 600)])
    with session.begin_nested() as sp:
        assert _dwell_alerts(session, _rows(sensor, brief, 30), dwell_s=120) == []
        sp.rollback()
    # in for five minutes (fixes a minute apart, one of them in the hysteresis band): one entry,
    # raised at the first fix two minutes after the first one inside
    stay = _track(
        border["line"],
        0.45,
        [(0, -th * 600), (10, th * 300), (20, th * 10), (30, th * 400), (40, th * 500), (50, th * 500), (60, th * 600)],
    )
    with session.begin_nested() as sp:
        rows = _rows(sensor, stay, 60)
        entries = _dwell_alerts(session, rows, dwell_s=120)
        sp.rollback()
    assert len(entries) == 1
    assert entries[0]["observed_at"] == rows[3]["observed_at"]
    assert entries[0]["details"]["dwell_s"] == 120
    # without a dwell time the same track enters at its first fix inside
    with session.begin_nested() as sp:
        rows = _rows(sensor, stay, 60)
        entries = _dwell_alerts(session, rows, dwell_s=0)
        sp.rollback()
    assert [e["observed_at"] for e in entries] == [rows[1]["observed_at"]]
