"""The browser map pages are the control room's (``core.permissions.MAP_PAGE_READERS``): a patrol
unit's phone or the liaison hotline signed in with the cookie gets 403 with the reason, not the
agency's picture; signing in and out and the static assets stay open."""

from __future__ import annotations

import pytest

from tests.factories import TH_LAND

PAGES = ["/maps/cop", "/maps/overview", "/maps/coverage", "/maps/track?track_key=mmsi:1", "/maps/incident?id={iid}"]


@pytest.fixture
def incident_id(client, world) -> tuple:
    a = world.agency("TH")
    r = client.post(
        "/api/v1/incidents", json={"lon": TH_LAND[0], "lat": TH_LAND[1], "title": "landing"}, headers=a.operator_h
    )
    assert r.status_code == 201, r.text
    return a, r.json()["id"]


@pytest.mark.parametrize("role", ["patrol_unit", "liaison"])
def test_map_pages_refuse_roles_outside_the_control_room(client, world, factory, incident_id, role):
    a, iid = incident_id
    token = factory.token(factory.user(a.code, role=role))
    world.settle()  # a refused request rolls back to here
    client.cookies.set("bw_token", token)
    for page in PAGES:
        r = client.get(page.format(iid=iid), follow_redirects=False)
        assert r.status_code == 403, (page, r.status_code)
        assert r.json()["error"] == "role_not_allowed" and role in r.json()["message"]
    assert client.post("/logout", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("role", ["operator", "supervisor", "admin"])
def test_the_control_room_opens_them(client, factory, incident_id, role):
    a, iid = incident_id
    client.cookies.set("bw_token", factory.token(factory.user(a.code, role=role)))
    for page in ["/maps/cop", "/maps/overview", "/maps/coverage", f"/maps/incident?id={iid}"]:
        assert client.get(page, follow_redirects=False).status_code == 200, page
