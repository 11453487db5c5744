"""Labelled scenario suite: generated tracks with known truth run through the real ingest path
(MQTT -> ingest worker process -> PostGIS) and the alerts scored against the truth.

Scenarios (positions with up to 15 m of GPS noise, fixes 10 s to 10 min apart on land):
- land tracks at the Thai-Malaysian border: crossings in both directions, there and back,
  tracks along the line that never cross, tracks that come close and turn back; truth for
  crossings and for entries into the Thai border buffer strip from the noise-free path;
- at sea (Malacca Strait, Malaysian territorial sea): AIS vessels under way, vessels that go
  silent for 35-60 minutes, boats only radar sees (dark), radar tracks of AIS vessels, pairs
  that meet for 35-50 minutes (and pairs that only pass), vessels that drift in a zone for
  40-60 minutes (and some only for 15).

Scored per alert kind: expected, alerts, true positives, precision, recall, false-alert rate,
wrong-direction crossings and duplicates. Run with ``make eval``; the last line is ``EVAL {json}``.
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

console = Console(stderr=True)
NOISE_M = 15.0
M_PER_DEG = 111_320.0
LAND_GW, SEA_GW = "eval-th-gw", "eval-my-gw"
LAND_SENSOR, AIS_SENSOR, RADAR_SENSOR = "eval-th-tracker", "eval-my-ais", "eval-my-radar"
KINDS = ("crossing", "zone_entry", "dark_vessel", "ais_gap", "rendezvous", "loitering")


@dataclass
class Fix:
    sensor: str
    topic_gateway: str
    agency: str
    at: datetime
    lon: float
    lat: float
    body: dict


@dataclass
class Truth:
    crossings: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # track -> ["TH>MY", ...]
    entries: Counter = field(default_factory=Counter)  # track -> entries into the Thai buffer
    dark: Counter = field(default_factory=Counter)  # radar track -> 1 if dark
    gaps: Counter = field(default_factory=Counter)  # vessel track -> gaps
    rendezvous: Counter = field(default_factory=Counter)  # "a|b" -> encounters
    loitering: Counter = field(default_factory=Counter)  # "track|zone" -> stays
    tracks: dict[str, set] = field(default_factory=lambda: defaultdict(set))  # kind -> every track judged


PLACE_SPACING_M = 14_000.0


def _metres(p, q) -> float:
    return math.hypot((p[0] - q[0]) * M_PER_DEG * math.cos(math.radians(p[1])), (p[1] - q[1]) * M_PER_DEG)


def to_xy(lon0: float, lat0: float):
    kx, ky = 1 / (M_PER_DEG * math.cos(math.radians(lat0))), 1 / M_PER_DEG
    return kx, ky


def noisy(lon: float, lat: float, rng: random.Random) -> tuple[float, float]:
    r, a = NOISE_M * math.sqrt(rng.random()), rng.random() * 2 * math.pi
    kx, ky = to_xy(lon, lat)
    return lon + r * math.cos(a) * kx, lat + r * math.sin(a) * ky


def prepare(settings, engine) -> dict:
    from geo import service as geo_service

    with session_scope(engine) as s:
        s.execute(text(
            "TRUNCATE detections, detection_keys, alerts, alert_cooldowns, track_positions, dead_letters, "
            "ais_fragments, ais_gaps, encounters, loiter_states, sensor_health CASCADE"))
    with session_scope(engine) as s:
        if not s.execute(text("SELECT count(*) FROM border_segments")).scalar():
            geo_service.load_shipped_borders(session=s, buffer_m=settings.border_buffer_m)
        geo_service.ensure_agencies(session=s)
        for gw, agency, sensors in ((LAND_GW, "TH-RTP", [(LAND_SENSOR, "other", 100.42, 6.55)]),
                                    (SEA_GW, "MY-MMEA", [(AIS_SENSOR, "ais_receiver", 101.78, 2.28),
                                                         (RADAR_SENSOR, "radar", 101.78, 2.28)])):
            if s.get(Gateway, gw) is None:
                service.create_gateway(session=s, gateway_in=GatewayCreate(id=gw, agency_code=agency))
                for sid, kind, lon, lat in sensors:
                    service.create_sensor(session=s, sensor_in=SensorCreate(id=sid, gateway_id=gw, kind=kind, lon=lon,
                                                                            lat=lat))
    with session_scope(engine) as s:
        access.sync_broker(session=s, settings=settings)
        geo = {}
        seg = s.execute(text(
            "SELECT id, ST_AsText(geom) FROM border_segments WHERE name = 'Thailand–Malaysia 1'")).one()
        geo["line"], geo["line_id"] = wkt.loads(seg[1]), seg[0]
        geo["segments"] = [wkt.loads(g) for (g,) in s.execute(text("SELECT ST_AsText(geom) FROM border_segments"))]
        geo["states"] = {c: wkt.loads(g) for c, g in s.execute(
            text("SELECT code, ST_AsText(geom) FROM states WHERE code IN ('TH', 'MY')"))}
        geo["th_buffer"] = wkt.loads(s.execute(text(
            "SELECT ST_AsText(geom) FROM zones WHERE name = 'Thailand–Malaysia 1 buffer TH'")).scalar())
        # Places at sea for the vessels: inside the Malaysian territorial sea of the Malacca Strait,
        # at least 6 km from the maritime boundary and 5 km inside the zone, 14 km from each other.
        points = s.execute(text(
            """
            WITH z AS (SELECT geom FROM zones WHERE name = 'Malaysia territorial sea (Malacca–Singapore Straits area)'),
            inner_z AS (SELECT ST_Buffer(geom::geography, -5000)::geometry AS g FROM z)
            SELECT ST_X(p.geom), ST_Y(p.geom)
            FROM inner_z, ST_Dump(ST_GeneratePoints(inner_z.g, 1500, 7)) p
            WHERE NOT EXISTS (SELECT 1 FROM border_segments b WHERE b.kind = 'maritime'
                              AND ST_DWithin(b.geom::geography, p.geom::geography, 6000))
            """)).all()
    places: list[tuple[float, float]] = []
    for lon, lat in points:
        if all(_metres((lon, lat), q) > PLACE_SPACING_M for q in places):
            places.append((lon, lat))
    geo["places"] = places
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


def land_scenarios(geo, rng: random.Random, t0: datetime, duration_s: float, counts: dict, truth: Truth,
                   dwell_s: float = 0.0) -> list[Fix]:
    fixes: list[Fix] = []
    plans = (["cross"] * counts["cross"] + ["there_and_back"] * counts["there_and_back"]
             + ["along"] * counts["along"] + ["turn_back"] * counts["turn_back"])
    made = 0
    for plan in plans:
        for _attempt in range(50):
            frac = rng.uniform(0.1, 0.9)
            point = _frame(geo["line"], frac)
            side = rng.choice([-1, 1])
            a0 = rng.uniform(-300, 300)
            if plan == "cross":
                way = [(a0, side * rng.uniform(400, 2000)), (a0 + rng.uniform(-300, 300), -side * rng.uniform(400, 2000))]
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
                way = [(a0, side * rng.uniform(400, 1500)), (a0 + 100, side * rng.uniform(5, 30)),
                       (a0 + 200, side * rng.uniform(400, 1500))]
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
            n_inter = sum(_n_intersections(LineString(pts[i:i + 2]), geo["line"]) for i in range(len(pts) - 1))
            if plan in ("cross", "there_and_back") and n_inter != crossings_expected:
                continue
            if plan in ("along", "turn_back") and (n_inter or len(set(states)) != 1):
                continue
            break
        else:
            continue
        made += 1
        track = f"{plan}-{made}"
        speed = rng.choice([1.4, 1.4, 5.0, 10.0])  # on foot, by motorbike, by car
        kind = "person" if speed < 2 else "vehicle"
        interval = rng.choice([10, 30, 60, 120, 300, 600])
        start = t0 + timedelta(seconds=rng.uniform(0, duration_s * 0.3))
        truth.tracks["crossing"].add(track)
        truth.tracks["zone_entry"].add(track)
        # sample the noise-free path every `interval` seconds (with jitter)
        times, positions = _sample(pts, waits, speed, interval, rng)
        prev_state, runs = None, []  # runs: [first, last] times inside the Thai buffer
        for dt, p in zip(times, positions):
            st_now = _state(p, geo["states"])
            inside = geo["th_buffer"].contains(Point(p))
            if prev_state and st_now and st_now != prev_state:
                truth.crossings[track].append(f"{prev_state}>{st_now}")
            if inside:
                if runs and runs[-1][2]:
                    runs[-1][1] = dt
                else:
                    runs.append([dt, dt, True])
            elif runs:
                runs[-1][2] = False
            prev_state = st_now or prev_state
            lon, lat = noisy(p[0], p[1], rng)
            at = start + timedelta(seconds=dt)
            fixes.append(Fix(LAND_SENSOR, LAND_GW, "TH-RTP", at, lon, lat, {
                "class": kind, "track_id": track}))
        # an entry counts once the object has been inside for the dwell time
        truth.entries[track] += sum(1 for first, last, _ in runs if last - first >= dwell_s)
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


def sea_scenarios(geo, engine, rng: random.Random, t0: datetime, duration_s: float, counts: dict,
                  truth: Truth) -> list[Fix]:
    fixes: list[Fix] = []
    places = list(geo["places"])
    rng.shuffle(places)
    need = sum(counts.values())
    if len(places) < need:
        raise SystemExit(f"only {len(places)} places at sea for {need} scenarios: lower the counts")
    mmsi_seq = iter(range(533_100_001, 533_199_999))

    def ais(track_mmsi, samples, speed, heading=None):
        for s, p in samples:
            lon, lat = noisy(p[0], p[1], rng)
            fixes.append(Fix(AIS_SENSOR, SEA_GW, "MY-MMEA", t0 + timedelta(seconds=s), lon, lat, {
                "class": "vessel", "track_id": str(track_mmsi), "identifiers": {"mmsi": str(track_mmsi)},
                "speed_mps": round(max(0.0, speed + rng.uniform(-0.2, 0.2)), 2)}))

    def radar(track, samples):
        for s, p in samples:
            lon, lat = noisy(p[0], p[1], rng)
            fixes.append(Fix(RADAR_SENSOR, SEA_GW, "MY-MMEA", t0 + timedelta(seconds=s), lon, lat,
                             {"class": "boat", "track_id": track}))

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
        radar(track, _patrol(places.pop(), 6.0, rng.uniform(0, 0.3) * duration_s, duration_s * rng.uniform(0.6, 1.0),
                             rng.choice([20, 60]), rng))
        truth.dark[f"{RADAR_SENSOR}:{track}"] += 1
        truth.tracks["dark_vessel"].add(f"{RADAR_SENSOR}:{track}")
    for i in range(counts["radar_ais"]):
        m = next(mmsi_seq)
        center, heading = places.pop(), rng.uniform(0, math.pi)
        seed = rng.random()
        samples = _patrol(center, 5.0, 0, duration_s, 30, random.Random(seed), heading=heading)
        ais(m, samples, 5.0)
        # the radar sees the same vessel (its own timing, its own noise)
        radar(f"seen-{i}", [(s + 5, p) for s, p in _patrol(center, 5.0, 0, duration_s, 30, random.Random(seed),
                                                             heading=heading)][::2])
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
    return fixes


def _zones_at_fn(engine):
    def zones_at(p) -> list[int] | None:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "WITH area AS (SELECT ST_Buffer(ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography, 1500)::geometry AS g) "
                "SELECT z.id, ST_Contains(z.geom, area.g) FROM zones z, area WHERE z.kind <> 'port' "
                "AND ('MY-MMEA' = z.owner_agency OR 'MY-MMEA' = ANY (z.member_agencies)) AND ST_Intersects(z.geom, area.g)"),
                {"x": p[0], "y": p[1]}).all()
        if not all(whole for _, whole in rows):
            return None
        return [z for z, _ in rows]
    return zones_at


# -- running and scoring ------------------------------------------------------------------------

def run_worker(settings, root: str, cid: str, hysteresis_m: float | None, dwell_s: int):
    env = {**os.environ, "BW_MQTT_TOPIC_ROOT": root, "BW_INGEST_SHARE_GROUP": cid, "BW_INGEST_CLIENT_ID": cid,
           "BW_ANALYTICS_SWEEP_S": "1"}
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


def publish(settings, root: str, fixes: list[Fix], progress: Progress) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, port, user, password = settings.mqtt_parts(settings.mqtt_api_url)
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"eval-pub-{uuid.uuid4().hex[:6]}",
                         protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    client.max_inflight_messages_set(200)
    client.connect(host, port)
    client.loop_start()
    task = progress.add_task("publishing", total=len(fixes))
    infos = []
    for i, f in enumerate(fixes):
        body = {"event_id": f"e{i}", "sensor_id": f.sensor, "observed_at": f.at.isoformat(), "lon": round(f.lon, 7),
                "lat": round(f.lat, 7), "confidence": 0.9, **f.body}
        infos.append(client.publish(topics.detections(root, f.agency, f.topic_gateway, f.sensor), orjson.dumps(body),
                                    qos=1))
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
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT kind, track_key, from_state, to_state, zone_id, details FROM alerts "
            "WHERE sensor_id IN (:a, :b, :c) ORDER BY observed_at, id"),
            {"a": LAND_SENSOR, "b": AIS_SENSOR, "c": RADAR_SENSOR}).mappings().all()
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
    results = {}
    # crossings: matched by direction per track; a reversed direction is a wrong-direction crossing
    tp = fp = dup = wrong = 0
    expected = sum(len(v) for v in truth.crossings.values())
    for track in set(truth.crossings) | set(crossing_alerts):
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
    results["crossing"] = _figures(expected, sum(len(v) for v in crossing_alerts.values()), tp, dup, wrong)
    for kind, want in (("zone_entry", truth.entries), ("dark_vessel", truth.dark), ("ais_gap", truth.gaps),
                       ("rendezvous", truth.rendezvous), ("loitering", truth.loitering)):
        have = got[kind]
        tp = sum(min(n, want.get(k, 0)) for k, n in have.items())
        dup = sum(n - min(n, want.get(k, 0)) for k, n in have.items() if want.get(k, 0))
        results[kind] = _figures(sum(want.values()), sum(have.values()), tp, dup, 0)
        results[kind]["objects"] = len(truth.tracks.get(kind, ()))
    results["crossing"]["objects"] = len(truth.tracks["crossing"])
    return results


def _figures(expected: int, alerts: int, tp: int, duplicates: int, wrong: int) -> dict:
    return {
        "expected": expected, "alerts": alerts, "true_positives": tp,
        "precision": round(tp / alerts, 4) if alerts else 1.0,
        "recall": round(tp / expected, 4) if expected else 1.0,
        "false_alert_rate": round((alerts - tp) / alerts, 4) if alerts else 0.0,
        "wrong_direction": wrong, "duplicates": duplicates,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=20261122, help="random seed of the scenarios")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every scenario count")
    parser.add_argument("--hours", type=float, default=3.0, help="scenario time span")
    parser.add_argument("--hysteresis-m", type=float, default=None,
                        help="crossing hysteresis of the worker (default: BW_CROSSING_HYSTERESIS_M); 0 turns it off")
    parser.add_argument("--dwell-s", type=int, default=0, help="dwell time for zone entries (BW_ZONE_DWELL_S)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    settings = get_settings()
    migrate_database(settings.database_url)
    engine = make_engine(settings.database_url)
    geo = prepare(settings, engine)
    n = lambda k: max(1, round(k * args.scale))  # noqa: E731
    land_counts = {"cross": n(60), "there_and_back": n(20), "along": n(25), "turn_back": n(25)}
    sea_counts = {"transit": n(8), "gap": n(8), "dark": n(8), "radar_ais": n(6), "rendezvous": n(6), "passing": n(4),
                  "loiter": n(6), "short_slow": n(4)}
    duration = args.hours * 3600
    t0 = datetime.now(timezone.utc) - timedelta(seconds=duration + 120)
    truth = Truth()
    fixes = land_scenarios(geo, rng, t0, duration, land_counts, truth, args.dwell_s)
    fixes += sea_scenarios(geo, engine, rng, t0, duration, sea_counts, truth)
    fixes.sort(key=lambda f: f.at)
    root = f"borderwatch/eval-{uuid.uuid4().hex[:6]}"
    cid = f"eval-{uuid.uuid4().hex[:6]}"
    proc, log_path = run_worker(settings, root, cid, args.hysteresis_m, args.dwell_s)
    try:
        with Progress(console=console) as progress:
            publish(settings, root, fixes, progress)
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
    table = Table(title=f"Scenario suite: {len(fixes)} detections, seed {args.seed}")
    for col in ("alert kind", "objects", "expected", "alerts", "TP", "precision", "recall", "false-alert rate",
                "wrong dir.", "duplicates"):
        table.add_column(col, justify="right" if col != "alert kind" else "left")
    for kind in KINDS:
        r = results[kind]
        table.add_row(kind, str(r["objects"]), str(r["expected"]), str(r["alerts"]), str(r["true_positives"]),
                      f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['false_alert_rate']:.3f}",
                      str(r["wrong_direction"]), str(r["duplicates"]))
    Console(width=140).print(table)
    summary = {"detections": len(fixes), "seed": args.seed, "hours": args.hours, "scale": args.scale,
               "hysteresis_m": args.hysteresis_m if args.hysteresis_m is not None else settings.crossing_hysteresis_m,
               "zone_dwell_s": args.dwell_s, "dead_letters": dead, "kinds": results}
    print("EVAL " + json.dumps(summary))


if __name__ == "__main__":
    main()
