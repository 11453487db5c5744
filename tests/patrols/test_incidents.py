"""Incidents: promoted from alerts or opened by hand, with a timeline of who did what and when."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from tests.factories import HIGH_SEA, TH_LAND, TH_SEA, now

API = "/api/v1"


def alert_at(factory, agency: str, place: tuple[float, float], **kw) -> int:
    sensor = factory.sensor(agency, *place)
    return factory.alert(sensor, agency, place[0], place[1], now() - timedelta(minutes=5), **kw)


def test_incident_from_alerts(client, world, factory, db):
    a = world.agency()
    first, second = alert_at(factory, a.code, TH_LAND, title="crossing at Sadao"), alert_at(factory, a.code, TH_LAND)
    world.settle()
    r = client.post(
        f"{API}/incidents",
        json={
            "alert_ids": [first, second],
            "category": "people_smuggling",
            "priority": "high",
            "note": "two alerts, same group",
        },
        headers=a.operator_h,
    )
    assert r.status_code == 201, r.text
    incident = r.json()
    assert incident["title"] == "crossing at Sadao" and incident["status"] == "new"
    assert incident["alert_ids"] == sorted([first, second])
    assert incident["domain"] == "land" and incident["state"] == "TH"
    assert incident["geometry"]["coordinates"] == list(TH_LAND)
    statuses = (
        db.execute(text("SELECT DISTINCT status FROM alerts WHERE id IN (:a, :b)"), {"a": first, "b": second})
        .scalars()
        .all()
    )
    assert statuses == ["incident"]
    timeline = client.get(f"{API}/incidents/{incident['id']}/timeline", headers=a.operator_h).json()["entries"]
    assert [e["kind"] for e in timeline] == ["created", "alert_linked", "alert_linked"]
    assert timeline[0]["actor"] == a.operator and timeline[0]["note"] == "two alerts, same group"
    assert {e["details"]["alert_id"] for e in timeline[1:]} == {first, second}


def test_an_alert_belongs_to_one_incident(client, world, factory):
    a = world.agency()
    alert = alert_at(factory, a.code, TH_LAND)
    world.settle()
    assert client.post(f"{API}/incidents", json={"alert_ids": [alert]}, headers=a.operator_h).status_code == 201
    again = client.post(f"{API}/incidents", json={"alert_ids": [alert]}, headers=a.operator_h)
    assert again.status_code == 409 and str(alert) in again.json()["message"]


def test_another_agencys_alert_cannot_be_promoted(client, world, factory):
    a, b = world.agency(), world.agency("MY")
    theirs = alert_at(factory, b.code, TH_LAND)
    world.settle()
    r = client.post(f"{API}/incidents", json={"alert_ids": [theirs]}, headers=a.operator_h)
    assert r.status_code == 404 and r.json()["details"]["alert_ids"] == [theirs]


@pytest.mark.parametrize(
    "place,domain,state", [(TH_LAND, "land", "TH"), (TH_SEA, "maritime", "TH"), (HIGH_SEA, "maritime", None)]
)
def test_incident_by_hand_knows_land_from_sea(client, world, place, domain, state):
    a = world.agency()
    r = client.post(
        f"{API}/incidents",
        json={"title": "boat seen", "category": "drugs", "lon": place[0], "lat": place[1]},
        headers=a.operator_h,
    )
    assert r.status_code == 201, r.text
    assert (r.json()["domain"], r.json()["state"]) == (domain, state)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"lon": 100.4},
        {"lon": 100.4, "lat": 6.6},
        {"alert_ids": [1, 1]},
        {"title": "x", "lon": 100, "lat": 6, "category": "tax_fraud"},
        {"title": "x", "lon": 100, "lat": 6, "priority": "urgent"},
    ],
)
def test_bad_incident_input_is_422(client, world, body):
    a = world.agency()
    assert client.post(f"{API}/incidents", json=body, headers=a.operator_h).status_code == 422


def test_notes_and_closing_go_into_the_timeline(client, world):
    a = world.agency()
    incident = client.post(
        f"{API}/incidents",
        json={"title": "vehicle at the fence", "lon": TH_LAND[0], "lat": TH_LAND[1]},
        headers=a.operator_h,
    ).json()
    note = client.post(
        f"{API}/incidents/{incident['id']}/notes", json={"note": "camera 4 lost it"}, headers=a.operator_h
    )
    assert note.status_code == 201
    closed = client.put(
        f"{API}/incidents/{incident['id']}/status", json={"status": "false_alarm", "note": "goats"}, headers=a.admin_h
    )
    assert closed.status_code == 200 and closed.json()["status"] == "false_alarm" and closed.json()["closed_at"]
    reopen = client.put(f"{API}/incidents/{incident['id']}/status", json={"status": "resolved"}, headers=a.admin_h)
    assert reopen.status_code == 409
    entries = client.get(f"{API}/incidents/{incident['id']}/timeline", headers=a.operator_h).json()["entries"]
    assert [(e["kind"], e["actor"], e["status_to"], e["note"]) for e in entries] == [
        ("created", a.operator, "new", None),
        ("note", a.operator, None, "camera 4 lost it"),
        ("status", a.admin, "false_alarm", "goats"),
    ]


def test_liaisons_and_units_cannot_open_incidents(client, world, factory):
    a = world.agency()
    for role in ("liaison", "patrol_unit"):
        headers = factory.headers(factory.user(a.code, role=role))
        r = client.post(f"{API}/incidents", json={"title": "x", "lon": 100.4, "lat": 6.6}, headers=headers)
        assert r.status_code == 403
