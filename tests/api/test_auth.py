"""Health, the token flow, and that every /api/v1 endpoint refuses callers without a valid token."""

from __future__ import annotations

import secrets
from datetime import timedelta

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from api.app import create_app
from api.deps import get_session
from tests.factories import PASSWORD, now


def _protected_routes() -> list[tuple[str, str]]:
    """Every /api/v1 route except the token endpoint itself, read from the application."""
    routes = []
    for path, operations in create_app().openapi()["paths"].items():
        if path.startswith("/api/v1") and path != "/api/v1/auth/token":
            routes.extend((method.upper(), path) for method in sorted(operations))
    return routes


PROTECTED = _protected_routes()


def test_protected_routes_cover_every_feature_endpoint():
    paths = {path for _, path in PROTECTED}
    assert {
        "/api/v1/auth/me",
        "/api/v1/segments",
        "/api/v1/zones",
        "/api/v1/sensors",
        "/api/v1/detections",
        "/api/v1/alerts",
    } <= paths


def test_every_patrol_route_is_in_the_token_checks():
    """This module sends missing, garbage, expired, forged, alg-none and wrong-issuer tokens
    to every route it reads from the application; the patrol routes must be among them."""
    paths = {path for _, path in PROTECTED}
    expected = {
        "/api/v1/units",
        "/api/v1/units/{unit_id}",
        "/api/v1/units/{unit_id}/status",
        "/api/v1/units/{unit_id}/positions",
        "/api/v1/units/{unit_id}/credentials",
        "/api/v1/units/{unit_id}/taskings",
        "/api/v1/incidents",
        "/api/v1/incidents/{incident_id}",
        "/api/v1/incidents/{incident_id}/timeline",
        "/api/v1/incidents/{incident_id}/notes",
        "/api/v1/incidents/{incident_id}/status",
        "/api/v1/incidents/{incident_id}/recommendation",
        "/api/v1/incidents/{incident_id}/taskings",
        "/api/v1/taskings/{tasking_id}",
        "/api/v1/taskings/{tasking_id}/accept",
        "/api/v1/taskings/{tasking_id}/decline",
        "/api/v1/joint-patrols",
        "/api/v1/joint-patrols/{patrol_id}",
        "/api/v1/coverage",
        "/api/v1/coverage/gaps",
        "/api/v1/live",
    }
    assert expected <= paths, expected - paths


def test_health_needs_no_token(client: TestClient):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_health_reports_a_dead_database_as_503(app):
    dead = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2})

    def dead_session():
        with Session(dead) as s:
            yield s

    app.dependency_overrides[get_session] = dead_session
    with TestClient(app) as c:
        response = c.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "unavailable"}


