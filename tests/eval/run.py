"""Labelled scenario suite: generated tracks with known truth run through the real ingest path
(MQTT -> ingest worker process -> PostGIS) and the alerts scored against the truth.

Scenario groups, each scored on its own:
- land: tracks at the Thai-Malaysian border (up to 15 m of GPS noise, fixes 10 s to 10 min apart):
  crossings in both directions, there and back, tracks along the line that never cross, tracks
  that come close and turn back; truth for crossings and for entries into the Thai border buffer
  strip from the noise-free path;
- multi: tracks with several events each (in and out of the buffer strip, back and forth across
  the line, or both), 20-30 m of noise, fixes 30 s to 15 min apart;
- bends: back and forth across the river bends of the line (legs that cut it one or three times);
- backlog: tracks like ``multi`` from a gateway whose link is dead for long spells: what it
  observed meanwhile goes out in one upload when the link comes back (several events of a track
  in one batch);
- sea (Malacca Strait, Malaysian territorial sea): AIS vessels under way, vessels that go silent
  for 35-60 minutes, boats only radar sees (dark), radar tracks of AIS vessels, pairs that meet
  for 35-50 minutes (and pairs that only pass), vessels that drift in a zone for 40-60 minutes
  (and some only for 15);
- sea-ids: radar contacts whose gateway attached an MMSI: boats no AIS transmission backs (dark)
  and radar tracks of vessels AIS hears (not dark).
The truth keeps one crossing and one entry per track within the alert cooldown, in observed time.

Scored per alert kind: expected, alerts, true positives, precision, recall, false-alert rate,
wrong-direction crossings and duplicates. Run with ``make eval``; the last line is ``EVAL {json}``
(``kinds`` over every scenario, ``groups`` per group).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import orjson
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from shapely import wkt
from shapely.geometry import LineString, Point
from sqlalchemy import text

from broker import service as access
from cli.schema import migrate_database
from core import topics
from core.db import make_engine, session_scope
from core.settings import REPO_ROOT, get_settings
from sensors import service
from sensors.models import Gateway
from sensors.schemas import GatewayCreate, SensorCreate
from tests.broker_roots import topic_root_on_broker

console = Console(stderr=True)
NOISE_M = 15.0
M_PER_DEG = 111_320.0
LAND_GW, SEA_GW, BACKLOG_GW = "eval-th-gw", "eval-my-gw", "eval-th-backlog-gw"
LAND_SENSOR, AIS_SENSOR, RADAR_SENSOR = "eval-th-tracker", "eval-my-ais", "eval-my-radar"
BACKLOG_SENSOR = "eval-th-backlog"
SENSORS = (LAND_SENSOR, AIS_SENSOR, RADAR_SENSOR, BACKLOG_SENSOR)
KINDS = ("crossing", "zone_entry", "dark_vessel", "ais_gap", "rendezvous", "loitering")
# Scenario groups, each scored on its own.
GROUPS = ("land", "multi", "bends", "backlog", "sea", "sea-ids")
COOLDOWN_S = 600  # BW_ALERT_COOLDOWN_S: the truth keeps one alert per track and target within it


@dataclass
class Fix:
    sensor: str
    topic_gateway: str
    agency: str
    at: datetime
    lon: float
    lat: float
    body: dict
    sent_at: datetime | None = None  # when the gateway sends it, if not at once (a backlog)


@dataclass
class Truth:
    crossings: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # track -> ["TH>MY", ...]
    entries: Counter = field(default_factory=Counter)  # track -> entries into the Thai buffer
    dark: Counter = field(default_factory=Counter)  # radar track -> 1 if dark
    gaps: Counter = field(default_factory=Counter)  # vessel track -> gaps
    rendezvous: Counter = field(default_factory=Counter)  # "a|b" -> encounters
    loitering: Counter = field(default_factory=Counter)  # "track|zone" -> stays
    tracks: dict[str, set] = field(default_factory=lambda: defaultdict(set))  # kind -> every track judged
    group: dict[str, str] = field(default_factory=dict)  # track (or pair, or track|zone) -> scenario group


PLACE_SPACING_M = 14_000.0
SPARE_PLACE_SPACING_M = 12_000.0  # spare places, used only when a larger --scale needs more


def _metres(p, q) -> float:
    return math.hypot((p[0] - q[0]) * M_PER_DEG * math.cos(math.radians(p[1])), (p[1] - q[1]) * M_PER_DEG)


def to_xy(lon0: float, lat0: float):
    kx, ky = 1 / (M_PER_DEG * math.cos(math.radians(lat0))), 1 / M_PER_DEG
    return kx, ky


def noisy(lon: float, lat: float, rng: random.Random, noise_m: float = NOISE_M) -> tuple[float, float]:
    r, a = noise_m * math.sqrt(rng.random()), rng.random() * 2 * math.pi
    kx, ky = to_xy(lon, lat)
    return lon + r * math.cos(a) * kx, lat + r * math.sin(a) * ky


def prepare(settings, engine) -> dict:
    from geo import service as geo_service

    with session_scope(engine) as s:
        s.execute(
            text(
                "TRUNCATE detections, detection_keys, alerts, alert_cooldowns, track_positions, dead_letters, "
                "ais_fragments, ais_gaps, encounters, loiter_states, sensor_health CASCADE"
            )
        )
    with session_scope(engine) as s:
        if not s.execute(text("SELECT count(*) FROM border_segments")).scalar():
            geo_service.load_shipped_borders(session=s, buffer_m=settings.border_buffer_m)
        geo_service.ensure_agencies(session=s)
        for gw, agency, sensors in (
            (LAND_GW, "TH-RTP", [(LAND_SENSOR, "other", 100.42, 6.55)]),
            (BACKLOG_GW, "TH-RTP", [(BACKLOG_SENSOR, "other", 100.72, 6.55)]),
            (SEA_GW, "MY-MMEA", [(AIS_SENSOR, "ais_receiver", 101.78, 2.28), (RADAR_SENSOR, "radar", 101.78, 2.28)]),
        ):
            if s.get(Gateway, gw) is None:
                service.create_gateway(session=s, gateway_in=GatewayCreate(id=gw, agency_code=agency))
                for sid, kind, lon, lat in sensors:
                    service.create_sensor(
                        session=s, sensor_in=SensorCreate(id=sid, gateway_id=gw, kind=kind, lon=lon, lat=lat)
                    )
    with session_scope(engine) as s:
        # Each eval sensor stands for a network covering its whole border or sea: a range of its own
        # (sensors.range_m) that takes in every scenario place, so no fix is refused as outside coverage.
        s.execute(text("UPDATE sensors SET range_m = 2000000 WHERE id = ANY(:ids)"), {"ids": list(SENSORS)})
    with session_scope(engine) as s:
        access.sync_broker(session=s, settings=settings)
        geo = {}
        seg = s.execute(
            text("SELECT id, ST_AsText(geom) FROM border_segments WHERE name = 'Thailand–Malaysia 1'")
        ).one()
        geo["line"], geo["line_id"] = wkt.loads(seg[1]), seg[0]
        geo["segments"] = [wkt.loads(g) for (g,) in s.execute(text("SELECT ST_AsText(geom) FROM border_segments"))]
        geo["states"] = {
            c: wkt.loads(g)
            for c, g in s.execute(text("SELECT code, ST_AsText(geom) FROM states WHERE code IN ('TH', 'MY')"))
        }
        geo["th_buffer"] = wkt.loads(
            s.execute(text("SELECT ST_AsText(geom) FROM zones WHERE name = 'Thailand–Malaysia 1 buffer TH'")).scalar()
        )
        # Places at sea for the vessels: inside the Malaysian territorial sea of the Malacca Strait,
        # at least 6 km from the maritime boundary and 5 km inside the zone, 14 km from each other;
        # spare places 12 km from every other place, for the counts of a larger --scale.
        points = s.execute(
            text(
                """
            WITH z AS (SELECT geom FROM zones WHERE name = 'Malaysia territorial sea (Malacca–Singapore Straits area)'),
            inner_z AS (SELECT ST_Buffer(geom::geography, -5000)::geometry AS g FROM z)
            SELECT ST_X(p.geom), ST_Y(p.geom)
            FROM inner_z, ST_Dump(ST_GeneratePoints(inner_z.g, 1500, 7)) p
            WHERE NOT EXISTS (SELECT 1 FROM border_segments b WHERE b.kind = 'maritime'
                              AND ST_DWithin(b.geom::geography, p.geom::geography, 6000))
            """
            )
        ).all()
    places: list[tuple[float, float]] = []
    for lon, lat in points:
        if all(_metres((lon, lat), q) > PLACE_SPACING_M for q in places):
            places.append((lon, lat))
    spare: list[tuple[float, float]] = []
    for lon, lat in points:
        if all(_metres((lon, lat), q) > SPARE_PLACE_SPACING_M for q in places + spare):
            spare.append((lon, lat))
    geo["places"], geo["spare_places"] = places, spare
    return geo


# -- land ---------------------------------------------------------------------------------------


def _frame(line: LineString, frac: float):
    at = line.interpolate(frac, normalized=True)
    p = line.interpolate(max(0.0, frac - 0.001), normalized=True)
    q = line.interpolate(min(1.0, frac + 0.001), normalized=True)
    kx, ky = to_xy(at.x, at.y)
    tx, ty = (q.x - p.x) / kx, (q.y - p.y) / ky
    n = math.hypot(tx, ty)
    tx, ty = tx / n, ty / n

    def point(along: float, across: float) -> tuple[float, float]:
        return at.x + (tx * along - ty * across) * kx, at.y + (ty * along + tx * across) * ky

    return point


def _state(p: tuple[float, float], states) -> str | None:
    pt = Point(p)
    for code, geom in states.items():
        if geom.contains(pt):
            return code
    return None


def land_scenarios(
    geo, rng: random.Random, t0: datetime, duration_s: float, counts: dict, truth: Truth, dwell_s: float = 0.0
) -> list[Fix]:
    fixes: list[Fix] = []
    plans = (
        ["cross"] * counts["cross"]
        + ["there_and_back"] * counts["there_and_back"]
        + ["along"] * counts["along"]
        + ["turn_back"] * counts["turn_back"]
    )
    made = 0
    for plan in plans:
        for _attempt in range(50):
            frac = rng.uniform(0.1, 0.9)
            point = _frame(geo["line"], frac)
            side = rng.choice([-1, 1])
            a0 = rng.uniform(-300, 300)
            if plan == "cross":
                way = [
                    (a0, side * rng.uniform(400, 2000)),
                    (a0 + rng.uniform(-300, 300), -side * rng.uniform(400, 2000)),
                ]
                waits = [0, 0]
            elif plan == "there_and_back":
                far = -side * rng.uniform(400, 1500)
                way = [(a0, side * rng.uniform(400, 1500)), (a0 + 100, far), (a0 + 200, side * rng.uniform(400, 1500))]
                waits = [0, 1800, 0]  # half an hour on the other side
            elif plan == "along":
                d = side * rng.uniform(10, 25)  # walks along the line, 10-25 m from it
                way = [(a0, side * rng.uniform(300, 800)), (a0 + 100, d), (a0 + 1500, d), (a0 + 1600, side * 500)]
                waits = [0, 0, 0, 0]
            else:  # comes within 5-30 m of the line and turns back
                way = [
                    (a0, side * rng.uniform(400, 1500)),
                    (a0 + 100, side * rng.uniform(5, 30)),
                    (a0 + 200, side * rng.uniform(400, 1500)),
                ]
                waits = [0, 600, 0]
            pts = [point(a, c) for a, c in way]
            # the noise-free path must stay clear of every other border line and wiggle of this one
            path = LineString(pts)
            if any(path.intersects(seg) for seg in geo["segments"] if not seg.equals(geo["line"])):
                continue
            states = [_state(p, geo["states"]) for p in pts]
            if None in states:
                continue
            crossings_expected = sum(1 for i in range(len(pts) - 1) if states[i] != states[i + 1])
            n_inter = sum(_n_intersections(LineString(pts[i : i + 2]), geo["line"]) for i in range(len(pts) - 1))
            if plan in ("cross", "there_and_back") and n_inter != crossings_expected:
                continue
            if plan in ("along", "turn_back") and (n_inter or len(set(states)) != 1):
                continue
            break
        else:
            continue
        made += 1
        speed = rng.choice([1.4, 1.4, 5.0, 10.0])  # on foot, by motorbike, by car
        interval = rng.choice([10, 30, 60, 120, 300, 600])
        start = t0 + timedelta(seconds=rng.uniform(0, duration_s * 0.3))
        emit_land(
            geo,
            rng,
            truth,
            fixes,
            track=f"{plan}-{made}",
            group="land",
            pts=pts,
            waits=waits,
            speed=speed,
            interval=interval,
            start=start,
            noise_m=NOISE_M,
            dwell_s=dwell_s,
        )
    return fixes


def emit_land(
    geo,
    rng: random.Random,
    truth: Truth,
    fixes: list[Fix],
    *,
    track: str,
    group: str,
    pts,
    waits,
    speed: float,
    interval: float,
    start: datetime,
    noise_m: float,
    dwell_s: float,
    sensor: str = LAND_SENSOR,
    gateway: str = LAND_GW,
) -> float:
    """Fixes of one land track along waypoints ``pts`` (waiting ``waits[i]`` s at each), with the truth:
    crossings from the states of the noise-free fixes, entries into the Thai buffer strip from runs of
    noise-free fixes inside it, each kept once per track within the cooldown (in observed time, as the
    rule counts it). Returns the track's duration in seconds."""
    kind = "person" if speed < 2 else "vehicle"
    truth.tracks["crossing"].add(track)
    truth.tracks["zone_entry"].add(track)
    truth.group[track] = group
    # sample the noise-free path every `interval` seconds (with jitter)
    times, positions = _sample(pts, waits, speed, interval, rng)
    prev_state, runs, crossed_at = None, [], None  # runs: [first, last] times inside the Thai buffer
    for dt, p in zip(times, positions):
        st_now = _state(p, geo["states"])
        inside = geo["th_buffer"].contains(Point(p))
        if prev_state and st_now and st_now != prev_state:
            if crossed_at is None or dt - crossed_at >= COOLDOWN_S:
                truth.crossings[track].append(f"{prev_state}>{st_now}")
                crossed_at = dt
        if inside:
            if runs and runs[-1][2]:
                runs[-1][1] = dt
            else:
                runs.append([dt, dt, True])
        elif runs:
            runs[-1][2] = False
        prev_state = st_now or prev_state
        lon, lat = noisy(p[0], p[1], rng, noise_m)
        fixes.append(
            Fix(sensor, gateway, "TH-RTP", start + timedelta(seconds=dt), lon, lat, {"class": kind, "track_id": track})
        )
    # an entry counts once the object has been inside for the dwell time
    entered_at = None
    for first, last, _ in runs:
        if last - first >= dwell_s and (entered_at is None or first + dwell_s - entered_at >= COOLDOWN_S):
            truth.entries[track] += 1
            entered_at = first + dwell_s
    return times[-1]


