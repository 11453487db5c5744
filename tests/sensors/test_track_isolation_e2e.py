"""One agency's gateway cannot poison another agency's tracks: claiming an MMSI that another agency
tracks neither raises nor holds back that agency's alerts, and its own alerts show none of that
agency's fixes; a detection placed far outside its sensor's coverage is a dead letter. Real
Mosquitto, the real ingest worker process, real PostGIS."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from sqlalchemy import text

from core import topics
from sensors.batches import BatchProcessor, Message
from tests.conftest import detection, mosquitto_pub, scalar, unique, wait_for

pytestmark = pytest.mark.e2e

# Either side of the Thai-Malaysian border near Sadao / Bukit Kayu Hitam (as tests/sensors/test_ingest_e2e.py),
# each a few km from the radars below.
TH_POINT, TH_POINT_2 = (100.4190, 6.6200), (100.4150, 6.6300)
MY_POINT = (100.4205, 6.5060)
RADAR_TH, RADAR_MY = (100.42, 6.60), (100.42, 6.52)


def mmsi() -> str:
    return str(567_000_000 + random.randrange(1, 999_999))


def publish(settings, gw, sensor: str, at: datetime, point: tuple[float, float], ship: str) -> int:
    """A boat fix claiming ``ship``'s MMSI; returns nothing useful but the publisher's exit code."""
    body = detection(sensor, *point, object_class="boat", identifiers={"mmsi": ship}, observed_at=at.isoformat())
    topic = topics.detections(settings.mqtt_topic_root, gw.agency, gw.id, sensor)
    return mosquitto_pub(settings, gw, topic, body).returncode


def rows(engine, sql: str, **params) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def crossings(engine, ship: str) -> list[dict]:
    return rows(
        engine,
        "SELECT agency_code, from_state || '>' || to_state AS way, detection_ids, ST_X(geom) AS lon, ST_Y(geom) AS lat "
        "FROM alerts WHERE kind = 'crossing' AND track_key = :t ORDER BY id",
        t=f"mmsi:{ship}",
    )


def detection_ids(engine, sensor: str) -> set[int]:
    return {r["id"] for r in rows(engine, "SELECT id FROM detections WHERE sensor_id = :s", s=sensor)}


def revealed_to(engine, agency: str) -> set[int]:
    """Every detection an agency's alerts name."""
    found = rows(engine, "SELECT detection_id, detection_ids FROM alerts WHERE agency_code = :a", a=agency)
    return {r["detection_id"] for r in found} | {i for r in found for i in r["detection_ids"]}


@pytest.fixture
def agencies(make_gateway):
    """Agency A (Thai police) and agency B (Malaysian police), each with a radar of its own."""
    a = make_gateway(agency="TH-RTP", sensors={unique("radar"): RADAR_TH}, kind="radar")
    b = make_gateway(agency="MY-PDRM", sensors={unique("radar"): RADAR_MY}, kind="radar")
    return (a, next(iter(a.sensors))), (b, next(iter(b.sensors)))


def test_another_agency_claiming_the_mmsi_cannot_suppress_a_crossing(settings, engine, ingest, agencies):
    (a, a_sensor), (b, b_sensor) = agencies
    ship, t0 = mmsi(), datetime.now(timezone.utc) - timedelta(minutes=2)
    assert publish(settings, a, a_sensor, t0, TH_POINT, ship) == 0
    wait_for(lambda: len(detection_ids(engine, a_sensor)) == 1)
    # B claims the vessel is already across, before A sees it cross
    assert publish(settings, b, b_sensor, t0 + timedelta(seconds=5), MY_POINT, ship) == 0
    wait_for(lambda: len(detection_ids(engine, b_sensor)) == 1)
    assert publish(settings, a, a_sensor, t0 + timedelta(seconds=10), MY_POINT, ship) == 0
    found = wait_for(lambda: crossings(engine, ship))
    wait_for(lambda: len(detection_ids(engine, a_sensor)) == 2)
    found = crossings(engine, ship)
    # A's own crossing, from A's own fixes; B's single fix makes no track, and no alert of B's
    # shows where A saw the vessel
    assert [(c["agency_code"], c["way"]) for c in found] == [("TH-RTP", "TH>MY")]
    assert set(found[0]["detection_ids"]) == detection_ids(engine, a_sensor)
    assert not detection_ids(engine, a_sensor) & revealed_to(engine, "MY-PDRM")


