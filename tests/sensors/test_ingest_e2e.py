"""The ingest path end to end: real Mosquitto, real ingest worker process, real PostGIS."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from sqlalchemy import text

from core import topics
from tests.conftest import detection, mosquitto_pub, mqtt_client, scalar, unique, wait_for

pytestmark = pytest.mark.e2e

# Either side of the Thai-Malaysian land border near Sadao / Bukit Kayu Hitam.
TH_POINT = (100.4190, 6.6200)
MY_POINT = (100.4205, 6.5060)
# The sensors here (make_gateway's, at 100.42 E, 6.63 N) see both points: a range of their own.
BORDER_VIEW_M = 20_000.0


def det_topic(settings, gw, sensor):
    return topics.detections(settings.mqtt_topic_root, gw.agency, gw.id, sensor)


def stored(engine, sensor_id):
    return scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = :s", s=sensor_id)


def test_detection_from_mosquitto_pub_is_stored_and_geofenced(settings, engine, ingest, make_gateway):
    gw = make_gateway(range_m=BORDER_VIEW_M)
    sensor = next(iter(gw.sensors))
    # Inside the Thai buffer strip of the Thai-Malaysian border, about 1 km from the line.
    body = detection(sensor, 100.4195, 6.5200, object_class="vehicle")
    result = mosquitto_pub(settings, gw, det_topic(settings, gw, sensor), body)
    assert result.returncode == 0, result.stderr

    wait_for(lambda: stored(engine, sensor) == 1)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat, located_by, class, agency_code, "
                "(SELECT st.code FROM states st WHERE ST_Intersects(st.geom, d.geom)) AS state "
                "FROM detections d WHERE sensor_id = :s"
            ),
            {"s": sensor},
        ).one()
    assert (round(row.lon, 4), round(row.lat, 4)) == (100.4195, 6.52)
    assert row.located_by == "payload"
    assert row[3] == "vehicle"
    assert row.agency_code == "TH-RTP"
    entries = wait_for(
        lambda: scalar(
            engine,
            "SELECT array_agg(z.kind || ':' || coalesce(z.state, '')) FROM alerts a JOIN zones z ON z.id = a.zone_id "
            "WHERE a.sensor_id = :s AND a.kind = 'zone_entry'",
            s=sensor,
        )
    )
    assert row.state == "TH"
    assert entries == ["border_buffer:TH"]
    # the map's "last seen" of the sensor follows (written at most once a second, and when the stream pauses)
    assert wait_for(
        lambda: scalar(
            engine,
            "SELECT s.last_seen_at = (SELECT max(d.observed_at) FROM detections d WHERE d.sensor_id = s.id) "
            "FROM sensors s WHERE s.id = :s",
            s=sensor,
        )
    )


def test_detection_without_position_uses_the_sensor_location(settings, engine, ingest, make_gateway):
    gw = make_gateway(sensors={unique("ugs"): (100.4000, 6.6100)}, kind="ground_sensor")
    sensor = next(iter(gw.sensors))
    assert mosquitto_pub(settings, gw, det_topic(settings, gw, sensor), detection(sensor, None, None)).returncode == 0
    wait_for(lambda: stored(engine, sensor) == 1)
    assert scalar(
        engine,
        "SELECT ST_Equals(d.geom, s.location) AND d.located_by = 'sensor' FROM detections d "
        "JOIN sensors s ON s.id = d.sensor_id WHERE d.sensor_id = :s",
        s=sensor,
    )


def test_track_crossing_raises_one_alert_with_direction_and_publishes_it(settings, engine, ingest, make_gateway):
    gw = make_gateway(range_m=BORDER_VIEW_M)
    sensor = next(iter(gw.sensors))
    received: list[dict] = []
    _, _, user, password = settings.mqtt_parts(settings.mqtt_api_url)
    listener = mqtt_client(settings, user, password)
    got = threading.Event()

    def on_message(client, userdata, msg):
        alert = orjson.loads(msg.payload)
        if alert["sensor_id"] == sensor:
            received.append(alert)
            got.set()

    listener.on_message = on_message
    subscribed = threading.Event()
    listener.on_subscribe = lambda c, u, mid, codes, props: subscribed.set()
    listener.subscribe(topics.alerts(settings.mqtt_topic_root, gw.agency), qos=1)
    assert subscribed.wait(10), "the broker did not confirm the subscription"
    t0 = datetime.now(timezone.utc) - timedelta(seconds=30)
    fixes = [TH_POINT, (100.4195, 6.5400), MY_POINT, (100.4210, 6.5000)]
    for i, (lon, lat) in enumerate(fixes):
        body = detection(sensor, lon, lat, track_id="t1", observed_at=(t0 + timedelta(seconds=5 * i)).isoformat())
        assert mosquitto_pub(settings, gw, det_topic(settings, gw, sensor), body).returncode == 0
    wait_for(lambda: stored(engine, sensor) == 4)
    crossings = wait_for(
        lambda: scalar(
            engine,
            "SELECT array_agg(from_state || '>' || to_state) FROM alerts WHERE sensor_id = :s AND kind = 'crossing'",
            s=sensor,
        )
    )
    assert crossings == ["TH>MY"]
    assert got.wait(10)
    listener.loop_stop()
    listener.disconnect()
    published = [a for a in received if a["kind"] == "crossing"]
    assert len(published) == 1 and published[0]["from_state"] == "TH" and published[0]["to_state"] == "MY"
    assert published[0]["severity"] in ("high", "critical")


def test_resent_event_is_stored_once(settings, engine, ingest, make_gateway):
    gw = make_gateway(range_m=BORDER_VIEW_M)
    sensor = next(iter(gw.sensors))
    body = detection(sensor, *TH_POINT)
    for _ in range(3):
        assert mosquitto_pub(settings, gw, det_topic(settings, gw, sensor), body).returncode == 0
    marker = detection(sensor, *TH_POINT)
    assert mosquitto_pub(settings, gw, det_topic(settings, gw, sensor), marker).returncode == 0
    wait_for(lambda: stored(engine, sensor) == 2)
    time.sleep(0.5)
    assert scalar(engine, "SELECT count(*) FROM detections WHERE event_id = :e", e=body["event_id"]) == 1


@pytest.mark.parametrize(
    "case, payload, reason",
    [
        ("not json", b"{this is not json", "invalid detection"),
        (
            "missing class",
            orjson.dumps(
                {"event_id": "x", "sensor_id": "SENSOR", "observed_at": "2026-01-01T00:00:00Z", "confidence": 0.5}
            ),
            "class",
        ),
        ("confidence out of range", "CONF", "confidence"),
        ("naive time", "NAIVE", "timezone"),
        ("lon without lat", "LONONLY", "lon and lat must be given together"),
        ("not utf-8", b"\xff\xfe\xfa garbage", "not valid UTF-8"),
        ("nul character", "NUL", "NUL"),
        ("oversized", "BIG", "exceeds the limit"),
        ("sensor mismatch", "MISMATCH", "does not match topic sensor"),
        ("future", "FUTURE", "in the future"),
    ],
)
def test_bad_payloads_go_to_dead_letters_and_the_worker_keeps_running(
    settings, engine, ingest, make_gateway, case, payload, reason
):
    gw = make_gateway(range_m=BORDER_VIEW_M)
    sensor = next(iter(gw.sensors))
    good = detection(sensor, *TH_POINT)
    if payload == "CONF":
        payload = orjson.dumps(detection(sensor, *TH_POINT, confidence=1.7))
    elif payload == "NAIVE":
        payload = orjson.dumps(detection(sensor, *TH_POINT, observed_at="2026-11-22T10:00:00"))
    elif payload == "LONONLY":
        body = detection(sensor, *TH_POINT)
        del body["lat"]
        payload = orjson.dumps(body)
    elif payload == "NUL":
        payload = orjson.dumps(detection(sensor, *TH_POINT, track_id="a\u0000b"))
    elif payload == "BIG":
        payload = orjson.dumps(detection(sensor, *TH_POINT, note="x" * 100_000))
    elif payload == "MISMATCH":
        payload = orjson.dumps(detection("another-sensor", *TH_POINT))
    elif payload == "FUTURE":
        payload = orjson.dumps(
            detection(sensor, *TH_POINT, observed_at=(datetime.now(timezone.utc) + timedelta(hours=2)).isoformat())
        )
    elif isinstance(payload, bytes) and b"SENSOR" in payload:
        payload = payload.replace(b"SENSOR", sensor.encode())
    topic = det_topic(settings, gw, sensor)
    assert mosquitto_pub(settings, gw, topic, payload).returncode == 0
    assert mosquitto_pub(settings, gw, topic, good).returncode == 0
    wait_for(lambda: stored(engine, sensor) == 1)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT reason, payload FROM dead_letters WHERE topic = :t"), {"t": topic}).all()
    assert len(rows) == 1, rows
    assert reason in rows[0].reason
    assert bytes(rows[0].payload) == payload
    assert ingest.alive()


def test_unregistered_sensor_and_foreign_topic_go_to_dead_letters(settings, engine, ingest, make_gateway):
    gw = make_gateway(range_m=BORDER_VIEW_M)
    other = make_gateway(range_m=BORDER_VIEW_M)
    sensor, other_sensor = next(iter(gw.sensors)), next(iter(other.sensors))
    unknown_topic = det_topic(settings, gw, "no-such-sensor")
    assert mosquitto_pub(settings, gw, unknown_topic, detection("no-such-sensor", *TH_POINT)).returncode == 0
    # The topic is this gateway's own (the ACL allows it) but names another gateway's sensor.
    stolen_topic = det_topic(settings, gw, other_sensor)
    assert mosquitto_pub(settings, gw, stolen_topic, detection(other_sensor, *TH_POINT)).returncode == 0
    bad_topic = f"{topics.gateway_prefix(settings.mqtt_topic_root, gw.agency, gw.id)}/oops"
    assert mosquitto_pub(settings, gw, bad_topic, detection(sensor, *TH_POINT)).returncode == 0
    assert mosquitto_pub(settings, gw, det_topic(settings, gw, sensor), detection(sensor, *TH_POINT)).returncode == 0
    wait_for(lambda: stored(engine, sensor) == 1)
    reasons = wait_for(
        lambda: (
            scalar(
                engine,
                "SELECT array_agg(reason ORDER BY id) FROM dead_letters WHERE topic IN (:a, :b, :c)",
                a=unknown_topic,
                b=stolen_topic,
                c=bad_topic,
            )
            if scalar(
                engine,
                "SELECT count(*) FROM dead_letters WHERE topic IN (:a, :b, :c)",
                a=unknown_topic,
                b=stolen_topic,
                c=bad_topic,
            )
            == 3
            else None
        )
    )
    assert any("is not registered" in r for r in reasons)
    assert any(f"belongs to gateway {other.id!r}" in r for r in reasons)
    assert any("not a detections or status topic" in r for r in reasons)
    assert stored(engine, other_sensor) == 0


def test_a_gateway_cannot_publish_under_another_gateways_topic(settings, engine, ingest, make_gateway):
    gw = make_gateway(range_m=BORDER_VIEW_M)
    victim = make_gateway(range_m=BORDER_VIEW_M)
    victim_sensor = next(iter(victim.sensors))
    topic = det_topic(settings, victim, victim_sensor)
    result = mosquitto_pub(settings, gw, topic, detection(victim_sensor, *TH_POINT))
    # MQTT v5: the broker answers the PUBLISH with "not authorised" and drops it.
    assert b"not authori" in (result.stderr + result.stdout).lower(), result
    assert mosquitto_pub(settings, victim, topic, detection(victim_sensor, *MY_POINT)).returncode == 0
    wait_for(lambda: stored(engine, victim_sensor) == 1)
    time.sleep(0.5)
    assert stored(engine, victim_sensor) == 1
    assert scalar(engine, "SELECT count(*) FROM dead_letters WHERE topic = :t", t=topic) == 0
    # Wrong password: the broker refuses the connection.
    wrong = type(gw)(gw.id, gw.agency, "wrong-password", gw.sensors)
    assert mosquitto_pub(settings, wrong, det_topic(settings, gw, next(iter(gw.sensors))), b"{}").returncode != 0


def test_a_gateway_whose_credential_is_withdrawn_cannot_connect(settings, engine, make_gateway):
    """A gateway without a broker hash (here ``!``) gets no password-file entry: it cannot log in,
    and the broker still reloads the file for everyone else."""
    from broker import service as access
    from core.db import session_scope

    gw = make_gateway(range_m=BORDER_VIEW_M)
    topic = det_topic(settings, gw, next(iter(gw.sensors)))
    assert mosquitto_pub(settings, gw, topic, detection(next(iter(gw.sensors)), *TH_POINT)).returncode == 0
    with session_scope(engine) as s:
        s.execute(text("UPDATE gateways SET mqtt_password_hash = '!' WHERE id = :g"), {"g": gw.id})
    with session_scope(engine) as s:
        access.sync_broker(session=s, settings=settings)  # raises if the broker refuses the file
    wait_for(lambda: mosquitto_pub(settings, gw, topic, b"{}").returncode != 0, timeout=10)
    other = make_gateway(range_m=BORDER_VIEW_M)
    other_topic = det_topic(settings, other, next(iter(other.sensors)))
    assert mosquitto_pub(settings, other, other_topic, detection(next(iter(other.sensors)), *TH_POINT)).returncode == 0


def test_gateway_status_and_last_will(settings, engine, ingest, make_gateway):
    import paho.mqtt.client as mqtt

    gw = make_gateway(range_m=BORDER_VIEW_M)
    status_topic = topics.gateway_status(settings.mqtt_topic_root, gw.agency, gw.id)
    host, port, _, _ = settings.mqtt_parts()
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=unique("gw"), protocol=mqtt.MQTTv5)
    client.username_pw_set(gw.id, gw.password)
    client.will_set(status_topic, b'{"status":"offline"}', qos=1, retain=True)
    client.connect(host, port, keepalive=5)
    client.loop_start()
    client.publish(status_topic, b'{"status":"online"}', qos=1, retain=True).wait_for_publish(5)
    wait_for(lambda: scalar(engine, "SELECT status FROM gateways WHERE id = :g", g=gw.id) == "online")
    # Drop the connection without DISCONNECT: the broker publishes the last will.
    client.loop_stop()
    client.socket().close()
    wait_for(lambda: scalar(engine, "SELECT status FROM gateways WHERE id = :g", g=gw.id) == "offline", timeout=30)


def test_worker_killed_mid_stream_loses_and_doubles_nothing(settings, engine, ingest, make_gateway):
    """SIGKILL the worker while 4,000 QoS 1 messages stream in; after a restart each is stored once."""
    gw = make_gateway(sensors={unique("cam"): TH_POINT, unique("cam"): MY_POINT})
    sensors = list(gw.sensors)
    client = mqtt_client(settings, gw.id, gw.password)
    total = 4000
    t0 = datetime.now(timezone.utc) - timedelta(minutes=20)
    events = []

    def publish_all():
        for i in range(total):
            sensor = sensors[i % 2]
            lon, lat = gw.sensors[sensor]
            body = detection(
                sensor,
                lon,
                lat + (i % 7) * 0.0001,
                track_id=f"k{i % 50}",
                observed_at=(t0 + timedelta(milliseconds=250 * i)).isoformat(),
            )
            events.append(body["event_id"])
            client.publish(det_topic(settings, gw, sensor), orjson.dumps(body), qos=1)
            if i % 200 == 0:
                time.sleep(0.02)

    publisher = threading.Thread(target=publish_all)
    publisher.start()
    count = lambda: scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = ANY(:s)", s=sensors)  # noqa: E731
    wait_for(lambda: count() > 200, timeout=30, interval=0.01)
    ingest.kill()
    killed_at = count()
    publisher.join()
    ingest.mark()
    ingest.start()
    wait_for(lambda: count() == total, timeout=90)
    time.sleep(1.0)
    client.loop_stop()
    client.disconnect()
    assert 0 < killed_at < total
    assert count() == total
    assert scalar(engine, "SELECT count(*) FROM dead_letters WHERE topic LIKE :t", t=f"%/{gw.id}/%") == 0
    assert (
        scalar(engine, "SELECT count(DISTINCT event_id) FROM detections WHERE sensor_id = ANY(:s)", s=sensors) == total
    )
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM (SELECT kind, detection_id, segment_id, zone_id FROM alerts WHERE sensor_id = ANY(:s) "
            "GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d",
            s=sensors,
        )
        == 0
    )
    print(f"killed with {killed_at} of {total} stored; after restart {count()} stored, none twice")
