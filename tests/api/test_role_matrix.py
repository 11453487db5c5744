"""The access table (``core.permissions.ROUTE_ACCESS``) is complete and holds: every /api/v1 route read
from the OpenAPI document, for every role, by a real request. A role the table allows is not refused
(no 401 or 403); a role it does not name gets 403 with the reason. A new route without an entry
fails here first. A patrol unit's device is allowed its own unit, taskings, incidents and evidence,
and refused the same routes for anyone else's (``patrols.field``)."""

from __future__ import annotations

import hashlib

import pytest

from api.app import create_app
from core.permissions import NEARBY, PUBLIC, ROLES, ROUTE_ACCESS
from tests.factories import TH_LAND

API = "/api/v1"
NOWHERE = 987654321


def _routes() -> list[tuple[str, str]]:
    routes = []
    for path, operations in create_app().openapi()["paths"].items():
        if path.startswith(API):
            routes.extend((method.upper(), path) for method in sorted(operations))
    return routes


ROUTES = _routes()


def test_every_route_has_an_entry_and_every_entry_a_route():
    assert len(ROUTES) > 70
    assert sorted(set(ROUTES) - set(ROUTE_ACCESS)) == [], "routes without an entry in core.permissions.ROUTE_ACCESS"
    assert sorted(set(ROUTE_ACCESS) - set(ROUTES)) == [], "entries for routes that do not exist"
    for route, grant in ROUTE_ACCESS.items():
        assert grant == {PUBLIC: PUBLIC} or set(grant) <= set(ROLES), route


def test_a_patrol_unit_is_refused_the_agency_wide_store():
    """What issue 14 names: a lost phone must not read these."""
    refused = {route for route, grant in ROUTE_ACCESS.items() if "patrol_unit" not in grant}
    for route in [
        ("GET", f"{API}/watchlists"),
        ("GET", f"{API}/watchlists/{{entry_id}}"),
        ("GET", f"{API}/incidents"),
        ("GET", f"{API}/incidents/{{incident_id}}/persons"),
        ("GET", f"{API}/reports/persons"),
        ("GET", f"{API}/audit"),
        ("GET", f"{API}/sensors"),
        ("GET", f"{API}/live"),
        ("GET", f"{API}/cot"),
        ("GET", f"{API}/ogc/collections/{{collection_id}}/items"),
        ("GET", f"{API}/coverage"),
    ]:
        assert route in refused, route
    assert ROUTE_ACCESS[("GET", f"{API}/detections")]["patrol_unit"] == NEARBY