def test_another_agency_claiming_the_mmsi_cannot_fabricate_a_crossing(settings, engine, ingest, agencies):
    (a, a_sensor), (b, b_sensor) = agencies
    ship, t0 = mmsi(), datetime.now(timezone.utc) - timedelta(minutes=2)
    assert publish(settings, a, a_sensor, t0, TH_POINT, ship) == 0
    wait_for(lambda: len(detection_ids(engine, a_sensor)) == 1)
    assert publish(settings, b, b_sensor, t0 + timedelta(seconds=5), MY_POINT, ship) == 0
    wait_for(lambda: len(detection_ids(engine, b_sensor)) == 1)
    # the vessel never left Thailand as far as A's radar saw it
    assert publish(settings, a, a_sensor, t0 + timedelta(seconds=10), TH_POINT_2, ship) == 0
    wait_for(lambda: len(detection_ids(engine, a_sensor)) == 2)
    # B's own crossing back, from B's own fixes only: it shows nothing of A's
    assert publish(settings, b, b_sensor, t0 + timedelta(seconds=15), TH_POINT, ship) == 0
    found = wait_for(lambda: crossings(engine, ship))
    wait_for(lambda: len(detection_ids(engine, b_sensor)) == 2)
    found = crossings(engine, ship)
    assert [(c["agency_code"], c["way"]) for c in found] == [("MY-PDRM", "MY>TH")]
    assert set(found[0]["detection_ids"]) == detection_ids(engine, b_sensor)
    assert not detection_ids(engine, a_sensor) & revealed_to(engine, "MY-PDRM")
    # each agency's track stands where its own sensor last saw the vessel
    positions = rows(
        engine,
        "SELECT agency_code, sensor_id FROM track_positions WHERE track_key = :t ORDER BY agency_code",
        t=f"mmsi:{ship}",
    )
    assert positions == [
        {"agency_code": "MY-PDRM", "sensor_id": b_sensor},
        {"agency_code": "TH-RTP", "sensor_id": a_sensor},
    ]


