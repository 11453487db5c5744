"""Ingest benchmark pieces: the same stream through (a) raw paho QoS 1 consumption that only
counts, (b) the naive pipeline (per message: INSERT, ST_Intersects query, commit), (c) Borderwatch's
ingest worker; and publish -> committed-alert latency at a fixed rate. ``tests.bench.suite``
(``make bench``) runs them and reports.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import orjson
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from rich.console import Console
from sqlalchemy import text

from broker import service as access
from core import topics
from core.db import session_scope
from sensors import service
from sensors.models import Gateway
from sensors.schemas import GatewayCreate, SensorCreate
from tests.bench.cpu import CpuMeter
from tests.broker_roots import topic_root_on_broker

console = Console(stderr=True)
GATEWAY = "bench-gw"
SENSORS = [f"bench-cam-{i:02d}" for i in range(20)]
# Thai side and Malaysian side of the border near Sadao; tracks run from one to the other.
NORTH, SOUTH = 6.5600, 6.4900

# The streams' tracks run over about 8 km around the cameras: a range that takes them all in.
STREAM_RANGE_M = 20_000.0

# Set by prepare(): the bench gateway's broker password (it publishes every stream; the service
# users may not write gateways' topics) and the engine that opens each bench's topic root on the broker.
_run: dict = {}


def prepare(settings, engine) -> None:
    """The bench database starts each run empty of detections, so runs compare like with like."""
    from geo import service as geo_service

    with session_scope(engine) as s:
        s.execute(
            text("TRUNCATE detections, detection_keys, alerts, alert_cooldowns, track_positions, dead_letters CASCADE")
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    with session_scope(engine) as s:
        if not s.execute(text("SELECT count(*) FROM border_segments")).scalar():
            geo_service.load_shipped_borders(session=s, buffer_m=settings.border_buffer_m)
        geo_service.ensure_agencies(session=s)
        if s.get(Gateway, GATEWAY) is None:
            service.create_gateway(session=s, gateway_in=GatewayCreate(id=GATEWAY, agency_code="TH-RTP"))
            for i, sensor in enumerate(SENSORS):
                service.create_sensor(
                    session=s,
                    sensor_in=SensorCreate(
                        id=sensor,
                        gateway_id=GATEWAY,
                        kind="camera",
                        lon=100.40 + i * 0.002,
                        lat=6.53,
                        coverage_radius_m=STREAM_RANGE_M,
                    ),
                )
        # A bench database made before sensors had ranges: the streams' range all the same.
        s.execute(
            text("UPDATE sensors SET range_m = :r WHERE gateway_id = :g AND range_m IS DISTINCT FROM :r"),
            {"r": STREAM_RANGE_M, "g": GATEWAY},
        )
    with session_scope(engine) as s:
        _run["password"] = service.rotate_gateway_credential(session=s, gateway_id=GATEWAY, actor="bench")
    with session_scope(engine) as s:
        access.sync_broker(session=s, settings=settings)
    _run["engine"] = engine


def _on_broker(settings, root: str):
    """The bench's own topic root, open on the broker to the service users and the bench gateway."""
    return topic_root_on_broker(settings, _run["engine"], root, GATEWAY)


def make_stream(n: int, root: str, crossing_every: int = 5) -> list[tuple[str, bytes, str]]:
    """n detections on tracks of 10 fixes; every ``crossing_every``-th track runs north -> south across the border."""
    t0 = datetime.now(timezone.utc) - timedelta(minutes=30)
    out = []
    for i in range(n):
        track, fix = divmod(i, 10)
        sensor = SENSORS[track % len(SENSORS)]
        lat = NORTH - (NORTH - SOUTH) * fix / 9
        if track % crossing_every:
            lat = NORTH - 0.002 * fix  # stays on the Thai side
        body = {
            "event_id": uuid.uuid4().hex,
            "sensor_id": sensor,
            "observed_at": (t0 + timedelta(milliseconds=i)).isoformat(),
            "lon": 100.40 + (track % 97) * 0.0005,
            "lat": round(lat, 6),
            "class": "person",
            "confidence": 0.9,
            "track_id": f"{root}-{track}",
        }
        out.append((topics.detections(root, "TH-RTP", GATEWAY, sensor), orjson.dumps(body), body["event_id"]))
    return out