def _expired(factory, username: str, secret: str) -> str:
    from accounts import service

    user = service.get_user(session=factory.session, username=username)
    iat = now() - timedelta(hours=2)
    claims = {
        "sub": user.username,
        "agency": user.agency_code,
        "role": user.role,
        "iss": "borderwatch",
        "iat": int(iat.timestamp()),
        "exp": int((iat + timedelta(minutes=60)).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def _foreign(factory, username: str, secret: str) -> str:
    from accounts import service

    user = service.get_user(session=factory.session, username=username)
    claims = {
        "sub": user.username,
        "agency": user.agency_code,
        "role": user.role,
        "iss": "borderwatch",
        "iat": int(now().timestamp()),
        "exp": int((now() + timedelta(minutes=60)).timestamp()),
    }
    return jwt.encode(claims, secrets.token_urlsafe(48), algorithm="HS256")


def _unsigned(factory, username: str, secret: str) -> str:
    from accounts import service

    user = service.get_user(session=factory.session, username=username)
    claims = {
        "sub": user.username,
        "agency": user.agency_code,
        "role": "admin",
        "iss": "borderwatch",
        "iat": int(now().timestamp()),
        "exp": int((now() + timedelta(minutes=60)).timestamp()),
    }
    return jwt.encode(claims, None, algorithm="none")


def _wrong_issuer(factory, username: str, secret: str) -> str:
    from accounts import service

    user = service.get_user(session=factory.session, username=username)
    claims = {
        "sub": user.username,
        "agency": user.agency_code,
        "role": user.role,
        "iss": "someone-else",
        "iat": int(now().timestamp()),
        "exp": int((now() + timedelta(minutes=60)).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


BAD_TOKENS = {
    "missing": None,
    "garbage": lambda f, u, s: "not.a.jwt",
    "expired": _expired,
    "other-secret": _foreign,
    "alg-none": _unsigned,
    "wrong-issuer": _wrong_issuer,
}


@pytest.mark.parametrize("method,path", PROTECTED)
@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_api_refuses_bad_credentials(client, factory, jwt_secret, method, path, kind):
    username = factory.user(factory.agency())
    make = BAD_TOKENS[kind]
    headers = {} if make is None else {"Authorization": f"Bearer {make(factory, username, jwt_secret)}"}
    response = client.request(method, path, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert set(body) == {"error", "message", "details"}
    expected = {"missing": "not_authenticated", "expired": "token_expired"}.get(kind, "invalid_token")
    assert body["error"] == expected


@pytest.mark.parametrize("method,path", PROTECTED)
def test_api_refuses_a_bad_cookie(client, method, path):
    client.cookies.set("bw_token", "not.a.jwt")
    response = client.request(method, path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_token_flow(client, factory):
    agency = factory.agency()
    username = factory.user(agency, role="supervisor")
    response = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json() == {"username": username, "agency_code": agency, "role": "supervisor"}


def test_token_claims(client, factory, jwt_secret):
    agency = factory.agency()
    username = factory.user(agency)
    token = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD}).json()["access_token"]
    claims = jwt.decode(token, jwt_secret, algorithms=["HS256"], issuer="borderwatch")
    assert claims["sub"] == username and claims["agency"] == agency and claims["role"] == "operator"
    assert claims["exp"] - claims["iat"] == 3600


def test_cookie_authenticates_api_requests(client, factory):
    username = factory.user(factory.agency())
    client.cookies.set("bw_token", factory.token(username))
    assert client.get("/api/v1/auth/me").json()["username"] == username


@pytest.mark.parametrize("who", ["wrong-password", "unknown-user", "inactive-user"])
def test_token_refused(client, factory, who):
    agency = factory.agency()
    username = factory.user(agency, active=who != "inactive-user")
    form = {"username": username, "password": PASSWORD}
    if who == "wrong-password":
        form["password"] = "not the right password"
    elif who == "unknown-user":
        form["username"] = "nobody-" + username
    response = client.post("/api/v1/auth/token", data=form)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    # The same answer whichever way it failed: no hint that the user exists.
    assert response.json() == {"error": "invalid_credentials", "message": "invalid username or password", "details": {}}


def test_token_form_fields_are_required(client):
    response = client.post("/api/v1/auth/token", data={"username": "x"})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_input"
    assert "password" in body["message"]


def test_deactivated_user_token_stops_working(client, factory, db):
    from accounts import service

    username = factory.user(factory.agency())
    headers = factory.headers(username)
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    service.get_user(session=db, username=username).active = False
    db.flush()
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_short_secret_is_a_configuration_error(client, factory, monkeypatch):
    from core.settings import get_settings

    username = factory.user(factory.agency())
    monkeypatch.setenv("BW_JWT_SECRET", "too-short")
    get_settings.cache_clear()
    response = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 500
    assert response.json()["error"] == "configuration_error"
    # The reason is for the operator's log, not for the client.
    assert "BW_JWT_SECRET" not in response.text


def test_unknown_path_has_the_error_shape(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_openapi_declares_bearer_security(client):
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "Borderwatch"
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from POST /api/v1/auth/token.",
    }
    assert spec["paths"]["/api/v1/alerts"]["get"]["security"] == [{"bearerAuth": []}]
    assert "security" not in spec["paths"]["/health"]["get"]
