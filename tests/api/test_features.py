"""The GeoJSON feature endpoints: document shape, content type, filters and their validation."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.factories import now

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
ENDPOINTS = ["segments", "zones", "sensors", "detections", "alerts"]


@pytest.fixture
def world(factory):
    """One agency with two sensors, detections and alerts at known places and times, plus geography."""
    agency = factory.agency("TH")
    username = factory.user(agency)
    t0 = now().replace(microsecond=0) - timedelta(hours=1)
    north = factory.sensor(agency, 100.40, 6.60)
    south = factory.sensor(agency, 101.90, 5.80, kind="radar", status="offline")
    d = {
        "n1": factory.detection(north, agency, 100.41, 6.61, t0, track="a"),
        "n2": factory.detection(north, agency, 100.42, 6.62, t0 + timedelta(minutes=10), object_class="vehicle"),
        "s1": factory.detection(south, agency, 101.91, 5.81, t0 + timedelta(minutes=20), object_class="boat"),
    }
    a = {
        "north": factory.alert(north, agency, 100.41, 6.61, t0 + timedelta(minutes=5), severity="high"),
        "south": factory.alert(
            south,
            agency,
            101.91,
            5.81,
            t0 + timedelta(minutes=25),
            severity="critical",
            kind="zone_entry",
            object_class="boat",
            from_state=None,
            to_state=None,
        ),
    }
    seg_north, _ = factory.segment([(100.30, 6.50), (100.50, 6.70)], impact_level="high")
    seg_south, _ = factory.segment([(101.80, 5.70), (102.00, 5.90)], kind="maritime", impact_level="low")
    zone_north = factory.zone(agency, box=(100.3, 6.5, 100.5, 6.7), kind="restricted_area")
    zone_south = factory.zone(agency, box=(101.8, 5.7, 102.0, 5.9), kind="territorial_sea")
    return {
        "agency": agency,
        "headers": factory.headers(username),
        "t0": t0,
        "sensors": {"north": north, "south": south},
        "detections": d,
        "alerts": a,
        "segments": {"north": seg_north, "south": seg_south},
        "zones": {"north": zone_north, "south": zone_south},
    }


def get(client, world, endpoint: str, **params):
    response = client.get(f"/api/v1/{endpoint}", params=params, headers=world["headers"])
    return response


def fc(client, world, endpoint: str, **params) -> dict:
    response = get(client, world, endpoint, **params)
    assert response.status_code == 200, response.text
    return response.json()


def ids(collection: dict) -> list:
    return [f["id"] for f in collection["features"]]


def assert_feature_collection(response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == "application/geo+json"
    body = response.json()
    assert body["type"] == "FeatureCollection"
    assert RFC3339.match(body["timeStamp"])
    assert body["numberReturned"] == len(body["features"])
    for feature in body["features"]:
        assert feature["type"] == "Feature"
        assert feature["id"] is not None
        assert isinstance(feature["properties"], dict)
        geometry = feature["geometry"]
        assert geometry["type"] in ("Point", "LineString", "MultiPolygon", "Polygon", "MultiLineString")
        assert "crs" not in geometry
    return body


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_endpoint_returns_a_feature_collection(client, world, endpoint):
    body = assert_feature_collection(get(client, world, endpoint))
    assert body["numberReturned"] >= 2


def test_empty_collection_is_still_valid(client, world):
    body = assert_feature_collection(get(client, world, "alerts", bbox="-10,-10,-9,-9"))
    assert body["features"] == [] and body["numberReturned"] == 0


def test_alert_properties(client, world):
    body = fc(client, world, "alerts")
    feature = next(f for f in body["features"] if f["id"] == world["alerts"]["north"])
    p = feature["properties"]
    for key in (
        "kind",
        "severity",
        "status",
        "title",
        "observed_at",
        "sensor_id",
        "track_key",
        "class",
        "from_state",
        "to_state",
        "segment_id",
        "zone_id",
        "detection_ids",
        "details",
    ):
        assert key in p, key
    assert p["kind"] == "crossing" and p["severity"] == "high" and p["status"] == "open"
    assert p["from_state"] == "MY" and p["to_state"] == "TH"
    assert p["sensor_id"] == world["sensors"]["north"]
    assert isinstance(p["detection_ids"], list) and len(p["detection_ids"]) == 1
    assert p["details"] == {"confidence": 0.9}
    assert RFC3339.match(p["observed_at"]) and p["observed_at"].endswith("Z")
    assert feature["geometry"] == {"type": "Point", "coordinates": [100.41, 6.61]}


def test_detection_sensor_segment_zone_properties(client, world):
    det = next(f for f in fc(client, world, "detections")["features"] if f["id"] == world["detections"]["n1"])
    assert det["properties"]["class"] == "person"
    assert det["properties"]["track_key"] == f"{world['sensors']['north']}:a"
    assert RFC3339.match(det["properties"]["observed_at"])
    sensor = next(f for f in fc(client, world, "sensors")["features"] if f["id"] == world["sensors"]["south"])
    assert sensor["properties"]["kind"] == "radar" and sensor["properties"]["gateway_status"] == "offline"
    seg = next(f for f in fc(client, world, "segments")["features"] if f["id"] == world["segments"]["south"])
    assert seg["properties"]["kind"] == "maritime" and seg["properties"]["impact_level"] == "low"
    assert seg["geometry"]["type"] == "LineString"
    zone = next(f for f in fc(client, world, "zones")["features"] if f["id"] == world["zones"]["north"])
    assert zone["properties"]["owner_agency"] == world["agency"]
    assert zone["properties"]["member_agencies"] == [world["agency"]]
    assert zone["geometry"]["type"] == "MultiPolygon"


def _signed_area(ring: list[list[float]]) -> float:
    return sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(ring, ring[1:])) / 2


def test_zone_rings_follow_the_right_hand_rule(client, factory, world):
    # Written clockwise; RFC 7946 wants exterior rings counterclockwise.
    zone = factory.zone(world["agency"], wkt="POLYGON((100 6, 100 6.1, 100.1 6.1, 100.1 6, 100 6))")
    feature = next(f for f in fc(client, world, "zones")["features"] if f["id"] == zone)
    assert _signed_area(feature["geometry"]["coordinates"][0][0]) > 0


def test_detections_and_alerts_newest_first(client, world):
    d = world["detections"]
    features = fc(client, world, "detections")["features"]
    observed = [f["properties"]["observed_at"] for f in features]
    assert observed == sorted(observed, reverse=True)
    mine = [i for i in ids({"features": features}) if i in d.values()]
    assert mine == [d["s1"], d["n2"], d["n1"]]
    observed = [f["properties"]["observed_at"] for f in fc(client, world, "alerts")["features"]]
    assert observed == sorted(observed, reverse=True)
    assert ids(fc(client, world, "alerts")) == [world["alerts"]["south"], world["alerts"]["north"]]


def test_limit(client, world):
    body = fc(client, world, "detections", limit=1)
    assert body["numberReturned"] == 1
    # The newest detection is the alert's own (alerts write one each); the newest overall wins.
    newest = fc(client, world, "detections")["features"][0]["id"]
    assert ids(body) == [newest]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_bbox(client, world, endpoint):
    north_box = "100.3,6.5,100.5,6.7"
    south_box = "101.8,5.7,102.0,5.9"
    north = ids(fc(client, world, endpoint, bbox=north_box))
    south = ids(fc(client, world, endpoint, bbox=south_box))
    if endpoint == "detections":
        d = world["detections"]
        assert d["n1"] in north and d["n2"] in north and d["s1"] not in north
        assert d["s1"] in south and d["n1"] not in south
    else:
        known = world[endpoint]
        assert known["north"] in north and known["south"] not in north
        assert known["south"] in south and known["north"] not in south


def test_time_range(client, world):
    t0, d, a = world["t0"], world["detections"], world["alerts"]
    window = {"start": (t0 + timedelta(minutes=8)).isoformat(), "end": (t0 + timedelta(minutes=12)).isoformat()}
    assert ids(fc(client, world, "detections", **window)) == [d["n2"]]
    later = {"start": (t0 + timedelta(minutes=21)).isoformat().replace("+00:00", "Z")}
    assert ids(fc(client, world, "alerts", **later)) == [a["south"]]
    # Inclusive bounds: a detection exactly at start is in.
    exact = {"start": t0.isoformat(), "end": t0.isoformat()}
    assert ids(fc(client, world, "detections", **exact)) == [d["n1"]]


def test_filters(client, world):
    d, a, s = world["detections"], world["alerts"], world["sensors"]
    by_sensor = ids(fc(client, world, "detections", sensor_id=s["south"]))
    assert d["s1"] in by_sensor and d["n1"] not in by_sensor
    assert ids(fc(client, world, "detections", **{"class": "vehicle"})) == [d["n2"]]
    assert ids(fc(client, world, "alerts", severity="critical")) == [a["south"]]
    assert set(ids(fc(client, world, "alerts", severity=["critical", "high"]))) == {a["north"], a["south"]}
    assert ids(fc(client, world, "alerts", kind="zone_entry")) == [a["south"]]
    assert ids(fc(client, world, "alerts", **{"class": "boat"})) == [a["south"]]
    assert ids(fc(client, world, "alerts", status="closed")) == []
    assert ids(fc(client, world, "sensors", kind="radar")) == [s["south"]]
    segs = ids(fc(client, world, "segments", kind="maritime"))
    assert world["segments"]["south"] in segs and world["segments"]["north"] not in segs
    zones = ids(fc(client, world, "zones", kind="territorial_sea"))
    assert world["zones"]["south"] in zones and world["zones"]["north"] not in zones


def test_simplify_lightens_polygons(client, factory, world):
    # A circle of many vertices around a point.
    import math

    ring = [
        (101.0 + 0.1 * math.cos(2 * math.pi * i / 400), 6.0 + 0.1 * math.sin(2 * math.pi * i / 400)) for i in range(400)
    ]
    ring.append(ring[0])
    wkt = "POLYGON((" + ", ".join(f"{x} {y}" for x, y in ring) + "))"
    zone = factory.zone(world["agency"], wkt=wkt)

    def vertices(**params) -> int:
        feature = next(f for f in fc(client, world, "zones", **params)["features"] if f["id"] == zone)
        return len(feature["geometry"]["coordinates"][0][0])

    assert vertices() == 401
    assert vertices(simplify=0.01) < 50
    seg = fc(client, world, "segments", simplify=0.5)
    assert all(len(f["geometry"]["coordinates"]) >= 2 for f in seg["features"])


@pytest.mark.parametrize(
    "endpoint,params,reason",
    [
        ("alerts", {"bbox": "1,2,3"}, "4 comma-separated numbers"),
        ("alerts", {"bbox": "a,b,c,d"}, "must be numbers"),
        ("sensors", {"bbox": "101,6,100,7"}, "minimum must be less than maximum"),
        ("sensors", {"bbox": "100,6,100,7"}, "minimum must be less than maximum"),
        ("segments", {"bbox": "100,-95,101,7"}, "latitudes"),
        ("zones", {"bbox": "-200,6,101,7"}, "longitudes"),
        ("detections", {"bbox": "nan,6,101,7"}, "finite"),
        ("detections", {"start": "yesterday"}, "RFC 3339"),
        ("detections", {"start": "2026-11-22T07:00:00"}, "time zone"),
        ("detections", {"end": "2026-11-22"}, "RFC 3339"),
        ("alerts", {"start": "2026-11-22T08:00:00Z", "end": "2026-11-22T07:00:00Z"}, "start must not be after end"),
        ("alerts", {"start": "2026-13-40T07:00:00Z"}, "not a valid date-time"),
        ("alerts", {"limit": "0"}, "limit"),
        ("alerts", {"limit": "10001"}, "limit"),
        ("alerts", {"limit": "many"}, "limit"),
        ("alerts", {"severity": "apocalyptic"}, "severity"),
        ("detections", {"class": "dragon"}, "class"),
        ("zones", {"kind": "moat"}, "kind"),
        ("zones", {"simplify": "-1"}, "simplify"),
        ("segments", {"simplify": "inf"}, "simplify"),
    ],
)
def test_bad_parameters_are_422_with_a_reason(client, world, endpoint, params, reason):
    response = get(client, world, endpoint, **params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] in ("invalid_input", "invalid_parameter")
    assert reason in body["message"], body


def test_max_limit_is_accepted(client, world):
    assert fc(client, world, "segments", limit=10000)["numberReturned"] >= 2