def _m_from(geom, p) -> float:
    """Approximate distance in metres from a point to a geometry (degrees scaled at the point)."""
    return geom.distance(Point(p)) * M_PER_DEG


def _thai_sign(geo, point) -> int | None:
    """+1 when the left normal of the line frame points into Thailand, -1 when into Malaysia."""
    a, b = _state(point(0, 1000), geo["states"]), _state(point(0, -1000), geo["states"])
    return {("TH", "MY"): 1, ("MY", "TH"): -1}.get((a, b))


def _clear_of_other_lines(geo, pts) -> bool:
    path = LineString(pts)
    return not any(path.intersects(seg) for seg in geo["segments"] if not seg.equals(geo["line"]))


def _waits(rng: random.Random, n: int, interval: float) -> list[float]:
    """Time spent at each waypoint: long enough that the next event of the track comes a full cooldown
    after this one, whatever the spacing of the fixes."""
    return [rng.uniform(COOLDOWN_S + interval + 180, COOLDOWN_S + interval + 600) for _ in range(n - 1)] + [0]


def multi_scenarios(
    geo,
    rng: random.Random,
    t0: datetime,
    duration_s: float,
    count: int,
    truth: Truth,
    *,
    group: str,
    sensor: str = LAND_SENSOR,
    gateway: str = LAND_GW,
    dwell_s: float = 0.0,
) -> list[Fix]:
    """Tracks with several events each: in and out of the Thai buffer strip (OUT: Thailand beyond the
    strip; IN: inside it), back and forth across the line (TH, MY), or both in turn; fixes 30 s to 15 min
    apart, 20-30 m of noise."""
    fixes: list[Fix] = []
    buffer_edge = geo["th_buffer"].boundary
    made = 0
    for _ in range(count):
        for _attempt in range(80):
            point = _frame(geo["line"], rng.uniform(0.1, 0.9))
            th = _thai_sign(geo, point)
            if th is None:
                continue
            plan = rng.choice(["zone", "cross", "mixed"])
            places = {
                "OUT": lambda: th * rng.uniform(5700, 6500),
                "IN": lambda: th * rng.uniform(1500, 3500),
                "TH": lambda: th * rng.uniform(400, 1500),
                "MY": lambda: -th * rng.uniform(400, 1500),
            }
            names = {"zone": ["OUT", "IN"], "cross": ["TH", "MY"], "mixed": ["OUT", "TH", "MY", "TH"]}[plan]
            first = rng.randrange(len(names))
            steps = [names[(first + i) % len(names)] for i in range(rng.randint(3, 5))]
            a0 = rng.uniform(-500, 500)
            pts = [point(a0 + rng.uniform(-200, 200), places[name]()) for name in steps]
            states = [_state(p, geo["states"]) for p in pts]
            want = ["MY" if name == "MY" else "TH" for name in steps]
            if states != want or not _clear_of_other_lines(geo, pts):
                continue
            inside = [geo["th_buffer"].contains(Point(p)) for p in pts]
            if inside != [name in ("IN", "TH") for name in steps]:
                continue
            if any(_m_from(buffer_edge, p) < 300 for p, name in zip(pts, steps) if name in ("OUT", "IN")):
                continue
            changes = sum(1 for i in range(len(pts) - 1) if states[i] != states[i + 1])
            if changes != sum(_n_intersections(LineString(pts[i : i + 2]), geo["line"]) for i in range(len(pts) - 1)):
                continue
            speed = rng.choice([1.4, 1.4, 5.0, 10.0])
            interval = rng.choice([30, 60, 120, 300, 600, 900])
            waits = _waits(rng, len(pts), interval)
            travel = sum(_metres(p, q) for p, q in zip(pts, pts[1:])) / speed
            if sum(waits) + travel > duration_s * 0.95:
                continue
            break
        else:
            continue
        made += 1
        start = t0 + timedelta(seconds=rng.uniform(0, duration_s * 0.95 - sum(waits) - travel))
        emit_land(
            geo,
            rng,
            truth,
            fixes,
            track=f"{group}-{plan}-{made}",
            group=group,
            pts=pts,
            waits=waits,
            speed=speed,
            interval=interval,
            start=start,
            noise_m=rng.uniform(20, 30),
            dwell_s=dwell_s,
            sensor=sensor,
            gateway=gateway,
        )
    return fixes


