"""CSRF: an API call that changes something on the strength of the session cookie alone must carry
the X-CSRF-Token header (the bw_csrf cookie set at sign-in); bearer tokens need none."""

from __future__ import annotations

import re

import pytest

from api.app import create_app
from tests.factories import PASSWORD

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def _changing_routes() -> list[tuple[str, str]]:
    routes = []
    for path, operations in create_app().openapi()["paths"].items():
        if path.startswith("/api/v1") and path != "/api/v1/auth/token":
            routes.extend(
                (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
                for method in sorted(operations)
                if method.upper() in STATE_CHANGING
            )
    return routes


CHANGING = _changing_routes()


def test_the_routes_are_read_from_the_application():
    assert ("POST", "/api/v1/incidents") in CHANGING and ("POST", "/api/v1/auth/logout") in CHANGING
    assert ("DELETE", "/api/v1/admin/gateways/1/credentials") in CHANGING


@pytest.fixture
def signed_in(client, world, factory):
    """A browser session: the cookies /login sets."""
    a = world.agency()
    r = client.post("/login", data={"username": a.admin, "password": PASSWORD})
    assert r.status_code == 303, r.text
    world.settle()
    return a


@pytest.mark.parametrize("method,path", CHANGING)
def test_cookie_without_the_csrf_header_is_refused(client, signed_in, method, path):
    assert client.cookies.get("bw_token") and client.cookies.get("bw_csrf")
    r = client.request(method, path, json={})
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["error"] == "cross_site_request" and "X-CSRF-Token" in body["message"]


@pytest.mark.parametrize("method,path", CHANGING)
def test_cookie_with_a_wrong_csrf_header_is_refused(client, signed_in, method, path):
    r = client.request(method, path, json={}, headers={"X-CSRF-Token": "0" * 64})
    assert r.status_code == 403 and r.json()["error"] == "cross_site_request", r.text


@pytest.mark.parametrize("method,path", CHANGING)
def test_cookie_with_the_csrf_header_and_bearer_tokens_pass_the_check(client, signed_in, method, path):
    csrf = {"X-CSRF-Token": client.cookies.get("bw_csrf")}
    r = client.request(method, path, json={}, headers=csrf)
    assert r.status_code != 403 or r.json()["error"] != "cross_site_request", r.text
    bearer = client.request(method, path, json={}, headers=signed_in.admin_h, cookies={})
    assert bearer.status_code != 403 or bearer.json()["error"] != "cross_site_request", bearer.text


def test_a_csrf_token_is_bound_to_its_user(client, world, factory):
    a = world.agency()
    other = client.post("/login", data={"username": a.operator, "password": PASSWORD})
    assert other.status_code == 303
    operators = client.cookies.get("bw_csrf")
    client.cookies.clear()
    client.post("/login", data={"username": a.admin, "password": PASSWORD})
    world.settle()
    r = client.post(
        "/api/v1/incidents", json={"title": "x", "lon": 100.4, "lat": 6.6}, headers={"X-CSRF-Token": operators}
    )
    assert r.status_code == 403 and r.json()["error"] == "cross_site_request"
    ok = client.post(
        "/api/v1/incidents",
        json={"title": "x", "lon": 100.4, "lat": 6.6},
        headers={"X-CSRF-Token": client.cookies.get("bw_csrf")},
    )
    assert ok.status_code == 201, ok.text


def test_reads_need_no_csrf_header(client, signed_in):
    assert client.get("/api/v1/auth/me").status_code == 200


def test_signing_out_clears_the_csrf_cookie(client, signed_in):
    r = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": client.cookies.get("bw_csrf")})
    assert r.status_code == 204
    assert 'bw_csrf=""' in r.headers.get("set-cookie", "") or "bw_csrf=;" in ",".join(r.headers.get_list("set-cookie"))
