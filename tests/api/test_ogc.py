"""OGC API - Features: documents, links, paging, filters and the agency scope (TestClient on the
rolled-back test transaction; GDAL and OWSLib against a real server are in tests/interop)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.factories import now

BASE = "/api/v1/ogc"


@pytest.fixture
def two_agencies(factory):
    a, b = factory.agency(), factory.agency()
    ua, ub = factory.user(a), factory.user(b)
    return a, b, factory.headers(ua), factory.headers(ub)


def test_every_document_needs_a_token(client):
    for path in (
        "",
        "/conformance",
        "/collections",
        "/collections/alerts",
        "/collections/alerts/items",
        "/collections/alerts/items/1",
    ):
        r = client.get(BASE + path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_landing_conformance_and_collections(client, two_agencies):
    _, _, ha, _ = two_agencies
    landing = client.get(BASE, headers=ha)
    assert landing.status_code == 200
    rels = {link["rel"]: link for link in landing.json()["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(rels)
    assert rels["data"]["href"].endswith("/api/v1/ogc/collections")
    assert rels["service-desc"]["href"].endswith("/openapi.json")
    conf = client.get(rels["conformance"]["href"], headers=ha).json()["conformsTo"]
    assert {c.rsplit("/", 1)[1] for c in conf} == {"core", "geojson", "oas30"}
    docs = client.get(rels["data"]["href"], headers=ha).json()
    ids = [c["id"] for c in docs["collections"]]
    assert ids == ["segments", "zones", "sensors", "detections", "alerts", "incidents", "units"]
    for c in docs["collections"]:
        links = {link["rel"]: link for link in c["links"]}
        assert links["items"]["type"] == "application/geo+json"
        assert links["items"]["href"].endswith(f"/collections/{c['id']}/items")
        one = client.get(links["self"]["href"], headers=ha)
        assert one.status_code == 200 and one.json()["id"] == c["id"]
    missing = client.get(f"{BASE}/collections/people", headers=ha)
    assert missing.status_code == 404 and missing.json()["error"] == "collection_not_found"


def test_items_are_scoped_to_the_callers_agency(client, factory, two_agencies):
    a, b, ha, hb = two_agencies
    sa, sb = factory.sensor(a, 100.42, 6.63), factory.sensor(b, 100.43, 6.64)
    alert_a = factory.alert(sa, a, 100.42, 6.63, now())
    alert_b = factory.alert(sb, b, 100.43, 6.64, now())
    zone_b = factory.zone(b)
    for collection, mine, theirs in [("alerts", alert_a, alert_b), ("sensors", sa, sb)]:
        body = client.get(f"{BASE}/collections/{collection}/items?limit=10000", headers=ha).json()
        ids = {f["id"] for f in body["features"]}
        assert mine in ids and theirs not in ids, collection
        assert client.get(f"{BASE}/collections/{collection}/items/{theirs}", headers=ha).status_code == 404
        own = client.get(f"{BASE}/collections/{collection}/items/{mine}", headers=ha)
        assert own.status_code == 200 and own.headers["content-type"] == "application/geo+json"
        assert own.json()["id"] == mine and own.json()["type"] == "Feature"
    zones_a = {
        f["id"] for f in client.get(f"{BASE}/collections/zones/items?limit=10000", headers=ha).json()["features"]
    }
    zones_b = {
        f["id"] for f in client.get(f"{BASE}/collections/zones/items?limit=10000", headers=hb).json()["features"]
    }
    assert zone_b in zones_b and zone_b not in zones_a


def test_next_links_page_through_every_feature_once(client, factory, two_agencies):
    a, _, ha, _ = two_agencies
    sensor = factory.sensor(a, 100.42, 6.63)
    t0 = now() - timedelta(hours=1)
    expected = [factory.detection(sensor, a, 100.42 + i * 1e-4, 6.63, t0 + timedelta(minutes=i)) for i in range(7)]
    url, seen, pages = f"{BASE}/collections/detections/items?limit=3", [], 0
    while url:
        r = client.get(url, headers=ha)
        assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
        body = r.json()
        assert body["type"] == "FeatureCollection" and body["numberReturned"] == len(body["features"]) <= 3
        seen += [f["id"] for f in body["features"]]
        links = {link["rel"]: link for link in body["links"]}
        assert links["self"]["type"] == "application/geo+json" and "collection" in links
        url = links.get("next", {}).get("href")
        if pages == 0:
            # A detection added while the client pages must not shift the pages it has not read yet.
            expected.append(factory.detection(sensor, a, 100.5, 6.63, t0))
        pages += 1
    assert seen == sorted(expected) and pages == 3


def test_datetime_instant_and_intervals_with_open_ends(client, factory, two_agencies):
    a, _, ha, _ = two_agencies
    sensor = factory.sensor(a, 100.42, 6.63)
    t0 = now().replace(microsecond=0) - timedelta(days=1)
    ids = [factory.detection(sensor, a, 100.42, 6.63, t0 + timedelta(hours=h)) for h in range(4)]

    def fetch(value: str) -> list[int]:
        r = client.get(f"{BASE}/collections/detections/items", params={"datetime": value, "limit": 100}, headers=ha)
        assert r.status_code == 200, r.text
        return sorted(f["id"] for f in r.json()["features"])

    iso = lambda h: (t0 + timedelta(hours=h)).isoformat().replace("+00:00", "Z")  # noqa: E731
    assert fetch(iso(1)) == [ids[1]]
    assert fetch(f"{iso(1)}/{iso(2)}") == ids[1:3]
    assert fetch(f"{iso(2)}/..") == ids[2:]
    assert fetch(f"../{iso(1)}") == ids[:2]
    assert fetch(f"/{iso(0)}") == ids[:1]
    for bad in (f"{iso(2)}/{iso(1)}", "yesterday", "..", f"{iso(0)}/{iso(1)}/{iso(2)}"):
        r = client.get(f"{BASE}/collections/detections/items", params={"datetime": bad}, headers=ha)
        assert r.status_code == 400 and r.json()["details"]["parameter"] == "datetime", bad


def test_bbox_limit_cursor_and_unknown_parameters(client, factory, two_agencies):
    a, _, ha, _ = two_agencies
    inside, outside = factory.sensor(a, 100.42, 6.63), factory.sensor(a, 101.5, 6.9)
    r = client.get(f"{BASE}/collections/sensors/items", params={"bbox": "100.4,6.6,100.5,6.7"}, headers=ha)
    ids = {f["id"] for f in r.json()["features"]}
    assert inside in ids and outside not in ids
    r3d = client.get(f"{BASE}/collections/sensors/items", params={"bbox": "100.4,6.6,0,100.5,6.7,10"}, headers=ha)
    assert {f["id"] for f in r3d.json()["features"]} == ids
    for params, name in [
        ({"bbox": "1,2,3"}, "bbox"),
        ({"limit": "0"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"cursor": "bm9wZQ"}, "cursor"),
        ({"cursor": "WyJhIl0"}, "cursor"),
    ]:
        r = client.get(f"{BASE}/collections/detections/items", params=params, headers=ha)
        assert r.status_code == 400 and r.json()["details"]["parameter"] == name, params
    r = client.get(f"{BASE}/collections/detections/items", params={"colour": "red"}, headers=ha)
    assert r.status_code == 400 and "colour" in r.json()["message"]
    big = client.get(f"{BASE}/collections/segments/items", params={"limit": "999999"}, headers=ha)
    assert big.status_code == 200
    nxt = [link for link in big.json()["links"] if link["rel"] == "next"]
    assert not nxt or parse_qs(urlsplit(nxt[0]["href"]).query)["limit"] == ["10000"]
    assert client.get(f"{BASE}/collections/detections/items/abc", headers=ha).status_code == 404


def test_units_and_incidents_follow_the_patrol_scope(client, factory, two_agencies, db):
    from core.security import Principal
    from patrols import incidents, schemas, units

    a, b, ha, hb = two_agencies
    admin_b = factory.user(b, role="admin")
    principal_b = Principal(username=admin_b, agency_code=b, role="admin")
    unit = units.create_unit(
        session=db,
        principal=principal_b,
        unit_in=schemas.UnitCreate(
            callsign="BRAVO1", kind="land", cruising_speed_kmh=50, home_lon=100.42, home_lat=6.63
        ),
    )
    incident = incidents.create_incident(
        session=db,
        principal=principal_b,
        incident_in=schemas.IncidentCreate(title="Fence cut", category="drugs", priority="high", lon=100.42, lat=6.63),
    )
    for collection, fid in (("units", unit.id), ("incidents", incident.id)):
        theirs = client.get(f"{BASE}/collections/{collection}/items/{fid}", headers=hb)
        assert theirs.status_code == 200 and theirs.json()["geometry"]["type"] == "Point"
        assert client.get(f"{BASE}/collections/{collection}/items/{fid}", headers=ha).status_code == 404
        listed = client.get(f"{BASE}/collections/{collection}/items?limit=10000", headers=ha).json()
        assert fid not in {f["id"] for f in listed["features"]}
    assert (
        client.get(f"{BASE}/collections/units/items/{unit.id}", headers=hb).json()["properties"]["callsign"] == "BRAVO1"
    )
