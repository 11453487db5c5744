"""A gateway simulator: publishes detections over MQTT as the demo gateways would.

People and vehicles approach the Thai-Malaysian border near the cameras and ground sensors,
some cross; boats and AIS-reporting vessels move across the maritime boundaries in the
Malacca Strait. Fixes carry a little GPS noise. Each gateway keeps a retained status topic
with a last will of ``offline``.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from shapely.geometry import LineString, Point, shape

from core import topics
from geo.service import DATA_DIR

_CLASSES = {
    "camera": ["person", "person", "vehicle"],
    "ground_sensor": ["person"],
    "anpr": ["vehicle"],
    "radar": ["boat"],
    "ais_receiver": ["vessel"],
    "other": ["unknown"],
}
_STEP_M = {"person": 120.0, "vehicle": 300.0, "boat": 600.0, "vessel": 900.0, "unknown": 100.0}


def _metres_to_degrees(lat: float) -> tuple[float, float]:
    return 1 / (111_320 * math.cos(math.radians(lat))), 1 / 110_540


@dataclass
class SimTrack:
    gateway: str
    agency: str
    sensor: str
    object_class: str
    points: list[tuple[float, float]]
    track_id: str
    identifiers: dict = field(default_factory=dict)
    index: int = 0

    def done(self) -> bool:
        return self.index >= len(self.points)


def load_boundaries() -> dict[str, list[LineString]]:
    lines: dict[str, list[LineString]] = {"land": [], "maritime": []}
    for name in ("land_boundaries.geojson", "maritime_boundaries.geojson"):
        path = DATA_DIR / name
        if path.exists():
            for feature in json.loads(path.read_text())["features"]:
                lines[feature["properties"]["kind"]].append(shape(feature["geometry"]))
    return lines


def plan_track(
    line: LineString | None, origin: tuple[float, float], range_m: float, step_m: float, cross: bool, rng: random.Random
) -> list[tuple[float, float]]:
    """Fixes along a path perpendicular to the nearest boundary: across it, or up to it and back;
    only the fixes within the sensor's range (the ingest refuses the others as ``outside_coverage``).
    When too few are, a path through the sensor's own field of view instead."""
    reach = range_m * 0.9
    points = [p for p in _path(line, origin, range_m, step_m, cross, rng) if _distance_m(origin, p) <= reach]
    if len(points) >= 3:
        return points
    step = min(step_m, reach / 4)
    return [p for p in _path(None, origin, reach * 0.8, step, cross, rng) if _distance_m(origin, p) <= reach]


def _distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    kx, ky = _metres_to_degrees(a[1])
    return math.hypot((b[0] - a[0]) / kx, (b[1] - a[1]) / ky)