def _bends(line: LineString, min_turn_deg: float = 60.0) -> list[float]:
    """Fractions of the line where it turns by ``min_turn_deg`` or more within 150 m either side
    (the river bends), at least 1.5 km apart."""
    length_m = sum(_metres(p, q) for p, q in zip(line.coords, list(line.coords)[1:]))
    step, d = 40.0 / length_m, 150.0 / length_m
    found: list[float] = []
    f = 0.05
    while f < 0.95:
        a, b, c = (line.interpolate(x, normalized=True) for x in (f - d, f, f + d))
        h1 = math.atan2((b.y - a.y), (b.x - a.x) * math.cos(math.radians(b.y)))
        h2 = math.atan2((c.y - b.y), (c.x - b.x) * math.cos(math.radians(b.y)))
        turn = abs(math.degrees((h2 - h1 + math.pi) % (2 * math.pi) - math.pi))
        if turn >= min_turn_deg and all(abs(f - g) * length_m > 1500 for g in found):
            found.append(f)
        f += step
    return found


def bend_scenarios(
    geo, rng: random.Random, t0: datetime, duration_s: float, count: int, truth: Truth, dwell_s: float = 0.0
) -> list[Fix]:
    """Back and forth across the river bends of the line: legs that may cut the line one or three times."""
    fixes: list[Fix] = []
    bends = _bends(geo["line"])
    if not bends:
        return fixes
    made = 0
    for _ in range(count):
        for _attempt in range(200):
            at = geo["line"].interpolate(rng.choice(bends), normalized=True)
            kx, ky = to_xy(at.x, at.y)

            def near():
                r, a = rng.uniform(250, 1200), rng.uniform(0, 2 * math.pi)
                return at.x + r * math.cos(a) * kx, at.y + r * math.sin(a) * ky

            pts = [near() for _ in range(rng.randint(3, 4))]
            states = [_state(p, geo["states"]) for p in pts]
            if None in states or any(states[i] == states[i + 1] for i in range(len(pts) - 1)):
                continue
            if any(_m_from(geo["line"], p) < 120 for p in pts) or not _clear_of_other_lines(geo, pts):
                continue
            if any(_n_intersections(LineString(pts[i : i + 2]), geo["line"]) % 2 == 0 for i in range(len(pts) - 1)):
                continue
            speed = rng.choice([1.4, 5.0])
            interval = rng.choice([30, 60, 120, 300, 600, 900])
            waits = _waits(rng, len(pts), interval)
            if sum(waits) + 3600 > duration_s * 0.95:
                continue
            break
        else:
            continue
        made += 1
        start = t0 + timedelta(seconds=rng.uniform(0, duration_s * 0.95 - sum(waits) - 3600))
        emit_land(
            geo,
            rng,
            truth,
            fixes,
            track=f"bend-{made}",
            group="bends",
            pts=pts,
            waits=waits,
            speed=speed,
            interval=interval,
            start=start,
            noise_m=rng.uniform(20, 30),
            dwell_s=dwell_s,
        )
    return fixes