def _client(settings, client_id: str, *, user: str = "gateway", manual_ack: bool = False) -> mqtt.Client:
    """A client as the bench gateway (publishing), the ingest worker's user (reading the gateways'
    topics) or the API's (reading alerts)."""
    if user == "gateway":
        user, password = GATEWAY, _run["password"]
    else:
        _, _, user, password = settings.mqtt_parts(settings.mqtt_api_url if user == "api" else settings.mqtt_url)
    c = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    c.username_pw_set(user, password)
    c.max_inflight_messages_set(0)
    c.max_queued_messages_set(0)
    return c


def _connect(settings, client: mqtt.Client, *, clean: bool, receive_max: int = 4000) -> None:
    host, port, _, _ = settings.mqtt_parts()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = receive_max
    client.connect(host, port, clean_start=clean, properties=props)


def publish_backlog(settings, stream) -> None:
    pub = _client(settings, f"bench-pub-{uuid.uuid4().hex[:6]}")
    _connect(settings, pub, clean=True)
    pub.loop_start()
    infos = [pub.publish(t, p, qos=1) for t, p, _ in stream]
    for info in infos:
        info.wait_for_publish(60)
    pub.disconnect()
    pub.loop_stop()


def subscribe_then_leave(settings, client_id: str, topic_filter: str) -> None:
    c = _client(settings, client_id, user="ingest", manual_ack=True)
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    _connect(settings, c, clean=True)
    c.loop_start()
    c.subscribe(topic_filter, qos=1)
    done.wait(10)
    c.disconnect()
    c.loop_stop()


def drain(settings, client_id: str, n: int, handle, meter: CpuMeter | None = None) -> tuple[float, dict]:
    """Reconnect to a persistent session holding n messages; seconds until all are handled and acked,
    and the CPU per message of each process meanwhile."""
    c = _client(settings, client_id, user="ingest", manual_ack=True)
    count = {"n": 0}
    done = threading.Event()

    def on_message(client, userdata, msg):
        handle(msg)
        client.ack(msg.mid, msg.qos)
        count["n"] += 1
        if count["n"] >= n:
            done.set()

    c.on_message = on_message
    before = meter.sample() if meter else None
    started = time.perf_counter()
    _connect(settings, c, clean=False)
    c.loop_start()
    if not done.wait(600):
        raise RuntimeError(f"drained only {count['n']} of {n}")
    elapsed = time.perf_counter() - started
    cpu = CpuMeter.per_message(before, meter.sample(), n) if meter else {}
    c.disconnect()
    c.loop_stop()
    return elapsed, cpu


def bench_raw(settings, n: int, meter: CpuMeter | None = None) -> tuple[float, dict]:
    root = f"borderwatch/bench-raw-{uuid.uuid4().hex[:6]}"
    with _on_broker(settings, root):
        cid = f"bench-raw-{uuid.uuid4().hex[:6]}"
        subscribe_then_leave(settings, cid, f"{root}/gw/#")
        publish_backlog(settings, make_stream(n, root))
        elapsed, cpu = drain(settings, cid, n, lambda msg: None, meter)
        return n / elapsed, cpu


def bench_naive(settings, n: int, meter: CpuMeter | None = None) -> tuple[float, dict]:
    """What a first version would do: one INSERT, one ST_Intersects query and one commit per message."""
    root = f"borderwatch/bench-naive-{uuid.uuid4().hex[:6]}"
    with _on_broker(settings, root):
        cid = f"bench-naive-{uuid.uuid4().hex[:6]}"
        subscribe_then_leave(settings, cid, f"{root}/gw/#")
        publish_backlog(settings, make_stream(n, root))
        conn = psycopg.connect(settings.database_url.replace("postgresql+psycopg://", "postgresql://"))

        def handle(msg):
            d = json.loads(msg.payload)
            with conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO detection_keys (sensor_id, event_id, observed_at) VALUES (%s, %s, %s) "
                    "ON CONFLICT DO NOTHING",
                    (d["sensor_id"], d["event_id"], d["observed_at"]),
                )
                cur.execute(
                    "INSERT INTO detections (observed_at, sensor_id, agency_code, event_id, geom, located_by, class, "
                    "confidence, track_id, raw) VALUES (%s, %s, 'TH-RTP', %s, ST_SetSRID(ST_MakePoint(%s, %s), 4326), "
                    "'payload', %s, %s, %s, %s)",
                    (
                        d["observed_at"],
                        d["sensor_id"],
                        d["event_id"],
                        d["lon"],
                        d["lat"],
                        d["class"],
                        d["confidence"],
                        d["track_id"],
                        msg.payload.decode(),
                    ),
                )
                cur.execute(
                    "SELECT z.id FROM zones z WHERE z.entry_alert AND ST_Intersects(z.geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
                    (d["lon"], d["lat"]),
                )
                cur.fetchall()
            conn.commit()

        elapsed, cpu = drain(settings, cid, n, handle, meter)
        conn.close()
        return n / elapsed, cpu


