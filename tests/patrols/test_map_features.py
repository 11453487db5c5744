"""The patrol layers as GeoJSON FeatureCollections (the maps' units, incidents, joint patrol
routes, hand-over points and segment coverage): feature ids, timeStamp, bbox, limit, and the
same agency scope as the JSON endpoints."""

from __future__ import annotations

from tests.factories import HIGH_SEA, TH_LAND, now
from tests.patrols.test_joint_patrols import plan

API = "/api/v1"


def _ids(r) -> list:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["timeStamp"].endswith("Z")
    return [f["id"] for f in body["features"]]


def test_units_and_incidents_as_features_are_scoped(client, world, factory):
    a, b = world.agency("TH"), world.agency("TH")
    unit, device = world.unit(a, TH_LAND, kind="land", device=True)
    other, _ = world.unit(b, TH_LAND)
    r = client.get(f"{API}/features/units", headers=a.operator_h)
    assert _ids(r) == [unit]
    props = r.json()["features"][0]["properties"]
    assert props["kind"] == "land" and props["status"] == "available" and props["incident_id"] is None
    assert r.json()["features"][0]["geometry"] == {"type": "Point", "coordinates": list(TH_LAND)}
    assert _ids(client.get(f"{API}/features/units", headers=b.operator_h)) == [other]
    # bbox and filters
    assert _ids(client.get(f"{API}/features/units", params={"bbox": "99,2,99.5,3"}, headers=a.operator_h)) == []
    assert _ids(client.get(f"{API}/features/units", params={"kind": "air"}, headers=a.operator_h)) == []
    assert client.get(f"{API}/features/units", params={"status": "flying"}, headers=a.operator_h).status_code == 422
    assert client.get(f"{API}/features/units", params={"bbox": "1,2,3"}, headers=a.operator_h).status_code == 422
    assert client.get(f"{API}/features/units").status_code == 401

    r = client.post(
        f"{API}/incidents",
        json={"title": "Boat landing", "lon": TH_LAND[0], "lat": TH_LAND[1], "priority": "high"},
        headers=a.operator_h,
    )
    incident = r.json()["id"]
    assert (
        client.post(f"{API}/incidents/{incident}/taskings", json={"unit_id": unit}, headers=a.operator_h).status_code
        == 201
    )
    r = client.get(f"{API}/features/incidents", params={"status": ["new", "assigned"]}, headers=a.operator_h)
    assert _ids(r) == [incident]
    props = r.json()["features"][0]["properties"]
    assert props["priority"] == "high" and props["status"] == "assigned" and len(props["tasked_units"]) == 1
    assert _ids(client.get(f"{API}/features/incidents", headers=b.operator_h)) == []
    assert _ids(client.get(f"{API}/features/incidents", params={"status": "closed"}, headers=a.operator_h)) == []
    # The tasked unit carries its incident (the popup's link).
    units = client.get(f"{API}/features/units", headers=a.operator_h).json()["features"]
    assert units[0]["properties"]["incident_id"] == incident and units[0]["properties"]["tasking_id"]


def test_joint_patrol_routes_and_handover_points_as_features(client, sector):  # noqa: F811
    a, b, c = sector["a"], sector["b"], sector["c"]
    patrol = client.post(f"{API}/joint-patrols", json=plan(sector), headers=a.admin_h).json()
    for h in (a.operator_h, b.operator_h):
        r = client.get(f"{API}/features/joint-patrol-routes", headers=h)
        assert _ids(r) == [patrol["id"]]
        f = r.json()["features"][0]
        assert f["geometry"]["type"] == "LineString" and f["properties"]["handover_points"] == 1
        r = client.get(f"{API}/features/handover-points", headers=h)
        assert len(_ids(r)) == 1 and r.json()["features"][0]["properties"]["name"] == "HP-1"
    assert _ids(client.get(f"{API}/features/joint-patrol-routes", headers=c.operator_h)) == []
    assert _ids(client.get(f"{API}/features/handover-points", headers=c.operator_h)) == []
    far = {"bbox": f"{HIGH_SEA[0] + 2},{HIGH_SEA[1] + 2},{HIGH_SEA[0] + 3},{HIGH_SEA[1] + 3}"}
    assert _ids(client.get(f"{API}/features/handover-points", params=far, headers=a.operator_h)) == []


def test_segment_coverage_as_features_marks_the_gaps(client, world):
    a = world.agency("TH")
    unit, device = world.unit(a, TH_LAND, device=True)
    # A pass along the land border at Sadao (within the buffer strip).
    report = {"positions": [{"client_id": "c1", "observed_at": now().isoformat(), "lon": 100.4205, "lat": 6.5065}]}
    assert client.post(f"{API}/units/{unit}/positions", json=report, headers=device).status_code == 200
    r = client.get(f"{API}/features/segment-coverage", params={"hours": 24}, headers=a.operator_h)
    features = r.json()["features"]
    assert len(_ids(r)) >= 2
    patrolled = [f for f in features if not f["properties"]["gap"]]
    assert patrolled and all(f["properties"]["last_unit_id"] == unit for f in patrolled)
    assert all(f["properties"]["coverage"] == "gap" for f in features if f["properties"]["gap"])
    gaps = client.get(f"{API}/features/segment-coverage", params={"gaps": True}, headers=a.operator_h).json()
    assert {f["id"] for f in gaps["features"]} == {f["id"] for f in features if f["properties"]["gap"]}
    # The JSON coverage endpoint agrees.
    json_gaps = client.get(f"{API}/coverage/gaps", params={"hours": 24}, headers=a.operator_h).json()
    assert {s["segment_id"] for s in json_gaps["segments"]} == {f["id"] for f in gaps["features"]}