def backlog(fixes: list[Fix], t0: datetime, duration_s: float) -> list[Fix]:
    """The backlog gateway's link is dead for the first half of the run and again from 60 % to 90 %: what it
    observed meanwhile goes out in one upload, in observed order, when the link comes back."""
    for f in fixes:
        s = (f.at - t0).total_seconds()
        if s < 0.5 * duration_s:
            f.sent_at = t0 + timedelta(seconds=0.5 * duration_s)
        elif 0.6 * duration_s <= s < 0.9 * duration_s:
            f.sent_at = t0 + timedelta(seconds=0.9 * duration_s)
    return fixes


def _n_intersections(leg: LineString, line: LineString) -> int:
    inter = leg.intersection(line)
    if inter.is_empty:
        return 0
    return len(getattr(inter, "geoms", [inter]))


def _sample(pts, waits, speed, interval, rng):
    """Times (s from start) and noise-free positions along waypoints, waiting ``waits[i]`` at each."""
    timeline = []  # (t, point)
    t = 0.0
    for i, p in enumerate(pts):
        timeline.append((t, p))
        if waits[i]:
            t += waits[i]
            timeline.append((t, p))
        if i + 1 < len(pts):
            q = pts[i + 1]
            kx, ky = to_xy(p[0], p[1])
            d = math.hypot((q[0] - p[0]) / kx, (q[1] - p[1]) / ky)
            t += d / speed
    end = timeline[-1][0]
    times, positions = [], []
    s = 0.0
    while s <= end:
        positions.append(_at(timeline, s))
        times.append(s)
        s += interval * rng.uniform(0.7, 1.0)
    times.append(end)
    positions.append(timeline[-1][1])
    return times, positions


