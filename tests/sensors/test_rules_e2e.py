"""Watch-lists, dark vessels, sensor health, AIS gaps, rendezvous and loitering end to end:
detections published to the real broker, a real ingest worker (short timers), real PostGIS."""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from sqlalchemy import text

from tests.conftest import detection, scalar, unique, wait_for
from tests.sensors.analytics_worker import AnalyticsWorker, tag_block
from tests.sensors.test_ais_e2e import TYPE_19

pytestmark = pytest.mark.e2e

# Inside the Malaysian territorial sea of the Malacca Strait, about 5 km from the boundary with Indonesia.
SEA = (101.7799, 2.2755)
M_PER_DEG = 111_320.0


def offset(point: tuple[float, float], east_m: float, north_m: float) -> tuple[float, float]:
    import math

    lon, lat = point
    return lon + east_m / (M_PER_DEG * math.cos(math.radians(lat))), lat + north_m / M_PER_DEG


def mmsi() -> str:
    return str(533_000_000 + random.randrange(1, 999_999))


@pytest.fixture(scope="module")
def worker(settings, engine, make_gateway):
    w = AnalyticsWorker(settings, engine, make_gateway(), sensor_timeout_s=3, analytics_sweep_s=0.5, ais_gap_s=600)
    yield w
    w.stop()


def alerts(engine, kind: str, **where) -> list[dict]:
    clauses = " ".join(f"AND {k} = :{k}" for k in where)
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text(f"SELECT * FROM alerts WHERE kind = :kind {clauses} ORDER BY id"), {"kind": kind, **where}
            ).mappings()
        ]


def add_entry(engine, agency: str, kind: str, value: str, reason: str) -> int:
    with engine.begin() as conn:
        return conn.execute(
            text(
                "INSERT INTO watchlist_entries (agency_code, kind, value, display_value, reason, created_by) "
                "VALUES (:a, CAST(:k AS text), bw_watchlist_value(CAST(:k AS text), CAST(:v AS text)), CAST(:v AS text), :r, 'test') "
                "RETURNING id"
            ),
            {"a": agency, "k": kind, "v": value, "r": reason},
        ).scalar()


def vessel_fix(sensor: str, at: datetime, point: tuple[float, float], ship: str, speed: float = 5.0, **extra) -> dict:
    return detection(
        sensor,
        *point,
        object_class="vessel",
        observed_at=at.isoformat(),
        confidence=1.0,
        track_id=ship,
        identifiers={"mmsi": ship},
        speed_mps=speed,
        **extra,
    )


