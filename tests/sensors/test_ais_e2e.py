"""AIS over MQTT end to end: real NMEA sentences (pyais's own samples) published to the real
broker, decoded by a real ingest worker, stored in PostGIS as vessel detections and static data."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from core import topics
from tests.conftest import mosquitto_pub, scalar, unique, wait_for
from tests.sensors.analytics_worker import AnalyticsWorker, tag_block

pytestmark = pytest.mark.e2e

# Class A position report (type 1), MMSI 367380120, 0.1 kn, 245.2 degrees.
TYPE_1 = "!AIVDM,1,1,,B,15NG6V0P01G?cFhE`R2IU?wn28R>,0*05"
# Class B position report (type 18), MMSI 367430530.
TYPE_18 = "!AIVDM,1,1,,A,B5NJ;PP005l4ot5Isbl03wsUkP06,0*76"
# Class B extended report (type 19): position and name, MMSI 367059850 "CAPT.J.RIMES", 8.7 kn.
TYPE_19 = "!AIVDM,1,1,,B,C5N3SRgPEnJGEBT>NhWAwwo862PaLELTBJ:V00000000S0D:R220,0*0B"
# Static and voyage data (type 5) in two parts, MMSI 368060190, call sign WDK4954.
TYPE_5 = (
    "!AIVDM,2,1,4,A,55O0W7`00001L@gCWGA2uItLth@DqtL5@F22220j1h742t0Ht0000000,0*08",
    "!AIVDM,2,2,4,A,000000000000000,2*20",
)


@pytest.fixture(scope="module")
def worker(settings, engine, make_gateway):
    w = AnalyticsWorker(settings, engine, make_gateway())
    yield w
    w.stop()


# The sample reports are of San Francisco Bay (types 1, 18 and 5) and of the Gulf of Mexico (type 19).
SF_BAY, GULF = (-122.33, 37.80), (-88.80, 29.55)


@pytest.fixture
def receiver(make_gateway):
    gw = make_gateway(agency="MY-MMEA", sensors={unique("ais"): SF_BAY}, kind="ais_receiver")
    return gw, next(iter(gw.sensors))


def detections_of(engine, sensor):
    with engine.connect() as conn:
        return (
            conn.execute(
                text(
                    "SELECT track_key, track_id, class, round(ST_X(geom)::numeric, 5) AS lon, round(ST_Y(geom)::numeric, 5) AS lat, "
                    "speed_mps, heading_deg, identifiers, observed_at, raw FROM detections WHERE sensor_id = :s ORDER BY track_key"
                ),
                {"s": sensor},
            )
            .mappings()
            .all()
        )


def test_position_reports_of_class_a_and_b_become_vessel_detections(engine, worker, receiver):
    gw, sensor = receiver
    at = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=3)
    worker.publish(worker.ais_topic(gw, sensor), tag_block(at, TYPE_1))
    # two sentences in one message, no tag block: the time of arrival is used; the type 19 report
    # is 3,000 km away from this receiver, beyond any AIS range: a dead letter, the other is kept
    worker.publish(worker.ais_topic(gw, sensor), f"{TYPE_18}\r\n{TYPE_19}\r\n")
    rows = wait_for(lambda: len(detections_of(engine, sensor)) == 2 and detections_of(engine, sensor))
    by_track = {r["track_key"]: r for r in rows}
    assert set(by_track) == {"mmsi:367380120", "mmsi:367430530"}
    topic = worker.ais_topic(gw, sensor)
    dead = wait_for(lambda: scalar(engine, "SELECT array_agg(payload) FROM dead_letters WHERE topic = :t", t=topic))
    assert dead == [TYPE_19.encode()]
    reason = scalar(engine, "SELECT reason FROM dead_letters WHERE topic = :t", t=topic)
    assert reason.startswith("outside_coverage: ") and "whose range is 75.0 km" in reason
    a = by_track["mmsi:367380120"]
    assert (a["track_id"], a["class"], float(a["lon"]), float(a["lat"])) == (
        "367380120",
        "vessel",
        -122.40433,
        37.80695,
    )
    assert a["observed_at"] == at
    assert a["speed_mps"] == pytest.approx(0.1 * 0.514444, abs=1e-3) and a["heading_deg"] == pytest.approx(245.2)
    assert a["identifiers"] == {"mmsi": "367380120", "ais_type": "1"}
    assert a["raw"]["nmea"] == [tag_block(at, TYPE_1)] and a["raw"]["ais"]["msg_type"] == 1
    b = by_track["mmsi:367430530"]
    assert (float(b["lon"]), float(b["lat"]), b["identifiers"]["ais_type"]) == (-122.26732, 37.78504, "18")
    assert datetime.now(timezone.utc) - b["observed_at"] < timedelta(minutes=2)
    # the same message again (a redelivery) is stored once
    worker.publish(worker.ais_topic(gw, sensor), tag_block(at, TYPE_1))
    marker = tag_block(at + timedelta(seconds=1), TYPE_18)
    worker.publish(worker.ais_topic(gw, sensor), marker)
    wait_for(lambda: len(detections_of(engine, sensor)) == 3)
    time.sleep(0.5)
    assert (
        scalar(
            engine, "SELECT count(*) FROM detections WHERE sensor_id = :s AND track_key = 'mmsi:367380120'", s=sensor
        )
        == 1
    )


def test_multipart_static_data_is_assembled_across_messages_and_batches(engine, worker, receiver):
    gw, sensor = receiver
    scalar(engine, "SELECT 1")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM vessels WHERE mmsi = 368060190"))
    worker.publish(worker.ais_topic(gw, sensor), TYPE_5[0])
    # the first part waits in the fragment table: its batch is committed without it
    wait_for(lambda: scalar(engine, "SELECT count(*) FROM ais_fragments WHERE sensor_id = :s", s=sensor) == 1)
    assert scalar(engine, "SELECT count(*) FROM vessels WHERE mmsi = 368060190") == 0
    worker.publish(worker.ais_topic(gw, sensor), TYPE_5[1])
    wait_for(lambda: scalar(engine, "SELECT count(*) FROM vessels WHERE mmsi = 368060190") == 1)
    with engine.connect() as conn:
        v = conn.execute(text("SELECT * FROM vessels WHERE mmsi = 368060190")).mappings().one()
    assert (v["call_sign"], v["name"], v["ship_type"], v["ship_type_name"]) == (
        "WDK4954",
        "P/V_GOLDEN_GATE",
        50,
        "PilotVessel",
    )
    assert v["flag"] is None  # 368 is a US MID, outside the region's table
    assert scalar(engine, "SELECT count(*) FROM ais_fragments WHERE sensor_id = :s", s=sensor) == 0
    # both parts in one message are assembled within the batch
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM vessels WHERE mmsi = 368060190"))
    worker.publish(worker.ais_topic(gw, sensor), "\n".join(TYPE_5))
    wait_for(lambda: scalar(engine, "SELECT name FROM vessels WHERE mmsi = 368060190") == "P/V_GOLDEN_GATE")
    assert scalar(engine, "SELECT count(*) FROM dead_letters WHERE topic = :t", t=worker.ais_topic(gw, sensor)) == 0


@pytest.mark.parametrize(
    "payload, reason",
    [
        ("!AIVDM,1,1,,B,15NG6V0P01G?cFhE`R2IU?wn28R>,0*06", "checksum mismatch"),
        ("!AIVDM,1,1,,B", "undecodable NMEA sentence"),
        ("$GPGGA,092750.000,5321.6802,N,00630.3372,W,1,8,1.03,61.7,M,55.2,M,,*76", "undecodable NMEA sentence"),
        ("hello", "undecodable NMEA sentence"),
        ("   \n  ", "empty AIS message"),
    ],
)
def test_undecodable_sentences_go_to_dead_letters(engine, worker, receiver, payload, reason):
    gw, sensor = receiver
    topic = worker.ais_topic(gw, sensor)
    worker.publish(topic, payload)
    worker.publish(topic, tag_block(datetime.now(timezone.utc), TYPE_18))
    wait_for(lambda: len(detections_of(engine, sensor)) == 1)
    reasons = wait_for(lambda: scalar(engine, "SELECT array_agg(reason) FROM dead_letters WHERE topic = :t", t=topic))
    assert len(reasons) == 1 and reason in reasons[0], reasons
    assert (
        scalar(engine, "SELECT payload FROM dead_letters WHERE topic = :t", t=topic) == payload.strip().encode()
        or reason == "empty AIS message"
    )


def test_one_bad_line_does_not_cost_the_good_ones(engine, worker, receiver):
    gw, sensor = receiver
    topic = worker.ais_topic(gw, sensor)
    worker.publish(topic, f"{TYPE_1}\n!AIVDM,1,1,,B,garbage,0*00\n{TYPE_18}")
    wait_for(lambda: len(detections_of(engine, sensor)) == 2)
    reasons = wait_for(lambda: scalar(engine, "SELECT array_agg(reason) FROM dead_letters WHERE topic = :t", t=topic))
    assert len(reasons) == 1 and ("checksum" in reasons[0] or "undecodable" in reasons[0])


def test_ais_from_an_unregistered_sensor_is_a_dead_letter(engine, worker, receiver):
    gw, _ = receiver
    topic = worker.ais_topic(gw, "no-such-sensor")
    worker.publish(topic, TYPE_1)
    reason = wait_for(lambda: scalar(engine, "SELECT reason FROM dead_letters WHERE topic = :t", t=topic))
    assert "not registered" in reason


def test_gateway_publishes_ais_with_mosquitto_pub_through_its_acl(settings, engine, ingest, make_gateway):
    gw = make_gateway(agency="MY-MMEA", sensors={unique("ais"): GULF}, kind="ais_receiver")
    sensor = next(iter(gw.sensors))
    topic = topics.ais(settings.mqtt_topic_root, gw.agency, gw.id, sensor)
    assert mosquitto_pub(settings, gw, topic, TYPE_19).returncode == 0
    wait_for(
        lambda: scalar(engine, "SELECT track_key FROM detections WHERE sensor_id = :s", s=sensor) == "mmsi:367059850"
    )
    (c,) = detections_of(engine, sensor)
    assert c["speed_mps"] == pytest.approx(8.7 * 0.514444, abs=1e-3)
    # the type 19 report carries the name too
    assert scalar(engine, "SELECT name FROM vessels WHERE mmsi = 367059850") == "CAPT.J.RIMES"


def test_a_part_whose_other_parts_never_come_expires(engine, worker, receiver):
    gw, sensor = receiver
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ais_fragments (sensor_id, channel, seq_id, frag_cnt, frag_num, sentence, observed_at, topic, "
                "received_at) VALUES (:s, 'A', 7, 2, 1, :line, now(), 't', now() - interval '1 hour')"
            ),
            {"s": sensor, "line": TYPE_5[0].replace(",4,A,", ",7,A,")},
        )
    # the worker's sweep (every 10 s) removes it
    wait_for(
        lambda: scalar(engine, "SELECT count(*) FROM ais_fragments WHERE sensor_id = :s", s=sensor) == 0, timeout=30
    )