def _at(timeline, s):
    for (t1, p1), (t2, p2) in zip(timeline, timeline[1:]):
        if t1 <= s <= t2:
            f = 0 if t2 == t1 else (s - t1) / (t2 - t1)
            return p1[0] + f * (p2[0] - p1[0]), p1[1] + f * (p2[1] - p1[1])
    return timeline[-1][1]


# -- sea ----------------------------------------------------------------------------------------


def _patrol(center, speed, start_s, end_s, interval, rng, heading=None, radius=3000.0, skip=None):
    """Back and forth along a line through ``center`` (at most ``radius`` from it); fixes every ``interval``."""
    heading = rng.uniform(0, math.pi) if heading is None else heading
    kx, ky = to_xy(*center)
    out = []
    s = start_s
    period = 4 * radius / max(speed, 0.01)
    phase = rng.uniform(0, period)
    while s <= end_s:
        if not (skip and skip[0] <= s < skip[1]):
            u = ((s + phase) % period) / period  # 0..1 -> triangle wave -radius..radius
            along = radius * (4 * u - 1 if u < 0.5 else 3 - 4 * u)
            out.append((s, (center[0] + along * math.cos(heading) * kx, center[1] + along * math.sin(heading) * ky)))
        s += interval * rng.uniform(0.8, 1.0)
    return out