def _evidence(client, headers, incident_id: int) -> int:
    content = b"frame 42"
    r = client.post(
        f"{API}/incidents/{incident_id}/evidence",
        json={
            "kind": "snapshot",
            "description": "camera frame",
            "content_uri": "s3://evidence/frame-42.jpg",
            "content_sha256": hashlib.sha256(content).hexdigest(),
            "content_size": len(content),
            "media_type": "image/jpeg",
            "lon": TH_LAND[0],
            "lat": TH_LAND[1],
            "collected_at": "2026-11-22T03:10:00Z",
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


class Cast:
    """One agency's people (a user of each role) and the things the paths name: the patrol unit's
    own unit, a tasking of it, that tasking's incident and an evidence item of it."""

    def __init__(self, client, world, factory):
        a = world.agency("TH")
        self.unit, unit_h = world.unit(a, TH_LAND, device=True)
        self.other_unit, _ = world.unit(a, TH_LAND)
        self.headers = {
            "admin": a.admin_h,
            "operator": a.operator_h,
            "supervisor": factory.headers(factory.user(a.code, role="supervisor")),
            "liaison": factory.headers(factory.user(a.code, role="liaison")),
            "patrol_unit": unit_h,
        }
        world.settle()

        def incident() -> int:
            body = {"lon": TH_LAND[0], "lat": TH_LAND[1], "title": "landing", "category": "drugs"}
            r = client.post(f"{API}/incidents", json=body, headers=a.operator_h)
            assert r.status_code == 201, r.text
            return r.json()["id"]

        self.incident, self.other_incident = incident(), incident()
        r = client.post(f"{API}/incidents/{self.incident}/taskings", json={"unit_id": self.unit}, headers=a.operator_h)
        assert r.status_code == 201, r.text
        self.tasking = r.json()["id"]
        r = client.post(
            f"{API}/incidents/{self.other_incident}/taskings", json={"unit_id": self.other_unit}, headers=a.operator_h
        )
        assert r.status_code == 201, r.text
        self.other_tasking = r.json()["id"]
        self.item = _evidence(client, a.operator_h, self.incident)
        self.other_item = _evidence(client, a.operator_h, self.other_incident)
        world.settle()

    def path(self, template: str, *, own: bool = True) -> str:
        values = {
            "unit_id": self.unit if own else self.other_unit,
            "incident_id": self.incident if own else self.other_incident,
            "tasking_id": self.tasking if own else self.other_tasking,
            "item_id": self.item if own else self.other_item,
            "collection_id": "alerts",
            "feature_id": NOWHERE,
        }
        return template.format_map({name: values.get(name, NOWHERE) for name in _names(template)})


def _names(template: str) -> list[str]:
    return [part.split("}")[0] for part in template.split("{")[1:]]


@pytest.fixture
def cast(client, world, factory) -> Cast:
    return Cast(client, world, factory)


def _call(client, method: str, path: str, headers: dict):
    # No body: a refusal comes before the body is looked at; an allowed write answers 422 at worst.
    params = {"max_seconds": 1, "interval": 0.2} if path == f"{API}/live" else None
    return client.request(method, path, headers=headers, params=params)


@pytest.mark.parametrize("method,template", [r for r in ROUTES if r != ("POST", f"{API}/auth/token")])
def test_each_role_gets_what_the_table_says(client, cast, method, template):
    grant = ROUTE_ACCESS[(method, template)]
    # The refused roles first: an allowed write may change what the others hold (rotating a unit's
    # credential revokes its device's tokens).
    for role in sorted(ROLES, key=lambda r: r in grant):
        response = _call(client, method, cast.path(template), cast.headers[role])
        if role in grant:
            assert response.status_code not in (401, 403), (role, method, template, response.text[:300])
        else:
            assert response.status_code == 403, (role, method, template, response.status_code, response.text[:300])
            body = response.json()
            assert body["error"] == "role_not_allowed"
            assert role in body["message"] and template in body["message"], body


def test_the_token_endpoint_needs_no_caller(client):
    response = client.post(f"{API}/auth/token", data={"username": "nobody-here", "password": "x" * 12})
    assert response.status_code == 401 and response.json()["error"] == "invalid_credentials"


FIELD_SCOPED = sorted(
    (method, template)
    for (method, template), grant in ROUTE_ACCESS.items()
    if grant.get("patrol_unit") not in (None, "agency", NEARBY) and "{" in template
)


def test_the_field_scoped_routes_are_the_expected_ones():
    assert {t for _, t in FIELD_SCOPED} >= {
        f"{API}/units/{{unit_id}}",
        f"{API}/units/{{unit_id}}/positions",
        f"{API}/incidents/{{incident_id}}",
        f"{API}/taskings/{{tasking_id}}",
        f"{API}/evidence/{{item_id}}",
    }


@pytest.mark.parametrize("method,template", FIELD_SCOPED)
def test_a_patrol_unit_is_refused_what_is_not_its_own(client, cast, method, template):
    """The same routes, naming another unit, a tasking of it, its incident, that incident's evidence."""
    response = _call(client, method, cast.path(template, own=False), cast.headers["patrol_unit"])
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["error"] == "outside_field_scope"
    assert "patrol_unit device reads only" in body["message"]
    # The control room reads both.
    if method == "GET":
        assert _call(client, method, cast.path(template, own=False), cast.headers["operator"]).status_code == 200


def test_a_patrol_unit_lists_only_its_own_unit(client, cast):
    mine = client.get(f"{API}/units", headers=cast.headers["patrol_unit"]).json()["items"]
    assert [u["id"] for u in mine] == [cast.unit]
    everyone = client.get(f"{API}/units", headers=cast.headers["operator"]).json()["items"]
    assert {cast.unit, cast.other_unit} <= {u["id"] for u in everyone}