def bench_borderwatch(settings, engine, n: int, meter: CpuMeter | None = None) -> tuple[float, dict, dict]:
    from sensors.ingest import IngestWorker

    root = f"borderwatch/bench-bw-{uuid.uuid4().hex[:6]}"
    with _on_broker(settings, root):
        cid = f"bench-bw-{uuid.uuid4().hex[:6]}"
        ws = settings.model_copy(update={"mqtt_topic_root": root, "ingest_share_group": ""})
        worker = IngestWorker(ws, engine, client_id=cid)
        thread = threading.Thread(target=worker.run)
        thread.start()
        worker.wait_connected(10)
        time.sleep(0.5)
        worker.stop()
        thread.join()
        publish_backlog(settings, make_stream(n, root))
        worker = IngestWorker(ws, engine, client_id=cid)
        thread = threading.Thread(target=worker.run)
        before = meter.sample() if meter else None
        started = time.perf_counter()
        thread.start()
        while worker.totals["messages"] < n:
            time.sleep(0.005)
        # Like the raw consumer's: from connecting to the broker until the last message is handled (the
        # worker's own start-up before it connects is not ingest; its CPU is still counted below).
        elapsed = time.perf_counter() - (worker.connecting_since or started)
        cpu = CpuMeter.per_message(before, meter.sample(), n) if meter else {}
        worker.stop()
        thread.join()
        return n / elapsed, dict(worker.totals), cpu


def _subscribed(client_id: str) -> bool:
    with _run["engine"].connect() as conn:
        return bool(
            conn.execute(
                text("SELECT count(*) FROM ingest_subscriptions WHERE client_id = :c"), {"c": client_id}
            ).scalar()
        )


def bench_latency(settings, rate: int, seconds: float) -> dict:
    """A worker process takes a live stream at a fixed rate; publish -> alert received, per crossing."""
    root = f"borderwatch/bench-lat-{uuid.uuid4().hex[:6]}"
    with _on_broker(settings, root):
        cid = f"bench-lat-{uuid.uuid4().hex[:6]}"
        env = {**os.environ, "BW_MQTT_TOPIC_ROOT": root, "BW_INGEST_SHARE_GROUP": "", "BW_INGEST_CLIENT_ID": cid}
        worker = subprocess.Popen(
            [sys.executable, "-m", "cli", "ingest"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        n = int(rate * seconds)
        stream = make_stream(n, root)
        sent_at: dict[str, float] = {}
        latencies: list[float] = []
        listener = _client(settings, f"{cid}-alerts", user="api")

        def on_alert(client, userdata, msg):
            alert = orjson.loads(msg.payload)
            event = alert.get("details", {}).get("event_id")
            if alert["kind"] == "crossing" and event in sent_at:
                latencies.append(time.perf_counter() - sent_at[event])

        listener.on_message = on_alert
        _connect(settings, listener, clean=True)
        listener.loop_start()
        listener.subscribe(topics.alerts(root, "TH-RTP"), qos=1)
        # Wait until the worker has subscribed (it records its filters) before streaming.
        deadline = time.monotonic() + 30
        while not _subscribed(cid):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError(
                    "latency worker did not subscribe: " + worker.stderr.read1().decode(errors="replace")
                )
            time.sleep(0.1)
        pub = _client(settings, f"{cid}-pub")
        _connect(settings, pub, clean=True)
        pub.loop_start()
        started = time.perf_counter()
        for i, (topic, payload, event) in enumerate(stream):
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent_at[event] = time.perf_counter()
            pub.publish(topic, payload, qos=1)
        publish_s = time.perf_counter() - started
        expected = len(range(0, n // 10, 5))
        deadline = time.monotonic() + 30
        while len(latencies) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        for c in (pub, listener):
            c.disconnect()
            c.loop_stop()
        worker.terminate()
        worker.wait(20)
        lat = sorted(latencies)
        pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1) if lat else None  # noqa: E731
        return {
            "rate": rate,
            "achieved_rate": round(n / publish_s),
            "messages": n,
            "alerts_expected": expected,
            "alerts_received": len(lat),
            "p50_ms": pick(0.50),
            "p99_ms": pick(0.99),
            "max_ms": round(lat[-1] * 1000, 1) if lat else None,
            "mean_ms": round(statistics.fmean(lat) * 1000, 1) if lat else None,
        }