def sea_scenarios(
    geo, engine, rng: random.Random, t0: datetime, duration_s: float, counts: dict, truth: Truth
) -> list[Fix]:
    fixes: list[Fix] = []
    places = list(geo["places"])
    rng.shuffle(places)
    places = geo["spare_places"] + places  # taken from the end: the spare ones only once the others run out
    need = sum(counts.values())
    if len(places) < need:
        raise SystemExit(f"only {len(places)} places at sea for {need} scenarios: lower the counts")
    mmsi_seq = iter(range(533_100_001, 533_199_999))

    def ais(track_mmsi, samples, speed, heading=None):
        for s, p in samples:
            lon, lat = noisy(p[0], p[1], rng)
            fixes.append(
                Fix(
                    AIS_SENSOR,
                    SEA_GW,
                    "MY-MMEA",
                    t0 + timedelta(seconds=s),
                    lon,
                    lat,
                    {
                        "class": "vessel",
                        "track_id": str(track_mmsi),
                        "identifiers": {"mmsi": str(track_mmsi)},
                        "speed_mps": round(max(0.0, speed + rng.uniform(-0.2, 0.2)), 2),
                    },
                )
            )

    def radar(track, samples, identifiers=None):
        extra = {"identifiers": identifiers} if identifiers else {}
        for s, p in samples:
            lon, lat = noisy(p[0], p[1], rng)
            fixes.append(
                Fix(
                    RADAR_SENSOR,
                    SEA_GW,
                    "MY-MMEA",
                    t0 + timedelta(seconds=s),
                    lon,
                    lat,
                    {"class": "boat", "track_id": track, **extra},
                )
            )

    for _ in range(counts["transit"]):
        m = next(mmsi_seq)
        ais(m, _patrol(places.pop(), 5.0, 0, duration_s, rng.choice([30, 60]), rng), 5.0)
        for kind in ("ais_gap", "loitering"):
            truth.tracks[kind].add(f"mmsi:{m}")
    for _ in range(counts["gap"]):
        m = next(mmsi_seq)
        off = rng.uniform(0.2, 0.5) * duration_s
        silence = rng.uniform(35, 60) * 60
        ais(m, _patrol(places.pop(), 4.0, 0, duration_s, 30, rng, skip=(off, off + silence)), 4.0)
        truth.gaps[f"mmsi:{m}"] += 1
        truth.tracks["ais_gap"].add(f"mmsi:{m}")
    for i in range(counts["dark"]):
        track = f"dark-{i}"
        radar(
            track,
            _patrol(
                places.pop(),
                6.0,
                rng.uniform(0, 0.3) * duration_s,
                duration_s * rng.uniform(0.6, 1.0),
                rng.choice([20, 60]),
                rng,
            ),
        )
        truth.dark[f"{RADAR_SENSOR}:{track}"] += 1
        truth.tracks["dark_vessel"].add(f"{RADAR_SENSOR}:{track}")
    for i in range(counts["radar_ais"]):
        m = next(mmsi_seq)
        center, heading = places.pop(), rng.uniform(0, math.pi)
        seed = rng.random()
        samples = _patrol(center, 5.0, 0, duration_s, 30, random.Random(seed), heading=heading)
        ais(m, samples, 5.0)
        # the radar sees the same vessel (its own timing, its own noise)
        radar(
            f"seen-{i}",
            [(s + 5, p) for s, p in _patrol(center, 5.0, 0, duration_s, 30, random.Random(seed), heading=heading)][::2],
        )
        truth.tracks["dark_vessel"].add(f"{RADAR_SENSOR}:seen-{i}")
    for i in range(counts["rendezvous"] + counts["passing"]):
        meet = i < counts["rendezvous"]
        a, b = next(mmsi_seq), next(mmsi_seq)
        center = places.pop()
        kx, ky = to_xy(*center)
        together = rng.uniform(35, 50) * 60 if meet else rng.uniform(8, 15) * 60
        start = rng.uniform(0.1, 0.4) * duration_s
        heading = rng.uniform(0, math.pi)
        track_a = _patrol(center, 3.0, 0, duration_s, 30, random.Random(i), heading=heading)
        ais(a, track_a, 3.0)
        # b keeps 4 km away, comes alongside (80-150 m) for `together`, then leaves again
        side = rng.uniform(80, 150)
        samples_b = []
        for s, p in track_a:
            if start <= s < start + together:
                off = side
            else:
                off = 4000
            samples_b.append((s + 10, (p[0] - off * math.sin(heading) * kx, p[1] + off * math.cos(heading) * ky)))
        ais(b, samples_b, 3.0)
        key = "|".join(sorted((f"mmsi:{a}", f"mmsi:{b}")))
        if meet:
            truth.rendezvous[key] += 1
        truth.tracks["rendezvous"].add(key)
    zones_at = _zones_at_fn(engine)
    for i in range(counts["loiter"] + counts["short_slow"]):
        long_stay = i < counts["loiter"]
        m = next(mmsi_seq)
        center, zone_ids = places.pop(), None
        while zone_ids is None:  # a place where every zone holds the drift area whole, or not at all
            zone_ids = zones_at(center)
            if zone_ids is None:
                center = places.pop()
        stay = rng.uniform(40, 60) * 60 if long_stay else rng.uniform(10, 15) * 60
        start = rng.uniform(0.1, 0.4) * duration_s
        # under way at 5 m/s, then drifting at 0.5 m/s within 1.5 km, then under way again
        before = _patrol(center, 5.0, 0, start, 30, rng, radius=1000)
        drift = _patrol(center, 0.5, start + 30, start + stay, 60, rng, radius=700)
        after = _patrol(center, 5.0, start + stay + 30, duration_s, 30, rng, radius=1000)
        ais(m, before, 5.0)
        ais(m, drift, 0.5)
        ais(m, after, 5.0)
        for zone_id in zone_ids:
            key = f"mmsi:{m}|{zone_id}"
            truth.tracks["loitering"].add(key)
            if long_stay:
                truth.loitering[key] += 1
    # Radar contacts whose gateway attached an MMSI: a claim no AIS transmission backs is still dark; the
    # radar track of a vessel that AIS hears, carrying its MMSI, is not.
    for i in range(counts.get("dark_claimed", 0)):
        key = f"mmsi:{next(mmsi_seq)}"
        radar(
            f"claim-{i}",
            _patrol(
                places.pop(),
                6.0,
                rng.uniform(0, 0.3) * duration_s,
                duration_s * rng.uniform(0.6, 1.0),
                rng.choice([20, 60]),
                rng,
            ),
            identifiers={"mmsi": key.split(":")[1]},
        )
        truth.dark[key] += 1
        truth.tracks["dark_vessel"].add(key)
        truth.group[key] = "sea-ids"
    for i in range(counts.get("radar_ais_ids", 0)):
        m = next(mmsi_seq)
        center, heading = places.pop(), rng.uniform(0, math.pi)
        seed = rng.random()
        ais(m, _patrol(center, 5.0, 0, duration_s, 30, random.Random(seed), heading=heading), 5.0)
        radar(
            f"seen-id-{i}",
            [(s + 5, p) for s, p in _patrol(center, 5.0, 0, duration_s, 30, random.Random(seed), heading=heading)][::2],
            identifiers={"mmsi": str(m)},
        )
        truth.tracks["dark_vessel"].add(f"mmsi:{m}")
        truth.group[f"mmsi:{m}"] = "sea-ids"
    return fixes


def _zones_at_fn(engine):
    def zones_at(p) -> list[int] | None:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "WITH area AS (SELECT ST_Buffer(ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography, 1500)::geometry AS g) "
                    "SELECT z.id, ST_Contains(z.geom, area.g) FROM zones z, area WHERE z.kind <> 'port' "
                    "AND ('MY-MMEA' = z.owner_agency OR 'MY-MMEA' = ANY (z.member_agencies)) AND ST_Intersects(z.geom, area.g)"
                ),
                {"x": p[0], "y": p[1]},
            ).all()
        if not all(whole for _, whole in rows):
            return None
        return [z for z, _ in rows]

    return zones_at


# -- running and scoring ------------------------------------------------------------------------


