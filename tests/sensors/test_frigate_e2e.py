"""Frigate camera events end to end: the payload of Frigate's MQTT documentation, relayed by a
registered gateway with mosquitto_pub, becomes detections of one track (real broker, real ingest
worker, real PostGIS, and the real API server that lists them)."""

from __future__ import annotations

import copy
import re
import time

import httpx
import orjson
import pytest

from core import topics
from sensors import frigate
from tests.conftest import mosquitto_pub, scalar, unique, wait_for

pytestmark = pytest.mark.e2e

# Frigate's documentation (docs/docs/integrations/mqtt.md, `frigate/events`), verbatim; the `//`
# annotations are the documentation's, not part of what Frigate sends, and are stripped below.
DOCUMENTED_EVENT = """
{
  "type": "update", // new, update, end
  "before": {
    "id": "1607123955.475377-mxklsc",
    "camera": "front_door",
    "frame_time": 1607123961.837752,
    "snapshot_time": 1607123961.837752,
    "label": "person",
    "top_score": 0.958984375,
    "false_positive": false,
    "start_time": 1607123955.475377,
    "end_time": null,
    "score": 0.7890625,
    "box": [424, 500, 536, 712],
    "area": 23744,
    "region": [264, 450, 667, 853],
    "current_zones": ["driveway"],
    "entered_zones": ["yard", "driveway"],
    "thumbnail": null,
    "has_snapshot": false,
    "has_clip": false,
    "stationary": false, // whether or not the object is considered stationary
    "motionless_count": 0, // number of frames the object has been motionless
    "position_changes": 2 // number of times the object has moved from a stationary position
  },
  "after": {
    "id": "1607123955.475377-mxklsc",
    "camera": "front_door",
    "frame_time": 1607123962.082975,
    "snapshot_time": 1607123961.837752,
    "label": "person",
    "top_score": 0.958984375,
    "false_positive": false,
    "start_time": 1607123955.475377,
    "end_time": null,
    "score": 0.87890625,
    "box": [432, 496, 544, 854],
    "area": 40096,
    "region": [218, 440, 693, 915],
    "current_zones": ["yard", "driveway"],
    "entered_zones": ["yard", "driveway"],
    "thumbnail": null,
    "has_snapshot": false,
    "has_clip": false,
    "stationary": false, // whether or not the object is considered stationary
    "motionless_count": 0, // number of frames the object has been motionless
    "position_changes": 2 // number of times the object has changed position
  }
}
"""
CAMERA = (100.4100, 6.6300)
YARD = "POLYGON((100.4120 6.6310, 100.4130 6.6310, 100.4130 6.6320, 100.4120 6.6320, 100.4120 6.6310))"


def documented_event(shift_s: float) -> dict:
    """The documented event with its times moved by ``shift_s`` (2020 is older than ingest accepts)."""
    event = orjson.loads(re.sub(r"//[^\n]*", "", DOCUMENTED_EVENT))
    for state in (event["before"], event["after"]):
        for key in ("frame_time", "snapshot_time", "start_time"):
            state[key] += shift_s
    return event


def rows(engine, sensor):
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT event_id, track_id, track_key, class, confidence, located_by, ST_X(geom) AS lon, ST_Y(geom) AS lat, "
                "observed_at FROM detections WHERE sensor_id = :s ORDER BY observed_at"
            ),
            {"s": sensor},
        ).all()


def test_documented_frigate_events_become_one_track_of_detections(settings, engine, ingest, make_gateway, api_server):
    from accounts import service
    from core.db import session_scope
    from core.security import issue_token

    gw = make_gateway(sensors={unique("cam"): CAMERA})
    sensor = next(iter(gw.sensors))
    with session_scope(engine) as s:
        frigate.set_zone(session=s, sensor_id=sensor, name="yard", polygon_wkt=YARD)
    topic = topics.frigate(settings.mqtt_topic_root, gw.agency, gw.id, sensor)
    update = documented_event(time.time() - 1607123962.082975 - 5)
    new = {"type": "new", "before": None, "after": copy.deepcopy(update["before"])}
    end = copy.deepcopy(update)
    end["type"], end["before"] = "end", update["after"]
    end["after"]["frame_time"] += 2.5
    end["after"]["end_time"] = end["after"]["frame_time"]
    end["after"]["current_zones"] = []

    for payload in (new, update, update, end):  # the update twice: a redelivery
        result = mosquitto_pub(settings, gw, topic, payload)
        assert result.returncode == 0, result.stderr
    stored = wait_for(lambda: (r := rows(engine, sensor)) and len(r) >= 3 and r)
    time.sleep(0.5)
    assert len(rows(engine, sensor)) == 3  # new, update, end; the redelivered update stored nothing

    track = "1607123955.475377-mxklsc"
    assert {r.track_id for r in stored} == {track} and {r.track_key for r in stored} == {f"{sensor}:{track}"}
    assert [r.event_id.split("@")[0] for r in stored] == [track] * 3
    assert {r[3] for r in stored} == {"person"}
    assert [round(r.confidence, 4) for r in stored] == [0.7891, 0.8789, 0.8789]
    # before: only "driveway" (not placed) -> the camera; after: "yard" is placed -> inside its polygon.
    first, second, last = stored
    assert (first.located_by, round(first.lon, 4), round(first.lat, 4)) == ("sensor", *CAMERA)
    assert second.located_by == "payload"
    assert 100.4120 < second.lon < 100.4130 and 6.6310 < second.lat < 6.6320
    assert last.located_by == "sensor"
    assert abs(second.observed_at.timestamp() - update["after"]["frame_time"]) < 1e-3

    # A false positive is not a detection; a broken event is a dead letter with its reason.
    false_positive = copy.deepcopy(update)
    false_positive["after"].update(id="1607123999.0-fp", false_positive=True)
    broken = {"type": "moved", "after": update["after"]}
    for payload in (false_positive, broken):
        assert mosquitto_pub(settings, gw, topic, payload).returncode == 0
    reason = wait_for(
        lambda: scalar(engine, "SELECT reason FROM dead_letters WHERE topic = :t ORDER BY id DESC LIMIT 1", t=topic)
    )
    assert "not a Frigate event: type" in reason
    assert len(rows(engine, sensor)) == 3

    # The operators see them on the API.
    username = unique("op")
    with session_scope(engine) as s:
        service.create_user(
            session=s, username=username, agency_code=gw.agency, role="operator", password=unique("pw") + "-long-enough"
        )
        token = issue_token(service.principal_of(service.get_user(session=s, username=username))).token
    listed = httpx.get(
        f"{api_server.base_url}/api/v1/detections",
        params={"sensor_id": sensor},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    assert sorted(f["properties"]["event_id"] for f in listed["features"]) == sorted(r.event_id for r in stored)
    assert {f["properties"]["track_id"] for f in listed["features"]} == {track}


def test_frigate_zone_must_be_a_valid_polygon_of_a_registered_sensor(session, make_gateway):
    from core.errors import InvalidInput, NotFound

    gw = make_gateway(sensors={unique("cam"): CAMERA})
    sensor = next(iter(gw.sensors))
    with pytest.raises(NotFound):
        frigate.set_zone(session=session, sensor_id="no-such-camera", name="yard", polygon_wkt=YARD)
    for wkt in ("POINT(100 6)", "POLYGON((garbage", "POLYGON((0 0, 1 1, 1 0, 0 1, 0 0))"):
        with pytest.raises(InvalidInput):
            frigate.set_zone(session=session, sensor_id=sensor, name="yard", polygon_wkt=wkt)
    frigate.set_zone(session=session, sensor_id=sensor, name="yard", polygon_wkt=YARD)
