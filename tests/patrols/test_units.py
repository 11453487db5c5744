"""Patrol units: registration, the status machine, position batches that a resend cannot double."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from tests.factories import TH_LAND, now

API = "/api/v1"


def unit_body(**overrides):
    body = {
        "callsign": "Sadao 1",
        "kind": "land",
        "capabilities": ["k9", "night_vision"],
        "cruising_speed_kmh": 60,
        "home_lon": TH_LAND[0],
        "home_lat": TH_LAND[1],
    }
    body.update(overrides)
    return body


def test_create_unit(client, world):
    a = world.agency()
    r = client.post(f"{API}/units", json=unit_body(), headers=a.admin_h)
    assert r.status_code == 201, r.text
    unit = r.json()
    assert unit["agency_code"] == a.code and unit["status"] == "available"
    assert unit["geometry"] == {"type": "Point", "coordinates": [TH_LAND[0], TH_LAND[1]]}
    assert unit["capabilities"] == ["k9", "night_vision"]
    assert client.get(f"{API}/units/{unit['id']}", headers=a.operator_h).json()["callsign"] == "Sadao 1"
    # Same callsign in the same agency: refused with the reason.
    again = client.post(f"{API}/units", json=unit_body(), headers=a.admin_h)
    assert again.status_code == 409 and "callsign" in again.json()["message"]


def test_operators_and_liaisons_cannot_register_units(client, world, factory):
    a = world.agency()
    assert client.post(f"{API}/units", json=unit_body(), headers=a.operator_h).status_code == 403
    liaison = factory.headers(factory.user(a.code, role="liaison"))
    assert client.post(f"{API}/units", json=unit_body(), headers=liaison).status_code == 403


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "submarine"},
        {"cruising_speed_kmh": 0},
        {"home_lat": 91},
        {"callsign": ""},
        {"capabilities": ["Bad Cap"]},
    ],
)
def test_bad_unit_input_is_422(client, world, bad):
    a = world.agency()
    r = client.post(f"{API}/units", json=unit_body(**bad), headers=a.admin_h)
    assert r.status_code == 422 and r.json()["error"] == "invalid_input"


def test_device_user_must_be_a_patrol_unit_of_the_agency(client, world, factory):
    a, b = world.agency(), world.agency("MY")
    assert client.post(f"{API}/units", json=unit_body(username=a.operator), headers=a.admin_h).status_code == 422
    foreign = factory.user(b.code, role="patrol_unit")
    assert client.post(f"{API}/units", json=unit_body(username=foreign), headers=a.admin_h).status_code == 422


def set_status(client, unit_id, status, headers):
    return client.put(f"{API}/units/{unit_id}/status", json={"status": status}, headers=headers)


def test_status_machine_full_cycle_and_off_duty(client, world):
    a = world.agency()
    unit_id, device = world.unit(a, TH_LAND, device=True)
    for status in ("en_route", "on_scene", "returning", "available", "off_duty", "available"):
        r = set_status(client, unit_id, status, device)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == status


@pytest.mark.parametrize(
    "path,illegal",
    [
        ((), "on_scene"),
        ((), "returning"),
        (("en_route",), "returning"),
        (("en_route",), "off_duty"),
        (("en_route", "on_scene"), "available"),
        (("off_duty",), "en_route"),
    ],
)
def test_illegal_transitions_are_409_with_a_reason(client, world, path, illegal):
    a = world.agency()
    unit_id, device = world.unit(a, TH_LAND, device=True)
    for status in path:
        assert set_status(client, unit_id, status, device).status_code == 200
    before = client.get(f"{API}/units/{unit_id}", headers=device).json()
    r = set_status(client, unit_id, illegal, device)
    assert r.status_code == 409
    body = r.json()
    assert body["error"] == "illegal_transition" and illegal in body["message"]
    assert body["details"]["status"] == before["status"] and body["details"]["allowed"]
    assert client.get(f"{API}/units/{unit_id}", headers=device).json()["version"] == before["version"]


def test_a_device_reports_only_for_its_own_unit(client, world):
    a = world.agency()
    unit_1, device_1 = world.unit(a, TH_LAND, device=True)
    unit_2, _ = world.unit(a, TH_LAND, device=True)
    assert set_status(client, unit_2, "en_route", device_1).status_code == 403
    r = client.post(f"{API}/units/{unit_2}/positions", json=batch(1), headers=device_1)
    assert r.status_code == 403


def batch(n: int, *, start: int = 0, lon: float = 100.40, lat: float = 6.60, minutes_ago: int = 30) -> dict:
    t0 = now() - timedelta(minutes=minutes_ago)
    return {
        "positions": [
            {
                "client_id": f"fix-{i}",
                "observed_at": (t0 + timedelta(seconds=10 * i)).isoformat(),
                "lon": lon + i * 0.001,
                "lat": lat,
                "speed_kmh": 30,
                "heading_deg": 90,
            }
            for i in range(start, start + n)
        ]
    }


def test_position_batch_then_resend_changes_nothing(client, world, db):
    a = world.agency()
    unit_id, device = world.unit(a, TH_LAND, device=True)
    first = client.post(f"{API}/units/{unit_id}/positions", json=batch(50), headers=device)
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 50, "stored": 50, "duplicates": 0, "position_updated": True}
    unit = client.get(f"{API}/units/{unit_id}", headers=device).json()
    assert unit["geometry"]["coordinates"] == [pytest.approx(100.40 + 49 * 0.001), 6.6]

    resent = client.post(f"{API}/units/{unit_id}/positions", json=batch(50), headers=device)
    assert resent.json() == {"received": 50, "stored": 0, "duplicates": 50, "position_updated": False}
    assert client.get(f"{API}/units/{unit_id}", headers=device).json() == unit
    count = db.execute(text("SELECT count(*) FROM unit_positions WHERE unit_id = :u"), {"u": unit_id}).scalar()
    assert count == 50

    # A backlog that overlaps: only the new reports are stored; an older fix never moves the unit back.
    overlap = client.post(f"{API}/units/{unit_id}/positions", json=batch(20, start=40), headers=device)
    assert overlap.json() == {"received": 20, "stored": 10, "duplicates": 10, "position_updated": True}
    old = batch(1, start=900, lon=101.0, minutes_ago=600)
    assert client.post(f"{API}/units/{unit_id}/positions", json=old, headers=device).json()["position_updated"] is False
    latest = client.get(f"{API}/units/{unit_id}", headers=device).json()["geometry"]["coordinates"]
    assert latest == [pytest.approx(100.40 + 59 * 0.001), 6.6]


def test_position_history_is_geojson(client, world):
    a = world.agency()
    unit_id, device = world.unit(a, TH_LAND, device=True)
    client.post(f"{API}/units/{unit_id}/positions", json=batch(5), headers=device)
    r = client.get(f"{API}/units/{unit_id}/positions", headers=a.operator_h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and fc["numberReturned"] == 5
    assert [f["properties"]["client_id"] for f in fc["features"]] == [f"fix-{i}" for i in (4, 3, 2, 1, 0)]


@pytest.mark.parametrize(
    "bad",
    [
        {"positions": []},
        {"positions": [{"client_id": "x", "observed_at": "2026-01-01T00:00:00", "lon": 100, "lat": 6}]},
        {"positions": [{"client_id": "x", "observed_at": "2026-01-01T00:00:00Z", "lon": 200, "lat": 6}]},
        {"positions": [{"client_id": "", "observed_at": "2026-01-01T00:00:00Z", "lon": 100, "lat": 6}]},
    ],
)
def test_bad_position_batches_are_422(client, world, bad):
    a = world.agency()
    unit_id, device = world.unit(a, TH_LAND, device=True)
    assert client.post(f"{API}/units/{unit_id}/positions", json=bad, headers=device).status_code == 422


def test_positions_from_the_future_or_the_distant_past_are_refused_whole(client, world, db):
    a = world.agency()
    unit_id, device = world.unit(a, TH_LAND, device=True)
    good = batch(2)["positions"]
    future = {"client_id": "future", "observed_at": (now() + timedelta(hours=1)).isoformat(), "lon": 100.4, "lat": 6.6}
    r = client.post(f"{API}/units/{unit_id}/positions", json={"positions": good + [future]}, headers=device)
    assert r.status_code == 422 and "future" in r.json()["message"]
    stale = {**future, "observed_at": (now() - timedelta(days=40)).isoformat()}
    assert (
        client.post(f"{API}/units/{unit_id}/positions", json={"positions": [stale]}, headers=device).status_code == 422
    )
    assert db.execute(text("SELECT count(*) FROM unit_positions WHERE unit_id = :u"), {"u": unit_id}).scalar() == 0
