"""A patrol unit's device reads the picture around it (``core.permissions.NEARBY``): detections, alerts,
units and incidents within ``FIELD_RADIUS_M`` of its last position or of the incident it is tasked to,
not its agency's whole store; the control room reads everything."""

from __future__ import annotations

from datetime import timedelta

from tests.factories import TH_LAND, now

API = "/api/v1"
NEAR = (100.43, 6.64)  # about 1.5 km from TH_LAND
FAR = (100.47, 7.0)  # Hat Yai, about 40 km away
ELSEWHERE = (100.75, 6.75)  # about 40 km from both


def ids(client, headers, endpoint: str) -> set[int]:
    r = client.get(f"{API}/{endpoint}", params={"limit": 1000}, headers=headers)
    assert r.status_code == 200, r.text
    return {f["id"] for f in r.json()["features"]}


def incident(client, agency, place) -> int:
    body = {"lon": place[0], "lat": place[1], "title": "landing", "category": "drugs"}
    r = client.post(f"{API}/incidents", json=body, headers=agency.operator_h)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_a_patrol_unit_sees_the_picture_around_it_and_around_its_tasking(client, world, factory):
    a = world.agency("TH")
    unit, device = world.unit(a, TH_LAND, device=True)
    neighbour, _ = world.unit(a, NEAR)
    distant, _ = world.unit(a, ELSEWHERE)
    sensor = factory.sensor(a.code, *TH_LAND)
    t = now() - timedelta(minutes=5)
    det = {place: factory.detection(sensor, a.code, *place, t) for place in (NEAR, FAR, ELSEWHERE)}
    alert = {place: factory.alert(sensor, a.code, *place, t) for place in (NEAR, FAR, ELSEWHERE)}
    world.settle()
    near_incident, far_incident, other_incident = (incident(client, a, p) for p in (NEAR, FAR, ELSEWHERE))

    # The control room: everything.
    assert set(det.values()) <= ids(client, a.operator_h, "detections")
    assert set(alert.values()) <= ids(client, a.operator_h, "alerts")
    assert {unit, neighbour, distant} <= ids(client, a.operator_h, "features/units")

    # The device, before any tasking: what is around it.
    seen = ids(client, device, "detections")
    assert det[NEAR] in seen and det[FAR] not in seen and det[ELSEWHERE] not in seen
    assert ids(client, device, "alerts") == {alert[NEAR]}
    assert ids(client, device, "features/units") == {unit, neighbour}
    assert ids(client, device, "features/incidents") == {near_incident}

    # Tasked to the far incident: its surroundings join the picture, nothing else does.
    r = client.post(f"{API}/incidents/{far_incident}/taskings", json={"unit_id": unit}, headers=a.operator_h)
    assert r.status_code == 201, r.text
    seen = ids(client, device, "detections")
    assert det[NEAR] in seen and det[FAR] in seen and det[ELSEWHERE] not in seen
    assert ids(client, device, "alerts") == {alert[NEAR], alert[FAR]}
    assert ids(client, device, "features/incidents") == {near_incident, far_incident}
    assert other_incident not in ids(client, device, "features/incidents")
    # ... and the incident itself by id; not the others.
    assert client.get(f"{API}/incidents/{far_incident}", headers=device).status_code == 200
    assert client.get(f"{API}/incidents/{near_incident}", headers=device).status_code == 403


def test_a_device_without_a_unit_sees_no_picture(client, world, factory):
    a = world.agency("TH")
    sensor = factory.sensor(a.code, *TH_LAND)
    factory.detection(sensor, a.code, *TH_LAND, now())
    device = factory.headers(factory.user(a.code, role="patrol_unit"))
    world.settle()
    assert ids(client, device, "detections") == set()
    assert ids(client, device, "alerts") == set()
    assert client.get(f"{API}/units", headers=device).json()["items"] == []
    # Shared geography stays whole.
    assert client.get(f"{API}/zones", headers=device).status_code == 200