def _path(
    line: LineString | None, origin: tuple[float, float], range_m: float, step_m: float, cross: bool, rng: random.Random
) -> list[tuple[float, float]]:
    lon0, lat0 = origin
    kx, ky = _metres_to_degrees(lat0)
    if line is not None and line.distance(Point(origin)) * 111_000 < range_m * 2:
        at = line.project(Point(origin)) + rng.uniform(-0.01, 0.01)
        at = min(max(at, 0.001), line.length - 0.001)
        p, q = line.interpolate(at - 0.0005), line.interpolate(at + 0.0005)
        centre = line.interpolate(at)
        tx, ty = (q.x - p.x) / kx, (q.y - p.y) / ky
        norm = math.hypot(tx, ty) or 1.0
        nx, ny = -ty / norm, tx / norm
        cx, cy = centre.x, centre.y
    else:
        angle = rng.uniform(0, 2 * math.pi)
        nx, ny = math.cos(angle), math.sin(angle)
        cx, cy = lon0, lat0
    side = rng.choice((-1, 1))
    half = max(step_m * 6, min(range_m, 4000.0)) if line is not None else range_m
    start = -half * side
    # Not crossing: up to 150 m from the boundary (or, with none, to near the sensor) and back.
    end = half * side if cross else (-150.0 if line is not None else -0.2 * half) * side
    steps = max(3, int(abs(end - start) / step_m))
    points = []
    for i in range(steps + 1):
        d = start + (end - start) * i / steps
        noise = rng.gauss(0, 10), rng.gauss(0, 10)
        points.append((round(cx + (nx * d + noise[0]) * kx, 6), round(cy + (ny * d + noise[1]) * ky, 6)))
    if not cross:
        points += list(reversed(points[:-1]))[: steps // 2]
    return points


class Simulator:
    def __init__(
        self,
        *,
        gateways: list[dict],
        mqtt_host: str,
        mqtt_port: int,
        topic_root: str,
        crossing_share: float = 0.3,
        seed: int | None = None,
    ) -> None:
        self.gateways = gateways
        self.root = topic_root
        self.rng = random.Random(seed)
        self.crossing_share = crossing_share
        self.boundaries = load_boundaries()
        self.sensors = [(gw, s) for gw in gateways for s in gw["sensors"]]
        self.clients: dict[str, mqtt.Client] = {}
        self.sent = 0
        self._ids = itertools.count(1)
        for gw in gateways:
            client = mqtt.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=f"sim-{gw['id']}",
                protocol=mqtt.MQTTv5,
            )
            client.username_pw_set(gw["id"], gw["password"])
            client.max_inflight_messages_set(0)
            status = topics.gateway_status(topic_root, gw["agency"], gw["id"])
            client.will_set(status, b'{"status":"offline"}', qos=1, retain=True)
            client.connect(mqtt_host, mqtt_port, keepalive=30)
            client.loop_start()
            client.publish(status, b'{"status":"online"}', qos=1, retain=True)
            self.clients[gw["id"]] = client

    def _nearest(self, kind: str, point: Point) -> LineString | None:
        lines = self.boundaries["maritime" if kind in ("radar", "ais_receiver") else "land"]
        return min(lines, key=point.distance) if lines else None

    def new_track(self) -> SimTrack:
        gw, sensor = self.rng.choice(self.sensors)
        cls = self.rng.choice(_CLASSES.get(sensor["kind"], ["unknown"]))
        origin = (sensor["lon"], sensor["lat"])
        line = self._nearest(sensor["kind"], Point(origin))
        cross = self.rng.random() < self.crossing_share
        points = plan_track(line, origin, sensor.get("range_m", 3000), _STEP_M[cls], cross, self.rng)
        n = next(self._ids)
        identifiers = {}
        if cls == "vessel":
            identifiers["mmsi"] = str(533_000_000 + self.rng.randrange(1_000_000))
        elif sensor["kind"] == "anpr":
            identifiers["plate"] = (
                f"{self.rng.choice('ABCDEFGHJK')}{self.rng.choice('ABCDEFGHJK')} {self.rng.randrange(1000, 9999)}"
            )
        return SimTrack(gw["id"], gw["agency"], sensor["id"], cls, points, f"t{n}", identifiers)

    def payload(self, track: SimTrack) -> bytes:
        lon, lat = track.points[track.index]
        body = {
            "event_id": uuid.uuid4().hex,
            "sensor_id": track.sensor,
            "observed_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "lon": lon,
            "lat": lat,
            "class": track.object_class,
            "confidence": round(self.rng.uniform(0.55, 0.99), 2),
            "track_id": track.track_id,
        }
        if track.identifiers:
            body["identifiers"] = track.identifiers
        return orjson.dumps(body)

    def run(
        self, *, rate: float, duration: float, tracks: int | None = None, on_tick: Callable[[int], None] | None = None
    ) -> int:
        """Publish at ``rate`` messages/s for ``duration`` s (0 = until interrupted)."""
        active = [self.new_track() for _ in range(tracks or max(4, int(rate * 2)))]
        started = time.monotonic()
        tick = 0.05
        next_tick = started
        cursor = 0
        while duration <= 0 or time.monotonic() - started < duration:
            due = int((time.monotonic() - started) * rate) - self.sent
            for _ in range(max(0, due)):
                track = active[cursor % len(active)]
                cursor += 1
                topic = topics.detections(self.root, track.agency, track.gateway, track.sensor)
                self.clients[track.gateway].publish(topic, self.payload(track), qos=1)
                track.index += 1
                self.sent += 1
                if track.done():
                    active[(cursor - 1) % len(active)] = self.new_track()
            if on_tick:
                on_tick(self.sent)
            next_tick += tick
            time.sleep(max(0.0, next_tick - time.monotonic()))
        return self.sent

    def close(self) -> None:
        for gw in self.gateways:
            client = self.clients[gw["id"]]
            info = client.publish(
                topics.gateway_status(self.root, gw["agency"], gw["id"]), b'{"status":"offline"}', qos=1, retain=True
            )
            info.wait_for_publish(5)
            client.disconnect()
            client.loop_stop()


def load_gateways(path: Path) -> list[dict]:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `borderwatch seed-demo` first")
    return json.loads(path.read_text())["gateways"]


__all__ = ["Simulator", "load_gateways", "plan_track"]