def run_worker(settings, root: str, cid: str, hysteresis_m: float | None, dwell_s: int):
    env = {
        **os.environ,
        "BW_MQTT_TOPIC_ROOT": root,
        "BW_INGEST_SHARE_GROUP": cid,
        "BW_INGEST_CLIENT_ID": cid,
        "BW_ANALYTICS_SWEEP_S": "1",
    }
    if hysteresis_m is not None:
        env["BW_CROSSING_HYSTERESIS_M"] = str(hysteresis_m)
    env["BW_ZONE_DWELL_S"] = str(dwell_s)
    log_path = REPO_ROOT / ".run" / f"{cid}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "cli", "ingest"], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while b"connected to" not in log_path.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"ingest worker did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, log_path


def publish(settings, root: str, fixes: list[Fix], progress: Progress, password: str) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, port, _, _ = settings.mqtt_parts()
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"eval-pub-{uuid.uuid4().hex[:6]}",
        protocol=mqtt.MQTTv5,
    )
    client.username_pw_set(LAND_GW, password)
    client.max_inflight_messages_set(200)
    client.connect(host, port)
    client.loop_start()
    task = progress.add_task("publishing", total=len(fixes))
    infos = []
    for i, f in enumerate(fixes):
        body = {
            "event_id": f"e{i}",
            "sensor_id": f.sensor,
            "observed_at": f.at.isoformat(),
            "lon": round(f.lon, 7),
            "lat": round(f.lat, 7),
            "confidence": 0.9,
            **f.body,
        }
        infos.append(
            client.publish(topics.detections(root, f.agency, f.topic_gateway, f.sensor), orjson.dumps(body), qos=1)
        )
        if len(infos) >= 500:
            for info in infos:
                info.wait_for_publish(60)
            progress.advance(task, len(infos))
            infos = []
    for info in infos:
        info.wait_for_publish(60)
    progress.advance(task, len(infos))
    client.loop_stop()
    client.disconnect()


def score(engine, truth: Truth) -> dict:
    """Figures per alert kind over every scenario (``all``) and per scenario group."""
    with engine.connect() as conn:
        rows = (
            conn.execute(
                text(
                    "SELECT kind, track_key, from_state, to_state, zone_id, details FROM alerts "
                    "WHERE sensor_id = ANY(:sensors) ORDER BY observed_at, id"
                ),
                {"sensors": list(SENSORS)},
            )
            .mappings()
            .all()
        )
    got: dict[str, Counter] = defaultdict(Counter)
    crossing_alerts: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        track = (r["track_key"] or "").split(":", 1)[-1] if r["kind"] in ("crossing", "zone_entry") else r["track_key"]
        if r["kind"] == "crossing":
            crossing_alerts[track].append(f"{r['from_state']}>{r['to_state']}")
        elif r["kind"] == "zone_entry":
            got["zone_entry"][track] += 1
        elif r["kind"] == "rendezvous":
            got["rendezvous"]["|".join(sorted((r["details"]["track_a"], r["details"]["track_b"])))] += 1
        elif r["kind"] == "loitering":
            got["loitering"][f"{r['track_key']}|{r['zone_id']}"] += 1
        elif r["kind"] in ("dark_vessel", "ais_gap"):
            got[r["kind"]][r["track_key"]] += 1

    def group_of(key: str) -> str:
        return truth.group.get(key) or truth.group.get(key.split("|")[0]) or "other"

    results = {"all": _score(truth, crossing_alerts, got, lambda key: True)}
    for group in sorted(
        set(GROUPS) | {group_of(k) for kind in got.values() for k in kind} | {group_of(k) for k in crossing_alerts}
    ):
        results[group] = _score(truth, crossing_alerts, got, lambda key, g=group: group_of(key) == g)
    return results


def _score(truth: Truth, crossing_alerts: dict[str, list[str]], got: dict[str, Counter], keep) -> dict:
    results = {}
    # crossings: matched by direction per track; a reversed direction is a wrong-direction crossing
    tp = fp = dup = wrong = 0
    expected = sum(len(v) for k, v in truth.crossings.items() if keep(k))
    for track in {k for k in set(truth.crossings) | set(crossing_alerts) if keep(k)}:
        want, have = Counter(truth.crossings.get(track, [])), Counter(crossing_alerts.get(track, []))
        for d, n in have.items():
            hit = min(n, want.get(d, 0))
            tp += hit
            extra = n - hit
            if extra and want.get(d, 0):
                dup += extra
            elif extra:
                a, b = d.split(">")
                if want.get(f"{b}>{a}", 0) > have.get(f"{b}>{a}", 0):
                    wrong += extra
                else:
                    fp += extra
    results["crossing"] = _figures(expected, sum(len(v) for k, v in crossing_alerts.items() if keep(k)), tp, dup, wrong)
    results["crossing"]["objects"] = len([k for k in truth.tracks["crossing"] if keep(k)])
    for kind, want in (
        ("zone_entry", truth.entries),
        ("dark_vessel", truth.dark),
        ("ais_gap", truth.gaps),
        ("rendezvous", truth.rendezvous),
        ("loitering", truth.loitering),
    ):
        have = {k: n for k, n in got[kind].items() if keep(k)}
        tp = sum(min(n, want.get(k, 0)) for k, n in have.items())
        dup = sum(n - min(n, want.get(k, 0)) for k, n in have.items() if want.get(k, 0))
        results[kind] = _figures(sum(n for k, n in want.items() if keep(k)), sum(have.values()), tp, dup, 0)
        results[kind]["objects"] = len([k for k in truth.tracks.get(kind, ()) if keep(k)])
    return results


