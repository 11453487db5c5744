"""What the fault tests share: a throw-away PostgreSQL + Mosquitto instance of their own (its own
BW_RUN_DIR, so restarting it cannot disturb the instance the rest of the suite uses), a stream of
real tracks with border crossings, a QoS 1 publisher that survives broker restarts, and the
checks that every message is stored once and every expected alert exists once."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from cli import local as services
from core import topics
from core.settings import Settings
from tests.conftest import IngestProcess, wait_for_broker_login

# Either side of the Thai-Malaysian land border near Sadao; crossing tracks run north -> south.
NORTH, SOUTH = 6.5600, 6.4900
FIXES_PER_TRACK = 10
SENSORS_PER_GATEWAY = 20
_SERVICE_ENV = (
    "BW_DATABASE_URL",
    "BW_OWNER_DATABASE_URL",
    "BW_INGEST_DATABASE_URL",
    "BW_TEST_DATABASE_URL",
    "BW_MQTT_URL",
    "BW_MQTT_API_URL",
    "BW_MOSQUITTO_DIR",
)

# The streams' tracks run over about 8 km around the cameras: a range that takes them all in.
STREAM_RANGE_M = 20_000.0


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def _read_env(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key] = value
    return out


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} did not exit within {timeout} s")


@dataclass
class Gateway:
    id: str
    agency: str
    password: str
    sensors: list[str]


@dataclass
class Instance:
    """A PostgreSQL + Mosquitto pair under its own run dir, migrated, with the shipped borders."""

    run_dir: Path
    settings: Settings
    engine: Engine
    base_dir: Path | None = None
    events: list[str] = field(default_factory=list)

    def register_gateway(self, name: str, sensors: int = SENSORS_PER_GATEWAY) -> Gateway:
        from broker import service as access
        from core.db import session_scope
        from sensors import service
        from sensors.schemas import GatewayCreate, SensorCreate

        gateway_id = f"{name}-{uuid.uuid4().hex[:6]}"
        sensor_ids = [f"{gateway_id}-cam-{i:02d}" for i in range(sensors)]
        with session_scope(self.engine) as s:
            _, password = service.create_gateway(
                session=s, gateway_in=GatewayCreate(id=gateway_id, agency_code="TH-RTP")
            )
            for i, sensor in enumerate(sensor_ids):
                service.create_sensor(
                    session=s,
                    sensor_in=SensorCreate(
                        id=sensor,
                        gateway_id=gateway_id,
                        kind="camera",
                        lon=100.40 + i * 0.002,
                        lat=6.53,
                        coverage_radius_m=STREAM_RANGE_M,
                    ),
                )
        with session_scope(self.engine) as s:
            access.sync_broker(session=s, settings=self.settings)
        wait_for_broker_login(self.settings, gateway_id, password)
        return Gateway(gateway_id, "TH-RTP", password, sensor_ids)

    def restart_broker(self) -> None:
        """A clean restart: SIGTERM makes Mosquitto write its persistence file, `up` starts it again."""
        pid = services.status()["mosquitto"]["pid"]
        os.kill(pid, signal.SIGTERM)
        _wait_gone(pid, 30)
        services.up(console=quiet())
        self.events.append(f"Mosquitto restarted (pid {pid} -> {services.status()['mosquitto']['pid']})")

    def restart_database(self) -> None:
        """SIGINT is PostgreSQL's fast shutdown: open transactions are rolled back, connections cut."""
        pid = services.status()["postgres"]["pid"]
        os.kill(pid, signal.SIGINT)
        _wait_gone(pid, 30)
        services.up(console=quiet())
        self.events.append(f"PostgreSQL restarted (pid {pid} -> {services.status()['postgres']['pid']})")