def test_a_detection_far_outside_its_sensor_coverage_is_a_dead_letter(settings, engine, ingest, make_gateway):
    gw = make_gateway()  # a camera near Sadao: 5 km by default
    sensor = next(iter(gw.sensors))
    topic = topics.detections(settings.mqtt_topic_root, gw.agency, gw.id, sensor)
    far = detection(sensor, 100.5018, 13.7563)  # Bangkok, 790 km away
    assert mosquitto_pub(settings, gw, topic, far).returncode == 0
    assert mosquitto_pub(settings, gw, topic, detection(sensor, 100.4190, 6.6200)).returncode == 0
    wait_for(lambda: scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = :s", s=sensor) == 1)
    (dead,) = wait_for(lambda: rows(engine, "SELECT payload, reason FROM dead_letters WHERE topic = :t", t=topic))
    assert orjson.loads(dead["payload"]) == far
    assert dead["reason"].startswith("outside_coverage: ") and f"from sensor '{sensor}'" in dead["reason"]
    assert "whose range is 5.0 km" in dead["reason"]


def test_a_dead_letter_for_coverage_costs_nothing_else_in_its_batch(settings, engine, make_gateway):
    """One batch of the real ingest path: the far detection is refused, the others are stored once,
    whether or not they give a position, and a sensor with a range of its own is held to it."""
    gw = make_gateway()  # a camera near Sadao: 5 km by default
    small = make_gateway(sensors={unique("ugs"): (100.40, 6.61)}, kind="ground_sensor", range_m=200)
    cam, ugs = next(iter(gw.sensors)), next(iter(small.sensors))
    processor = BatchProcessor(settings, engine)

    def message(sensor, lon, lat, n):
        g = gw if sensor == cam else small
        topic = topics.detections(settings.mqtt_topic_root, g.agency, g.id, sensor)
        return Message(topic, orjson.dumps(detection(sensor, lon, lat, event_id=f"e{n}")), n, 1, 0)

    batch = [
        message(cam, 100.43, 6.64, 1),
        message(cam, 101.50, 6.63, 2),  # 119 km east of the camera
        message(ugs, None, None, 3),  # the sensor's own location
        message(ugs, 100.40, 6.6125, 4),  # 277 m from a 200 m ground sensor
        message(cam, 100.41, 6.62, 5),
    ]
    result = processor.process(batch)
    assert (result.stored, result.duplicates, result.dead) == (3, 0, 2)
    stored = rows(engine, "SELECT event_id FROM detections WHERE sensor_id IN (:c, :u) ORDER BY event_id", c=cam, u=ugs)
    assert [r["event_id"] for r in stored] == ["e1", "e3", "e5"]
    # the same batch again: nothing new, nothing doubled
    result = processor.process(batch)
    assert (result.stored, result.duplicates, result.dead) == (0, 3, 2)
    reasons = rows(
        engine,
        "SELECT reason FROM dead_letters WHERE topic LIKE :t OR topic LIKE :u ORDER BY id",
        t=f"%/{gw.id}/%",
        u=f"%/{small.id}/%",
    )
    assert [r["reason"].split(":")[0] for r in reasons] == ["outside_coverage"] * 4
    by_sensor = {sensor: [r["reason"] for r in reasons if f"sensor '{sensor}'" in r["reason"]] for sensor in (cam, ugs)}
    assert len(by_sensor[cam]) == len(by_sensor[ugs]) == 2
    assert all("whose range is 5.0 km" in reason for reason in by_sensor[cam])
    assert all("whose range is 0.2 km" in reason for reason in by_sensor[ugs])


def test_another_agency_ais_cannot_hide_a_dark_vessel(settings, engine, ingest, make_gateway):
    """The dark-vessel rule counts only the agency's own AIS receivers: another agency's gateway
    reporting AIS next to the contact neither hides it nor learns of it."""
    # the Malacca Strait, clear of the other tests' vessels; an agency of its own
    sea = (101.60, 2.45)
    radar = make_gateway(agency="ID-BAKAMLA", sensors={unique("radar"): sea}, kind="radar")
    ais = make_gateway(agency="TH-RTP", sensors={unique("ais"): sea}, kind="ais_receiver")
    radar_sensor, ais_sensor = next(iter(radar.sensors)), next(iter(ais.sensors))
    at = datetime.now(timezone.utc) - timedelta(minutes=1)
    lit = detection(
        ais_sensor,
        sea[0] + 0.001,
        sea[1],
        object_class="vessel",
        identifiers={"mmsi": mmsi()},
        observed_at=at.isoformat(),
    )
    assert (
        mosquitto_pub(
            settings, ais, topics.detections(settings.mqtt_topic_root, ais.agency, ais.id, ais_sensor), lit
        ).returncode
        == 0
    )
    wait_for(lambda: scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = :s", s=ais_sensor) == 1)
    contact = detection(
        radar_sensor, *sea, object_class="boat", track_id="c1", observed_at=(at + timedelta(seconds=5)).isoformat()
    )
    topic = topics.detections(settings.mqtt_topic_root, radar.agency, radar.id, radar_sensor)
    assert mosquitto_pub(settings, radar, topic, contact).returncode == 0
    dark = wait_for(
        lambda: rows(
            engine,
            "SELECT agency_code, track_key FROM alerts WHERE kind = 'dark_vessel' AND sensor_id = :s",
            s=radar_sensor,
        )
    )
    assert dark == [{"agency_code": "ID-BAKAMLA", "track_key": f"{radar_sensor}:c1"}]