def _figures(expected: int, alerts: int, tp: int, duplicates: int, wrong: int) -> dict:
    return {
        "expected": expected,
        "alerts": alerts,
        "true_positives": tp,
        "precision": round(tp / alerts, 4) if alerts else 1.0,
        "recall": round(tp / expected, 4) if expected else 1.0,
        "false_alert_rate": round((alerts - tp) / alerts, 4) if alerts else 0.0,
        "wrong_direction": wrong,
        "duplicates": duplicates,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=20261122, help="random seed of the scenarios")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every scenario count")
    parser.add_argument("--hours", type=float, default=3.0, help="scenario time span")
    parser.add_argument(
        "--hysteresis-m",
        type=float,
        default=None,
        help="crossing hysteresis of the worker (default: BW_CROSSING_HYSTERESIS_M); 0 turns it off",
    )
    parser.add_argument("--dwell-s", type=int, default=0, help="dwell time for zone entries (BW_ZONE_DWELL_S)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    settings = get_settings()
    migrate_database(settings.owner_url())
    engine = make_engine(settings.owner_url())  # resets and reads as the owner; the services run as their roles
    geo = prepare(settings, engine)
    n = lambda k: max(1, round(k * args.scale))  # noqa: E731
    land_counts = {"cross": n(60), "there_and_back": n(20), "along": n(25), "turn_back": n(25)}
    sea_counts = {
        "transit": n(8),
        "gap": n(8),
        "dark": n(8),
        "radar_ais": n(6),
        "rendezvous": n(6),
        "passing": n(4),
        "loiter": n(6),
        "short_slow": n(4),
        "dark_claimed": n(6),
        "radar_ais_ids": n(4),
    }
    duration = args.hours * 3600
    t0 = datetime.now(timezone.utc) - timedelta(seconds=duration + 120)
    truth = Truth()
    fixes = land_scenarios(geo, rng, t0, duration, land_counts, truth, args.dwell_s)
    fixes += sea_scenarios(geo, engine, rng, t0, duration, sea_counts, truth)
    for kind in ("dark_vessel", "ais_gap", "rendezvous", "loitering"):
        for key in truth.tracks[kind]:
            truth.group.setdefault(key, "sea")
    fixes += multi_scenarios(geo, rng, t0, duration, n(30), truth, group="multi", dwell_s=args.dwell_s)
    fixes += bend_scenarios(geo, rng, t0, duration, n(20), truth, args.dwell_s)
    fixes += backlog(
        multi_scenarios(
            geo,
            rng,
            t0,
            duration,
            n(30),
            truth,
            group="backlog",
            sensor=BACKLOG_SENSOR,
            gateway=BACKLOG_GW,
            dwell_s=args.dwell_s,
        ),
        t0,
        duration,
    )
    # in the order the gateways send them: a backlog goes out in one upload when its link comes back
    fixes.sort(key=lambda f: (f.sent_at or f.at, f.at))
    root = f"borderwatch/eval-{uuid.uuid4().hex[:6]}"
    cid = f"eval-{uuid.uuid4().hex[:6]}"
    # A registered gateway publishes the whole stream (the service users may not write gateways' topics).
    with session_scope(engine) as s:
        password = service.rotate_gateway_credential(session=s, gateway_id=LAND_GW, actor="eval")
    with topic_root_on_broker(settings, engine, root, LAND_GW):
        proc, log_path = run_worker(settings, root, cid, args.hysteresis_m, args.dwell_s)
        try:
            with Progress(console=console) as progress:
                publish(settings, root, fixes, progress, password)
                task = progress.add_task("ingesting", total=len(fixes))
                deadline = time.monotonic() + 600
                while True:
                    with engine.connect() as conn:
                        stored = conn.execute(text("SELECT count(*) FROM detections")).scalar()
                        dead = conn.execute(text("SELECT count(*) FROM dead_letters")).scalar()
                    progress.update(task, completed=stored + dead)
                    if stored + dead >= len(fixes) or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
            time.sleep(3)  # two sweeps
        finally:
            proc.terminate()
            proc.wait(30)
    results = score(engine, truth)
    columns = (
        "objects",
        "expected",
        "alerts",
        "TP",
        "precision",
        "recall",
        "false-alert rate",
        "wrong dir.",
        "duplicates",
    )

    def row(r: dict) -> list[str]:
        return [
            str(r["objects"]),
            str(r["expected"]),
            str(r["alerts"]),
            str(r["true_positives"]),
            f"{r['precision']:.3f}",
            f"{r['recall']:.3f}",
            f"{r['false_alert_rate']:.3f}",
            str(r["wrong_direction"]),
            str(r["duplicates"]),
        ]

    table = Table(title=f"Scenario suite: {len(fixes)} detections, seed {args.seed}")
    table.add_column("alert kind")
    for col in columns:
        table.add_column(col, justify="right")
    for kind in KINDS:
        table.add_row(kind, *row(results["all"][kind]))
    Console(width=140).print(table)
    by_group = Table(title="Per scenario group")
    by_group.add_column("group")
    by_group.add_column("alert kind")
    for col in columns:
        by_group.add_column(col, justify="right")
    groups = {
        g: {k: r for k, r in kinds.items() if r["objects"] or r["expected"] or r["alerts"]}
        for g, kinds in results.items()
        if g != "all"
    }
    for group, kinds in groups.items():
        for kind, r in kinds.items():
            by_group.add_row(group, kind, *row(r))
    Console(width=160).print(by_group)
    summary = {
        "detections": len(fixes),
        "seed": args.seed,
        "hours": args.hours,
        "scale": args.scale,
        "hysteresis_m": args.hysteresis_m if args.hysteresis_m is not None else settings.crossing_hysteresis_m,
        "zone_dwell_s": args.dwell_s,
        "dead_letters": dead,
        "kinds": results["all"],
        "groups": {g: kinds for g, kinds in groups.items() if kinds},
    }
    print("EVAL " + json.dumps(summary))


if __name__ == "__main__":
    main()