def test_watchlist_plate_hit_is_one_high_alert_with_the_reason(engine, worker, make_gateway):
    gw = make_gateway(agency="TH-RTP", sensors={unique("anpr"): (100.42, 6.63)}, kind="anpr")
    sensor = next(iter(gw.sensors))
    plate = f"ZX {random.randrange(1000, 9999)}"
    entry = add_entry(engine, "TH-RTP", "plate", plate, "stolen vehicle, report 4711")
    other = make_gateway(agency="MY-PDRM", sensors={unique("anpr"): (100.42, 6.50)}, kind="anpr")
    other_sensor = next(iter(other.sensors))
    now = datetime.now(timezone.utc)
    spelled = plate.lower().replace(" ", "-")
    for i in range(3):  # the same car read three times by the same camera
        worker.publish(
            worker.detections_topic(gw, sensor),
            detection(
                sensor,
                None,
                None,
                object_class="vehicle",
                track_id="car1",
                identifiers={"plate": spelled},
                observed_at=(now - timedelta(seconds=30 - i)).isoformat(),
            ),
        )
    # another agency reading the same plate: not on its watch-list
    worker.publish(
        worker.detections_topic(other, other_sensor),
        detection(other_sensor, None, None, object_class="vehicle", identifiers={"plate": plate}),
    )
    hit = wait_for(lambda: alerts(engine, "watchlist_hit", sensor_id=sensor))
    wait_for(lambda: scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = :s", s=other_sensor) == 1)
    time.sleep(0.5)
    hits = alerts(engine, "watchlist_hit", sensor_id=sensor)
    assert len(hits) == 1 and hits == hit
    assert hits[0]["severity"] == "high" and hits[0]["agency_code"] == "TH-RTP"
    assert "stolen vehicle, report 4711" in hits[0]["title"]
    assert hits[0]["details"]["entries"][0]["entry_id"] == entry
    assert alerts(engine, "watchlist_hit", sensor_id=other_sensor) == []


def test_watchlist_vessel_name_matches_ais_static_data(engine, worker, make_gateway):
    # the sample type 19 report is of the Gulf of Mexico: the receiver is there
    gw = make_gateway(agency="MY-MMEA", sensors={unique("ais"): (-88.80, 29.55)}, kind="ais_receiver")
    sensor = next(iter(gw.sensors))
    add_entry(engine, "MY-MMEA", "vessel_name", "Capt J Rimes", "suspected fuel smuggling")
    worker.publish(worker.ais_topic(gw, sensor), tag_block(datetime.now(timezone.utc), TYPE_19))
    hits = wait_for(lambda: alerts(engine, "watchlist_hit", sensor_id=sensor))
    assert len(hits) == 1 and hits[0]["track_key"] == "mmsi:367059850"
    assert "suspected fuel smuggling" in hits[0]["title"]


def test_dark_vessel_alerts_once_and_not_for_a_boat_with_ais(engine, worker, make_gateway):
    ais_gw = make_gateway(agency="MY-MMEA", sensors={unique("ais"): SEA}, kind="ais_receiver")
    radar_gw = make_gateway(agency="MY-MMEA", sensors={unique("radar"): SEA}, kind="radar")
    ais_sensor, radar = next(iter(ais_gw.sensors)), next(iter(radar_gw.sensors))
    now = datetime.now(timezone.utc)
    ship = mmsi()
    worker.publish(
        worker.detections_topic(ais_gw, ais_sensor), vessel_fix(ais_sensor, now - timedelta(seconds=60), SEA, ship)
    )
    wait_for(lambda: scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = :s", s=ais_sensor) == 1)
    # radar sees the AIS vessel 300 m off its reported position, and a boat 8 km away with no AIS
    for i in range(3):
        at = (now - timedelta(seconds=50 - 10 * i)).isoformat()
        worker.publish(
            worker.detections_topic(radar_gw, radar),
            detection(radar, *offset(SEA, 300, 0), object_class="vessel", track_id="r1", observed_at=at),
        )
        worker.publish(
            worker.detections_topic(radar_gw, radar),
            detection(radar, *offset(SEA, 0, 8000), object_class="boat", track_id="r2", observed_at=at),
        )
    dark = wait_for(lambda: alerts(engine, "dark_vessel", sensor_id=radar))
    wait_for(lambda: scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = :s", s=radar) == 6)
    time.sleep(0.5)
    dark = alerts(engine, "dark_vessel", sensor_id=radar)
    assert [a["track_key"] for a in dark] == [f"{radar}:r2"]
    assert dark[0]["severity"] == "high" and dark[0]["class"] == "boat"


def test_a_radar_contact_with_a_claimed_mmsi_is_dark_unless_ais_backs_it(engine, worker, make_gateway):
    """The MMSI a radar gateway attaches is a claim: with no AIS position near, the contact is dark
    (the alert shows the claimed MMSI); a contact whose MMSI an AIS receiver hears near it is not."""
    ais_gw = make_gateway(agency="MY-MMEA", sensors={unique("ais"): SEA}, kind="ais_receiver")
    radar_gw = make_gateway(agency="MY-MMEA", sensors={unique("radar"): SEA}, kind="radar")
    ais_sensor, radar = next(iter(ais_gw.sensors)), next(iter(radar_gw.sensors))
    now = datetime.now(timezone.utc)
    lit, claimed = mmsi(), mmsi()
    worker.publish(
        worker.detections_topic(ais_gw, ais_sensor),
        vessel_fix(ais_sensor, now - timedelta(seconds=60), offset(SEA, 0, -4000), lit),
    )
    wait_for(lambda: scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = :s", s=ais_sensor) == 1)
    for i in range(3):
        at = (now - timedelta(seconds=50 - 10 * i)).isoformat()
        worker.publish(
            worker.detections_topic(radar_gw, radar),
            detection(
                radar,
                *offset(SEA, 200, -4000),
                object_class="vessel",
                track_id="r1",
                identifiers={"mmsi": lit},
                observed_at=at,
            ),
        )
        worker.publish(
            worker.detections_topic(radar_gw, radar),
            detection(
                radar,
                *offset(SEA, 0, 8000),
                object_class="boat",
                track_id="r2",
                identifiers={"mmsi": claimed},
                observed_at=at,
            ),
        )
    wait_for(lambda: alerts(engine, "dark_vessel", sensor_id=radar))
    wait_for(lambda: scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = :s", s=radar) == 6)
    time.sleep(0.5)
    dark = alerts(engine, "dark_vessel", sensor_id=radar)
    assert [a["track_key"] for a in dark] == [f"mmsi:{claimed}"]
    assert dark[0]["details"]["claimed_mmsi"] == claimed
    assert f"claims MMSI {claimed}" in dark[0]["title"]


def test_sensor_health_last_will_timeout_and_back_online_without_repeats(engine, worker, make_gateway):
    gw = make_gateway(agency="MY-MMEA", sensors={unique("cam"): SEA, unique("cam"): offset(SEA, 500, 0)})
    s1, s2 = sorted(gw.sensors)
    count = lambda kind, s: len(alerts(engine, kind, sensor_id=s))  # noqa: E731
    worker.publish(worker.status_topic(gw), {"status": "online"})
    wait_for(
        lambda: (
            scalar(
                engine,
                "SELECT count(*) FROM sensor_health WHERE sensor_id IN (:a, :b) AND state = 'online'",
                a=s1,
                b=s2,
            )
            == 2
        )
    )
    # the gateway's last will: one offline alert per sensor, and a second will changes nothing
    worker.publish(worker.status_topic(gw), b'{"status":"offline"}')
    wait_for(lambda: count("sensor_offline", s1) == 1 and count("sensor_offline", s2) == 1)
    worker.publish(worker.status_topic(gw), b"offline")
    time.sleep(1.0)
    assert (count("sensor_offline", s1), count("sensor_offline", s2)) == (1, 1)
    assert "last will" in alerts(engine, "sensor_offline", sensor_id=s1)[0]["title"]
    # a detection brings its sensor back, once
    for _ in range(2):
        worker.publish(worker.detections_topic(gw, s1), detection(s1, *SEA, object_class="person"))
    wait_for(lambda: count("sensor_online", s1) == 1)
    assert count("sensor_online", s2) == 0
    # nothing heard for the timeout (3 s): offline once, however long the silence lasts
    wait_for(lambda: count("sensor_offline", s1) == 2, timeout=15)
    time.sleep(3.0)
    assert count("sensor_offline", s1) == 2 and count("sensor_offline", s2) == 1
    timeout_alert = alerts(engine, "sensor_offline", sensor_id=s1)[-1]
    assert "nothing heard for 3 s" in timeout_alert["title"]
    # the gateway's heartbeat brings both back
    worker.publish(worker.status_topic(gw), {"status": "online"})
    wait_for(lambda: count("sensor_online", s1) == 2 and count("sensor_online", s2) == 1)


def test_ais_gap_near_the_boundary_alerts_once_with_start_end_duration_and_distance(engine, worker, make_gateway):
    gw = make_gateway(agency="MY-MMEA", sensors={unique("ais"): SEA}, kind="ais_receiver")
    sensor = next(iter(gw.sensors))
    ship, quiet = mmsi(), mmsi()
    t0 = datetime.now(timezone.utc) - timedelta(hours=2)
    items = []
    for i in range(10):  # every minute for 10 minutes, then silent for 40 minutes, then 5 more fixes
        items.append(vessel_fix(sensor, t0 + timedelta(minutes=i), offset(SEA, 100 * i, 0), ship))
        items.append(vessel_fix(sensor, t0 + timedelta(minutes=i), offset(SEA, 100 * i, 2000), quiet))
    for i in range(5):
        items.append(vessel_fix(sensor, t0 + timedelta(minutes=50 + i), offset(SEA, 6000 + 100 * i, 0), ship))
        # the other vessel reports every 8 minutes: sparse, but no gap
    for i in range(10, 60, 8):
        items.append(vessel_fix(sensor, t0 + timedelta(minutes=i), offset(SEA, 100 * i, 2000), quiet))
    items.sort(key=lambda d: d["observed_at"])
    worker.publish_many([(worker.detections_topic(gw, sensor), orjson.dumps(d)) for d in items])
    gaps = wait_for(lambda: alerts(engine, "ais_gap", track_key=f"mmsi:{ship}"))
    wait_for(lambda: scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = :s", s=sensor) == len(items))
    time.sleep(1.0)
    gaps = alerts(engine, "ais_gap", track_key=f"mmsi:{ship}")
    assert len(gaps) == 1
    d = gaps[0]["details"]
    assert d["duration_s"] == 41 * 60
    assert datetime.fromisoformat(d["started_at"]) == t0 + timedelta(minutes=9)
    assert d["distance_m"] == pytest.approx(5100, rel=0.01)
    assert alerts(engine, "ais_gap", track_key=f"mmsi:{quiet}") == []


def test_ais_gap_sweep_opens_the_gap_while_silent_and_the_return_closes_it(settings, engine, make_gateway):
    gw = make_gateway(agency="MY-MMEA", sensors={unique("ais"): SEA}, kind="ais_receiver")
    sensor = next(iter(gw.sensors))
    w = AnalyticsWorker(settings, engine, gw, analytics_sweep_s=0.5, ais_gap_s=3)
    try:
        ship, chatty = mmsi(), mmsi()
        start = datetime.now(timezone.utc) - timedelta(seconds=2)
        w.publish(w.detections_topic(gw, sensor), vessel_fix(sensor, start, SEA, ship))
        # another vessel keeps being heard: the receiver is fine, the first one is silent
        for i in range(12):
            w.publish(
                w.detections_topic(gw, sensor),
                vessel_fix(sensor, datetime.now(timezone.utc), offset(SEA, 0, 3000), chatty),
            )
            time.sleep(0.5)
        opened = wait_for(lambda: alerts(engine, "ais_gap", track_key=f"mmsi:{ship}"))
        assert len(opened) == 1 and "ended_at" not in opened[0]["details"]
        w.publish(
            w.detections_topic(gw, sensor), vessel_fix(sensor, datetime.now(timezone.utc), offset(SEA, 500, 0), ship)
        )
        closed = wait_for(
            lambda: [a for a in alerts(engine, "ais_gap", track_key=f"mmsi:{ship}") if "ended_at" in a["details"]]
        )
        assert len(closed) == 1 and closed[0]["id"] == opened[0]["id"]
        assert closed[0]["details"]["distance_m"] == pytest.approx(500, rel=0.02)
        assert len(alerts(engine, "ais_gap", track_key=f"mmsi:{ship}")) == 1
    finally:
        w.stop()


def test_rendezvous_alerts_once_per_encounter(engine, worker, make_gateway):
    gw = make_gateway(agency="MY-MMEA", sensors={unique("ais"): SEA}, kind="ais_receiver")
    sensor = next(iter(gw.sensors))
    a, b, c = mmsi(), mmsi(), mmsi()
    t0 = datetime.now(timezone.utc) - timedelta(hours=4)
    items = []
    for minute in range(0, 150, 2):
        # a and b side by side (120 m apart) for 40 minutes, apart for 30, together again for 36
        together = minute < 40 or 70 <= minute < 106
        items.append(vessel_fix(sensor, t0 + timedelta(minutes=minute), offset(SEA, 20 * minute, 0), a, speed=3))
        items.append(
            vessel_fix(
                sensor,
                t0 + timedelta(minutes=minute, seconds=20),
                offset(SEA, 20 * minute, 120 if together else 4000),
                b,
                speed=3,
            )
        )
        # c passes a for 20 minutes only
        items.append(
            vessel_fix(
                sensor,
                t0 + timedelta(minutes=minute, seconds=40),
                offset(SEA, 20 * minute, -150 if 110 <= minute < 130 else -5000),
                c,
                speed=3,
            )
        )
    items.sort(key=lambda d: d["observed_at"])
    worker.publish_many([(worker.detections_topic(gw, sensor), orjson.dumps(d)) for d in items])
    wait_for(lambda: scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = :s", s=sensor) == len(items))
    pair = tuple(sorted((f"mmsi:{a}", f"mmsi:{b}")))
    wait_for(lambda: len(alerts(engine, "rendezvous", sensor_id=sensor)) >= 2)
    time.sleep(1.0)
    found = alerts(engine, "rendezvous", sensor_id=sensor)
    assert [(r["details"]["track_a"], r["details"]["track_b"]) for r in found] == [pair, pair]
    assert all(r["details"]["duration_s"] >= 1800 for r in found)
    assert found[0]["observed_at"] < t0 + timedelta(minutes=41) < found[1]["observed_at"]


def test_loitering_in_a_zone_alerts_once_per_stay(engine, worker, make_gateway):
    gw = make_gateway(agency="MY-MMEA", sensors={unique("ais"): SEA}, kind="ais_receiver")
    sensor = next(iter(gw.sensors))
    slow, fast = mmsi(), mmsi()
    t0 = datetime.now(timezone.utc) - timedelta(hours=3)
    items = []
    for minute in range(0, 50, 2):
        # drifting at 0.5 m/s (1 knot) for 50 minutes; another vessel passing at 6 m/s
        items.append(vessel_fix(sensor, t0 + timedelta(minutes=minute), offset(SEA, 30 * minute, 800), slow, speed=0.5))
        items.append(
            vessel_fix(
                sensor, t0 + timedelta(minutes=minute, seconds=30), offset(SEA, 360 * minute, -3000), fast, speed=6.0
            )
        )
    items.sort(key=lambda d: d["observed_at"])
    worker.publish_many([(worker.detections_topic(gw, sensor), orjson.dumps(d)) for d in items])
    wait_for(lambda: scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = :s", s=sensor) == len(items))
    found = wait_for(lambda: alerts(engine, "loitering", track_key=f"mmsi:{slow}"))
    time.sleep(1.0)
    found = alerts(engine, "loitering", track_key=f"mmsi:{slow}")
    zones = scalar(
        engine,
        "SELECT array_agg(name ORDER BY name) FROM zones WHERE id = ANY(:ids)",
        ids=[f["zone_id"] for f in found],
    )
    assert "Malaysia territorial sea (Malacca–Singapore Straits area)" in zones
    assert len(found) == len(set(zones))  # once per zone
    assert all(f["details"]["duration_s"] >= 1800 for f in found)
    assert alerts(engine, "loitering", track_key=f"mmsi:{fast}") == []
