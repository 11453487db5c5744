"""Dispatch: eligible units ranked by ETA (domain, authority, availability), taskings, and the whole
flow alert → incident → recommendation → tasking → accepted → on scene → resolved → available."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import text

from core.vocabulary import INCIDENT_CATEGORIES
from patrols import dispatch, schemas
from patrols import units as unit_service
from tests.factories import HIGH_SEA, MY_LAND, TH_LAND, TH_SEA, now

API = "/api/v1"


def incident_at(client, agency, place, **kw) -> dict:
    body = {"title": "contact", "lon": place[0], "lat": place[1], **kw}
    r = client.post(f"{API}/incidents", json=body, headers=agency.operator_h)
    assert r.status_code == 201, r.text
    return r.json()


def recommend(client, agency, incident_id, **params) -> dict:
    r = client.get(f"{API}/incidents/{incident_id}/recommendation", params=params, headers=agency.operator_h)
    assert r.status_code == 200, r.text
    return r.json()


def offset(place, dlat_km: float) -> tuple[float, float]:
    return place[0], place[1] + dlat_km / 111.32


def test_ranked_by_eta_with_the_detour_factor_on_land(client, world):
    a = world.agency()
    slow_near, _ = world.unit(a, offset(TH_LAND, 5), kind="land", speed=20)  # 5 km × 1.4 / 20 km/h = 21 min
    fast_far, _ = world.unit(a, offset(TH_LAND, 20), kind="land", speed=120)  # 20 km × 1.4 / 120 = 14 min
    air, _ = world.unit(a, offset(TH_LAND, 50), kind="air", speed=300)  # 50 km / 300 = 10 min
    incident = incident_at(client, a, TH_LAND)
    rec = recommend(client, a, incident["id"])
    assert [u["unit_id"] for u in rec["units"]] == [air, fast_far, slow_near]
    assert rec["incident_domain"] == "land" and rec["land_detour_factor"] == 1.4 and "1.4" in rec["eta_method"]
    by_id = {u["unit_id"]: u for u in rec["units"]}
    assert by_id[slow_near]["distance_m"] == pytest.approx(5000, rel=0.01)
    assert by_id[slow_near]["travel_distance_m"] == pytest.approx(by_id[slow_near]["distance_m"] * 1.4, rel=1e-3)
    assert by_id[air]["travel_distance_m"] == pytest.approx(by_id[air]["distance_m"], rel=1e-6)
    assert by_id[slow_near]["eta_s"] == pytest.approx(5 * 1.4 / 20 * 3600, rel=0.01)
    assert all(u["authority"] == "own_state" for u in rec["units"])
    assert [u["unit_id"] for u in recommend(client, a, incident["id"], limit=1)["units"]] == [air]


def test_at_sea_straight_line_and_never_a_land_unit(client, world):
    a = world.agency()
    coast_land, _ = world.unit(a, offset(TH_SEA, 2), kind="land", speed=200)
    boat, _ = world.unit(a, offset(TH_SEA, 30), kind="maritime", speed=40)
    incident = incident_at(client, a, TH_SEA)
    rec = recommend(client, a, incident["id"])
    assert rec["incident_domain"] == "maritime" and rec["eligible_kinds"] == ["maritime", "air"]
    assert [u["unit_id"] for u in rec["units"]] == [boat]
    assert rec["units"][0]["travel_distance_m"] == rec["units"][0]["distance_m"]
    r = client.post(f"{API}/incidents/{incident['id']}/taskings", json={"unit_id": coast_land}, headers=a.operator_h)
    assert r.status_code == 409 and "land unit cannot serve a maritime incident" in r.json()["message"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_fleets_only_eligible_units_in_eta_order(client, world, seed):
    """Whatever the fleet: only available units of the right domain and agency, in ETA order."""
    rng = random.Random(seed)
    a, b = world.agency(), world.agency("MY")
    units = {}
    for _ in range(40):
        owner = rng.choice([a, a, b])
        place = (TH_SEA[0] + rng.uniform(-0.5, 0.5), TH_SEA[1] + rng.uniform(-0.5, 0.5))
        kind = rng.choice(["land", "maritime", "air"])
        unit_id, _ = world.unit(owner, place, kind=kind, speed=rng.uniform(10, 400))
        units[unit_id] = (owner.code, kind)
        if rng.random() < 0.3:
            unit_service.change_unit_status(
                session=world.session,
                principal=owner.principal,
                unit_id=unit_id,
                change=schemas.StatusChange(status="off_duty"),
            )
            units[unit_id] = (owner.code, kind, "off_duty")
    world.settle()
    incident = incident_at(client, a, TH_SEA)
    rec = recommend(client, a, incident["id"], limit=50)
    expected = {u for u, info in units.items() if info[0] == a.code and info[1] != "land" and len(info) == 2}
    assert {u["unit_id"] for u in rec["units"]} == expected
    etas = [u["eta_s"] for u in rec["units"]]
    assert etas == sorted(etas)


def test_never_outside_the_agencys_authority(client, world):
    a, b = world.agency("TH"), world.agency("MY")
    theirs, _ = world.unit(b, offset(TH_LAND, 1), kind="land")  # Malaysian unit next to a Thai incident
    mine_abroad, _ = world.unit(a, MY_LAND, kind="land")  # Thai unit standing in Malaysia
    incident = incident_at(client, a, TH_LAND)
    assert [u["unit_id"] for u in recommend(client, a, incident["id"])["units"]] == [mine_abroad]
    r = client.post(f"{API}/incidents/{incident['id']}/taskings", json={"unit_id": theirs}, headers=a.operator_h)
    assert r.status_code == 404
    # A Thai incident on Malaysian soil: no Thai unit has authority there.
    abroad = incident_at(client, a, MY_LAND)
    assert recommend(client, a, abroad["id"])["units"] == []
    r = client.post(f"{API}/incidents/{abroad['id']}/taskings", json={"unit_id": mine_abroad}, headers=a.operator_h)
    assert r.status_code == 409 and "no authority" in r.json()["message"]


def test_joint_sector_partners_are_recommended_outsiders_never(client, world, factory):
    a, b, c = world.agency("TH"), world.agency("MY"), world.agency("ID")
    box = (HIGH_SEA[0] - 0.5, HIGH_SEA[1] - 0.5, HIGH_SEA[0] + 0.5, HIGH_SEA[1] + 0.5)
    sector = factory.zone(b.code, members=[a.code, b.code], kind="joint_patrol_sector", box=box)
    world.settle()
    # The sector's members release their incidents inside it to each other by agreement.
    agreement = client.post(
        f"{API}/sharing/agreements",
        headers=a.admin_h,
        json={
            "to_sector_zone_id": sector,
            "incident_categories": list(INCIDENT_CATEGORIES),
            "zone_ids": [sector],
            "purpose": "joint patrol sector coordination",
        },
    )
    assert agreement.status_code == 201, agreement.text
    partner_boat, _ = world.unit(b, offset(HIGH_SEA, 10), kind="maritime", speed=50)
    outsider_boat, _ = world.unit(c, offset(HIGH_SEA, 1), kind="maritime", speed=50)
    own_boat, _ = world.unit(a, offset(HIGH_SEA, 40), kind="maritime", speed=50)
    incident = incident_at(client, a, HIGH_SEA)
    rec = recommend(client, a, incident["id"])
    assert [(u["unit_id"], u["authority"]) for u in rec["units"]] == [
        (partner_boat, "joint_sector"),
        (own_boat, "joint_sector"),
    ]
    assert outsider_boat not in {u["unit_id"] for u in rec["units"]}
    # The partner unit can be tasked; its own agency sees the tasking and answers it.
    tasking = client.post(
        f"{API}/incidents/{incident['id']}/taskings", json={"unit_id": partner_boat}, headers=a.operator_h
    )
    assert tasking.status_code == 201, tasking.text
    assert tasking.json()["unit_agency_code"] == b.code
    accepted = client.post(f"{API}/taskings/{tasking.json()['id']}/accept", headers=b.operator_h)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    # The incident lies in the sector the agreement releases to its members: the partner sees it; an outsider not.
    assert client.get(f"{API}/incidents/{incident['id']}", headers=b.operator_h).status_code == 200
    assert client.get(f"{API}/incidents/{incident['id']}", headers=c.operator_h).status_code == 404
    # Outside every sector the partner sees nothing of it.
    on_land = incident_at(client, a, TH_LAND)
    assert client.get(f"{API}/incidents/{on_land['id']}", headers=b.operator_h).status_code == 404


def test_nearest_neighbour_search_uses_the_gist_index(db, world):
    a = world.agency()
    world.unit(a, TH_LAND)
    db.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        db.execute(
            text("EXPLAIN " + dispatch.NEAREST_ELIGIBLE.text),
            {
                "kinds": ["land"],
                "agencies": [a.code],
                "unit": None,
                "lon": TH_LAND[0],
                "lat": TH_LAND[1],
                "detour": 1.4,
                "candidates": 64,
                "limit": 10,
            },
        ).scalars()
    )
    assert "Index Scan using ix_patrol_units_available_geom" in plan
    assert "Order By: (geom <->" in plan


def status_of(client, headers, what: str, id_: int) -> str:
    return client.get(f"{API}/{what}/{id_}", headers=headers).json()["status"]


def test_end_to_end_alert_to_available_again(client, world, factory):
    a = world.agency()
    sensor = factory.sensor(a.code, *TH_LAND)
    alert = factory.alert(sensor, a.code, TH_LAND[0], TH_LAND[1], now() - timedelta(minutes=2))
    unit_id, device = world.unit(a, offset(TH_LAND, 8), kind="land", speed=60, device=True)
    world.unit(a, offset(TH_LAND, 30), kind="land", speed=60)

    incident = client.post(
        f"{API}/incidents",
        json={"alert_ids": [alert], "category": "people_smuggling", "priority": "high"},
        headers=a.operator_h,
    ).json()
    best = recommend(client, a, incident["id"])["units"][0]
    assert best["unit_id"] == unit_id
    tasking = client.post(
        f"{API}/incidents/{incident['id']}/taskings", json={"unit_id": unit_id, "note": "go"}, headers=a.operator_h
    ).json()
    assert tasking["status"] == "assigned" and tasking["eta_s"] == pytest.approx(best["eta_s"], rel=1e-3)
    assert status_of(client, a.operator_h, "incidents", incident["id"]) == "assigned"
    # Tasked units are not recommended again.
    assert unit_id not in {u["unit_id"] for u in recommend(client, a, incident["id"])["units"]}

    accepted = client.post(f"{API}/taskings/{tasking['id']}/accept", headers=device)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    unit_after = client.get(f"{API}/units/{unit_id}", headers=device).json()
    assert unit_after["status"] == "en_route"
    assert status_of(client, a.operator_h, "incidents", incident["id"]) == "en_route"
    # A resent acceptance (the phone retried) changes nothing.
    again = client.post(f"{API}/taskings/{tasking['id']}/accept", headers=device)
    assert again.status_code == 200 and again.json() == accepted.json()
    assert client.get(f"{API}/units/{unit_id}", headers=device).json() == unit_after

    assert client.put(f"{API}/units/{unit_id}/status", json={"status": "on_scene"}, headers=device).status_code == 200
    assert status_of(client, a.operator_h, "incidents", incident["id"]) == "on_scene"
    resolved = client.put(
        f"{API}/incidents/{incident['id']}/status", json={"status": "resolved", "note": "3 held"}, headers=a.operator_h
    )
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    assert status_of(client, device, "units", unit_id) == "available"
    assert status_of(client, device, "taskings", tasking["id"]) == "completed"
    assert unit_id in {u["unit_id"] for u in recommend(client, a, incident_at(client, a, TH_LAND)["id"])["units"]}

    entries = client.get(f"{API}/incidents/{incident['id']}/timeline", headers=a.operator_h).json()["entries"]
    assert [(e["kind"], e["status_to"]) for e in entries] == [
        ("created", "new"),
        ("alert_linked", None),
        ("tasking", "assigned"),
        ("status", "assigned"),
        ("tasking", "accepted"),
        ("status", "en_route"),
        ("status", "on_scene"),
        ("status", "resolved"),
        ("tasking", "completed"),
    ]
    assert entries[4]["actor"] == device_user(client, device)


def device_user(client, headers) -> str:
    return client.get(f"{API}/auth/me", headers=headers).json()["username"]


def test_decline_returns_the_incident_to_new(client, world):
    a = world.agency()
    first, device = world.unit(a, offset(TH_LAND, 3), device=True)
    second, _ = world.unit(a, offset(TH_LAND, 6))
    incident = incident_at(client, a, TH_LAND)
    tasking = client.post(
        f"{API}/incidents/{incident['id']}/taskings", json={"unit_id": first}, headers=a.operator_h
    ).json()
    declined = client.post(f"{API}/taskings/{tasking['id']}/decline", json={"note": "flat tyre"}, headers=device)
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    assert client.post(f"{API}/taskings/{tasking['id']}/decline", headers=device).json() == declined.json()
    assert client.post(f"{API}/taskings/{tasking['id']}/accept", headers=device).status_code == 409
    assert status_of(client, a.operator_h, "incidents", incident["id"]) == "new"
    assert status_of(client, device, "units", first) == "available"
    assert (
        client.post(
            f"{API}/incidents/{incident['id']}/taskings", json={"unit_id": second}, headers=a.operator_h
        ).status_code
        == 201
    )


def test_busy_units_and_closed_incidents_refuse_taskings(client, world):
    a = world.agency()
    unit_id, device = world.unit(a, TH_LAND, device=True)
    one, two = incident_at(client, a, TH_LAND), incident_at(client, a, TH_LAND)
    assert (
        client.post(
            f"{API}/incidents/{one['id']}/taskings", json={"unit_id": unit_id}, headers=a.operator_h
        ).status_code
        == 201
    )
    busy = client.post(f"{API}/incidents/{two['id']}/taskings", json={"unit_id": unit_id}, headers=a.operator_h)
    assert busy.status_code == 409 and busy.json()["error"] == "unit_not_eligible"
    off = client.put(f"{API}/units/{unit_id}/status", json={"status": "off_duty"}, headers=device)
    assert off.status_code == 409 and "open tasking" in off.json()["message"]
    client.put(f"{API}/incidents/{two['id']}/status", json={"status": "closed"}, headers=a.operator_h)
    closed = client.post(f"{API}/incidents/{two['id']}/taskings", json={"unit_id": unit_id}, headers=a.operator_h)
    assert closed.status_code == 409 and "closed" in closed.json()["message"]
    nothing = client.get(f"{API}/incidents/{two['id']}/recommendation", headers=a.operator_h)
    assert nothing.status_code == 409 and "closed" in nothing.json()["message"]
    # Closing the first frees the unit (the tasking was never accepted: cancelled).
    client.put(f"{API}/incidents/{one['id']}/status", json={"status": "closed"}, headers=a.operator_h)
    tasks = client.get(f"{API}/incidents/{one['id']}/taskings", headers=a.operator_h).json()
    assert [t["status"] for t in tasks] == ["cancelled"]
