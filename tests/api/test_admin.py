"""The admin API: disabling, enabling and resetting users of the admin's own agency, and withdrawing
or rotating gateway and unit broker credentials (checked against the real broker)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from core.settings import REPO_ROOT
from tests.conftest import broker_accepts, detection, mosquitto_pub, wait_for, wait_for_broker_login
from tests.factories import PASSWORD, TH_LAND

API = "/api/v1"
NEW_PASSWORD = "a brand new passphrase"


def _audit(db, entity_type: str, entity_id: str) -> list[tuple[str, str]]:
    rows = db.execute(
        text("SELECT action, actor FROM audit_log WHERE entity_type = :t AND entity_id = :i ORDER BY seq"),
        {"t": entity_type, "i": str(entity_id)},
    )
    return [(r.action, r.actor) for r in rows]


def _token(client, username: str, password: str = PASSWORD):
    return client.post(f"{API}/auth/token", data={"username": username, "password": password})


def test_an_admin_disables_and_enables_a_user_of_their_agency(client, world, factory, db):
    a = world.agency()
    target = factory.user(a.code)
    headers = factory.headers(target)
    assert client.get(f"{API}/auth/me", headers=headers).status_code == 200

    r = client.post(f"{API}/admin/users/{target}/disable", headers=a.admin_h)
    assert r.status_code == 200, r.text
    assert r.json() == {"username": target, "agency_code": a.code, "role": "operator", "active": False}
    assert client.get(f"{API}/auth/me", headers=headers).status_code == 401
    assert _token(client, target).status_code == 401

    r = client.post(f"{API}/admin/users/{target}/enable", headers=a.admin_h)
    assert r.status_code == 200 and r.json()["active"] is True
    assert client.get(f"{API}/auth/me", headers=headers).status_code == 401  # old tokens stay revoked
    assert _token(client, target).status_code == 200
    assert _audit(db, "user", target)[-2:] == [("user.disable", a.admin), ("user.enable", a.admin)]


def test_an_admin_resets_a_password_and_the_old_tokens_die(client, world, factory, db):
    a = world.agency()
    target = factory.user(a.code)
    headers = factory.headers(target)
    r = client.post(f"{API}/admin/users/{target}/password", json={"password": NEW_PASSWORD}, headers=a.admin_h)
    assert r.status_code == 204, r.text
    assert client.get(f"{API}/auth/me", headers=headers).json()["error"] == "token_revoked"
    assert _token(client, target).status_code == 401
    assert _token(client, target, NEW_PASSWORD).status_code == 200
    assert _audit(db, "user", target)[-1] == ("user.password", a.admin)
    world.settle()
    short = client.post(f"{API}/admin/users/{target}/password", json={"password": "short"}, headers=a.admin_h)
    assert short.status_code == 422 and short.json()["details"]["field"] == "password"


@pytest.mark.parametrize("role", ["supervisor", "operator", "patrol_unit", "liaison"])
def test_only_admins_manage_users(client, world, factory, role):
    a = world.agency()
    target = factory.user(a.code)
    caller = factory.headers(factory.user(a.code, role=role))
    world.settle()
    for path, body in (("disable", None), ("enable", None), ("password", {"password": NEW_PASSWORD})):
        r = client.post(f"{API}/admin/users/{target}/{path}", json=body, headers=caller)
        assert r.status_code == 403, r.text
    assert _token(client, target).status_code == 200


def test_an_admin_cannot_reach_another_agencys_users(client, world, factory):
    a, b = world.agency(), world.agency()
    theirs = factory.user(b.code)
    world.settle()
    for path, body in (("disable", None), ("enable", None), ("password", {"password": NEW_PASSWORD})):
        r = client.post(f"{API}/admin/users/{theirs}/{path}", json=body, headers=a.admin_h)
        assert r.status_code == 404, r.text
        assert b.code not in r.text
    assert _token(client, theirs).status_code == 200


def test_an_admin_cannot_disable_themselves(client, world):
    a = world.agency()
    r = client.post(f"{API}/admin/users/{a.admin}/disable", headers=a.admin_h)
    assert r.status_code == 409, r.text
    assert client.get(f"{API}/auth/me", headers=a.admin_h).status_code == 200


def _admin_of(factory, agency: str) -> dict[str, str]:
    headers = factory.headers(factory.user(agency, role="admin"))
    factory.session.commit()
    return headers


def test_a_revoked_gateway_can_no_longer_connect_or_publish(client, factory, db, settings, make_gateway):
    gw = make_gateway()
    admin = _admin_of(factory, gw.agency)
    sensor_id = next(iter(gw.sensors))
    topic = f"{settings.mqtt_topic_root}/gw/{gw.agency}/{gw.id}/detections"
    assert mosquitto_pub(settings, gw, topic, detection(sensor_id, *TH_LAND)).returncode == 0

    r = client.delete(f"{API}/admin/gateways/{gw.id}/credentials", headers=admin)
    assert r.status_code == 204, r.text
    wait_for(lambda: not broker_accepts(settings, gw.id, gw.password), timeout=10)
    refused = mosquitto_pub(settings, gw, topic, detection(sensor_id, *TH_LAND))
    assert refused.returncode != 0
    assert b"not authori" in refused.stderr.lower() or b"refused" in refused.stderr.lower(), refused.stderr
    assert _audit(db, "gateway", gw.id)[-1][0] == "gateway.credential.revoke"


def test_a_rotated_gateway_works_with_the_new_password_only(client, factory, db, settings, make_gateway):
    gw = make_gateway()
    admin = _admin_of(factory, gw.agency)
    r = client.post(f"{API}/admin/gateways/{gw.id}/credentials", headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["gateway_id"] == body["mqtt_username"] == gw.id and body["mqtt_password"] != gw.password
    wait_for_broker_login(settings, gw.id, body["mqtt_password"])
    assert not broker_accepts(settings, gw.id, gw.password)
    rotated = type(gw)(gw.id, gw.agency, body["mqtt_password"], gw.sensors)
    topic = f"{settings.mqtt_topic_root}/gw/{gw.agency}/{gw.id}/detections"
    assert mosquitto_pub(settings, rotated, topic, detection(next(iter(gw.sensors)), *TH_LAND)).returncode == 0
    assert _audit(db, "gateway", gw.id)[-1][0] == "gateway.credential.rotate"


def test_gateway_credentials_are_for_admins_of_its_agency(client, world, factory, make_gateway):
    gw = make_gateway()
    other = world.agency()
    supervisor = factory.headers(factory.user(gw.agency, role="supervisor"))
    world.settle()
    for headers in (other.admin_h, supervisor):
        for method in ("POST", "DELETE"):
            r = client.request(method, f"{API}/admin/gateways/{gw.id}/credentials", headers=headers)
            assert r.status_code in (403, 404), r.text
    assert client.post(f"{API}/admin/gateways/{gw.id}/credentials", headers=other.admin_h).status_code == 404


def test_rotating_or_revoking_a_unit_device_revokes_its_tokens(client, world, settings, db):
    a = world.agency()
    unit_id, device = world.unit(a, TH_LAND, device=True)
    first = client.put(f"{API}/units/{unit_id}/credentials", headers=a.admin_h).json()
    # Issuing the first credential leaves the device signed in; replacing it signs the device out.
    assert client.get(f"{API}/auth/me", headers=device).status_code == 200
    second = client.put(f"{API}/units/{unit_id}/credentials", headers=a.admin_h).json()
    assert client.get(f"{API}/auth/me", headers=device).json()["error"] == "token_revoked"
    wait_for_broker_login(settings, second["mqtt_username"], second["mqtt_password"])
    assert not broker_accepts(settings, first["mqtt_username"], first["mqtt_password"])

    unit_user = db.execute(text("SELECT username FROM patrol_units WHERE id = :i"), {"i": unit_id}).scalar_one()
    fresh = {"Authorization": f"Bearer {_token(client, unit_user).json()['access_token']}"}
    r = client.delete(f"{API}/units/{unit_id}/credentials", headers=a.admin_h)
    assert r.status_code == 204, r.text
    assert client.get(f"{API}/auth/me", headers=fresh).json()["error"] == "token_revoked"
    wait_for(lambda: not broker_accepts(settings, second["mqtt_username"], second["mqtt_password"]), timeout=10)
    assert [a for a, _ in _audit(db, "unit", unit_id)][-2:] == ["unit.credential", "unit.credential.revoke"]
    # A device may not withdraw credentials, nor may an operator.
    assert client.delete(f"{API}/units/{unit_id}/credentials", headers=a.operator_h).status_code == 403


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_gateway_rotate_and_revoke_commands(settings, make_gateway, engine):
    gw = make_gateway()
    rotated = _cli("gateways", "rotate", gw.id)
    assert rotated.returncode == 0, rotated.stderr
    password = rotated.stdout.strip().splitlines()[-1]
    wait_for_broker_login(settings, gw.id, password)
    assert not broker_accepts(settings, gw.id, gw.password)

    revoked = _cli("gateway", "revoke", gw.id)
    assert revoked.returncode == 0, revoked.stderr
    wait_for(lambda: not broker_accepts(settings, gw.id, password), timeout=10)
    with engine.connect() as conn:
        actions = conn.execute(
            text("SELECT action, actor FROM audit_log WHERE entity_type = 'gateway' AND entity_id = :g ORDER BY seq"),
            {"g": gw.id},
        ).all()
    assert [a for a, _ in actions] == ["gateway.credential.rotate", "gateway.credential.revoke"]
    assert all(actor.startswith("cli:") for _, actor in actions)

    unknown = _cli("gateway", "revoke", "no-such-gateway")
    assert unknown.returncode == 1 and "does not exist" in unknown.stdout + unknown.stderr