def start_instance(tmp_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Instance:
    """Start, migrate and load borders into a throw-away instance; ``stop_instance`` removes it."""
    from cli.schema import migrate_database
    from core.db import make_engine, session_scope
    from geo import service as geo_service

    monkeypatch.setenv("BW_RUN_DIR", str(tmp_dir))
    for key in _SERVICE_ENV:
        monkeypatch.delenv(key, raising=False)
    info = services.up(console=quiet())
    env = _read_env(tmp_dir / "services.env")
    settings = Settings(
        database_url=env["BW_DATABASE_URL"],
        owner_database_url=env.get("BW_OWNER_DATABASE_URL"),
        ingest_database_url=env.get("BW_INGEST_DATABASE_URL"),
        mqtt_url=env["BW_MQTT_URL"],
        mqtt_api_url=env["BW_MQTT_API_URL"],
        mosquitto_dir=env["BW_MOSQUITTO_DIR"],
        jwt_secret=os.environ.get("BW_JWT_SECRET", "x" * 48),
    )
    # The instance's workers connect as its runtime roles (services.env); the checks read as its owner.
    migrate_database(settings.owner_url())
    engine = make_engine(settings.owner_url(), pool_size=2)
    instance = Instance(tmp_dir, settings, engine, base_dir=Path(info["base_dir"]))
    with session_scope(engine) as s:
        geo_service.load_shipped_borders(session=s, buffer_m=settings.border_buffer_m)
    return instance


def stop_instance(instance: Instance | None, tmp_dir: Path) -> None:
    if instance is not None:
        instance.engine.dispose()
    services.down(console=quiet())
    base = instance.base_dir if instance else None
    if base is not None and base != tmp_dir and base.parent == services.SYSTEM_BASE:
        shutil.rmtree(base, ignore_errors=True)


def make_stream(
    gateway: Gateway, root: str, n: int, *, tag: str, crossing_every: int = 5, start: datetime | None = None
) -> list[tuple[str, bytes, str]]:
    """``n`` detections on tracks of 10 fixes, published in track order; every ``crossing_every``-th
    track runs north -> south across the Thai-Malaysian border, the others stay on the Thai side.
    Returns (topic, payload, event id)."""
    t0 = start or datetime.now(timezone.utc) - timedelta(minutes=30)
    out = []
    for i in range(n):
        track, fix = divmod(i, FIXES_PER_TRACK)
        sensor = gateway.sensors[track % len(gateway.sensors)]
        lat = NORTH - (NORTH - SOUTH) * fix / (FIXES_PER_TRACK - 1)
        if track % crossing_every:
            lat = NORTH - 0.002 * fix
        body = {
            "event_id": uuid.uuid4().hex,
            "sensor_id": sensor,
            "observed_at": (t0 + timedelta(milliseconds=i)).isoformat(),
            "lon": 100.40 + (track % 97) * 0.0005,
            "lat": round(lat, 6),
            "class": "person",
            "confidence": 0.9,
            "track_id": f"{tag}-{track}",
        }
        out.append((topics.detections(root, gateway.agency, gateway.id, sensor), orjson.dumps(body), body["event_id"]))
    return out


def crossing_tracks(gateway: Gateway, n: int, *, tag: str, crossing_every: int = 5) -> set[str]:
    """The track keys of ``make_stream``'s crossing tracks."""
    tracks = n // FIXES_PER_TRACK
    return {f"{gateway.sensors[t % len(gateway.sensors)]}:{tag}-{t}" for t in range(tracks) if t % crossing_every == 0}


class Worker(IngestProcess):
    """`borderwatch ingest` as a subprocess, with extra settings in its environment."""

    def __init__(self, client_id: str, **env: str) -> None:
        super().__init__(client_id)
        self.env = env

    def totals(self) -> dict[str, int]:
        """The counts the worker prints when it stops (SIGTERM)."""
        tail = " ".join(self.log_path.read_text().split("--- start")[-1].split())
        found = re.findall(r"(\d+) (messages|stored|duplicates|dead letters|alerts)", tail.split("ingest stopped")[-1])
        return {name: int(n) for n, name in found}

    def start(self) -> None:
        saved = {key: os.environ.get(key) for key in self.env}
        os.environ.update(self.env)
        try:
            super().start()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


class Publisher:
    """A gateway publishing a stream at QoS 1 at a steady rate. paho keeps every message until the
    broker's PUBACK and resends the unacknowledged ones after it reconnects on its own."""

    def __init__(
        self,
        settings: Settings,
        gateway: Gateway,
        stream: list[tuple[str, bytes, str]],
        rate: float,
        *,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        host, port, _, _ = settings.mqtt_parts()
        username, password = credentials or (gateway.id, gateway.password)
        self.stream, self.rate = stream, rate
        self.connects = 0
        self.acknowledged = 0
        self.refused = 0
        self.infos: list[mqtt.MQTTMessageInfo] = []
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"{gateway.id}-pub", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(0)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.connect(host, port, keepalive=10)
        self.client.loop_start()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            self.connects += 1

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # Once per message: paho forgets a message at its PUBACK and resends only the others.
        if reason_code.is_failure:
            self.refused += 1
        else:
            self.acknowledged += 1

    def _run(self) -> None:
        chunk = max(1, int(self.rate / 20))
        started = time.monotonic()
        for i in range(0, len(self.stream), chunk):
            for topic, payload, _ in self.stream[i : i + chunk]:
                self.infos.append(self.client.publish(topic, payload, qos=1))
            pause = started + (i + chunk) / self.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)

    def start(self) -> "Publisher":
        self.thread.start()
        return self

    @property
    def published(self) -> int:
        return len(self.infos)

    def unacknowledged(self) -> int:
        return len(self.stream) - self.acknowledged - self.refused

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def count_or_none(engine: Engine, sql: str, **params) -> int | None:
    """A count that tolerates the database being restarted under it."""
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()
    except DBAPIError:
        return None


def check_stored_once(engine: Engine, gateway: Gateway, events: list[str]) -> dict[str, int]:
    """How the published events ended up: stored, distinct, missing, doubled, dead letters."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(*) AS stored, count(DISTINCT event_id) AS distinct_events, "
                "count(*) FILTER (WHERE event_id = ANY(CAST(:events AS text[]))) AS published_found "
                "FROM detections WHERE sensor_id = ANY(:sensors)"
            ),
            {"events": events, "sensors": gateway.sensors},
        ).one()
        dead = conn.execute(
            text("SELECT count(*) FROM dead_letters WHERE topic LIKE :t"), {"t": f"%/{gateway.id}/%"}
        ).scalar()
    return {"stored": row.stored, "distinct": row.distinct_events, "published_found": row.published_found, "dead": dead}


def check_alerts(engine: Engine, gateway: Gateway, crossing: set[str]) -> dict[str, int]:
    """Crossings: one per crossing track, Thailand -> Malaysia, none on the other tracks.
    Zone entries: one per track and zone the track was ever inside (truth from the stored fixes)."""
    with engine.connect() as conn:
        got = conn.execute(
            text(
                "SELECT track_key, count(*) AS n, array_agg(DISTINCT from_state || '>' || to_state) AS dirs "
                "FROM alerts WHERE kind = 'crossing' AND sensor_id = ANY(:sensors) GROUP BY track_key"
            ),
            {"sensors": gateway.sensors},
        ).all()
        zones = conn.execute(
            text(
                """
                WITH truth AS (
                    SELECT DISTINCT d.track_key, z.id AS zone_id
                    FROM detections d
                    JOIN zones z ON z.entry_alert AND ST_Intersects(z.geom, d.geom)
                         AND (z.owner_agency = d.agency_code OR d.agency_code = ANY (z.member_agencies))
                    WHERE d.sensor_id = ANY(:sensors)
                ),
                got AS (
                    SELECT track_key, zone_id, count(*) AS n FROM alerts
                    WHERE kind = 'zone_entry' AND sensor_id = ANY(:sensors) GROUP BY 1, 2
                )
                SELECT count(*) AS expected_or_raised,
                       count(*) FILTER (WHERE got.n IS NULL) AS missing,
                       count(*) FILTER (WHERE truth.track_key IS NULL) AS unexpected,
                       count(*) FILTER (WHERE got.n > 1) AS doubled
                FROM truth FULL JOIN got USING (track_key, zone_id)
                """
            ),
            {"sensors": gateway.sensors},
        ).one()
    by_track = {r.track_key: r for r in got}
    return {
        "crossing_expected": len(crossing),
        "crossing_found": sum(1 for t in crossing if t in by_track),
        "crossing_doubled": sum(1 for r in got if r.n > 1),
        "crossing_wrong_direction": sum(1 for r in got if r.dirs != ["TH>MY"]),
        "crossing_unexpected": sum(1 for t in by_track if t not in crossing),
        "zone_entries": zones.expected_or_raised,
        "zone_missing": zones.missing,
        "zone_unexpected": zones.unexpected,
        "zone_doubled": zones.doubled,
    }
