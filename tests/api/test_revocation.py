"""Token revocation: a logout, a password change or disabling the user makes every token issued
to that user invalid at once; `borderwatch disable-user`, `enable-user` and `reset-password`."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import text

from accounts import service
from core.permissions import ROLES
from core.settings import REPO_ROOT
from tests.factories import PASSWORD

ME = "/api/v1/auth/me"


def _sign_in(client, username: str, password: str = PASSWORD) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _refused(client, headers) -> str:
    r = client.get(ME, headers=headers)
    assert r.status_code == 401, r.text
    return r.json()["error"]


def _audit(db, username: str) -> list[tuple[str, str]]:
    return [
        (r.action, r.actor)
        for r in db.execute(
            text("SELECT action, actor FROM audit_log WHERE entity_type = 'user' AND entity_id = :u ORDER BY seq"),
            {"u": username},
        )
    ]


def test_logout_revokes_every_token_of_the_user(client, factory, db):
    username = factory.user(factory.agency())
    phone, laptop = _sign_in(client, username), _sign_in(client, username)
    assert client.get(ME, headers=laptop).status_code == 200
    r = client.post("/api/v1/auth/logout", headers=phone)
    assert r.status_code == 204
    assert _refused(client, phone) == "token_revoked"
    assert _refused(client, laptop) == "token_revoked"
    # Signing in again gives a token that works.
    assert client.get(ME, headers=_sign_in(client, username)).status_code == 200
    assert _audit(db, username)[-1] == ("user.logout", username)


@pytest.mark.parametrize("role", ROLES)
def test_every_role_may_sign_itself_out_and_no_one_else(client, factory, role):
    """Logout revokes the caller's own tokens, whatever the role; another user's stay valid."""
    agency = factory.agency()
    username, bystander = factory.user(agency, role=role), factory.user(agency, role="admin")
    mine, theirs = factory.headers(username), factory.headers(bystander)
    assert client.post("/api/v1/auth/logout", headers=mine).status_code == 204
    assert _refused(client, mine) == "token_revoked"
    assert client.get(ME, headers=theirs).status_code == 200


def test_logout_needs_a_valid_token(client, factory):
    assert client.post("/api/v1/auth/logout").status_code == 401
    username = factory.user(factory.agency())
    headers = factory.headers(username)
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    # A revoked token cannot sign out again (nor move the generation on for someone else).
    r = client.post("/api/v1/auth/logout", headers=headers)
    assert r.status_code == 401 and r.json()["error"] == "token_revoked"


def test_a_password_change_revokes_the_tokens(client, factory, db):
    username = factory.user(factory.agency())
    headers = _sign_in(client, username)
    factory_token = factory.headers(username)
    service.set_password(session=db, username=username, password="a brand new long password", actor="cli:root")
    db.commit()  # kept: a refused request rolls back to here
    assert _refused(client, headers) == "token_revoked"
    assert _refused(client, factory_token) == "token_revoked"
    assert client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD}).status_code == 401
    assert client.get(ME, headers=_sign_in(client, username, "a brand new long password")).status_code == 200


def test_disabling_revokes_and_enabling_does_not_bring_old_tokens_back(client, factory, db):
    username = factory.user(factory.agency())
    old = _sign_in(client, username)
    service.disable_user(session=db, username=username, actor="cli:root")
    db.commit()  # kept: a refused request rolls back to here
    assert _refused(client, old) == "invalid_token"
    assert client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD}).status_code == 401
    service.enable_user(session=db, username=username, actor="cli:root")
    db.commit()  # kept: a refused request rolls back to here
    assert _refused(client, old) == "token_revoked"
    assert client.get(ME, headers=_sign_in(client, username)).status_code == 200
    assert _audit(db, username)[-2:] == [("user.disable", "cli:root"), ("user.enable", "cli:root")]


def test_the_logout_page_revokes_the_cookie_token(client, factory):
    username = factory.user(factory.agency())
    assert client.post("/login", data={"username": username, "password": PASSWORD}).status_code == 303
    token = client.cookies["bw_token"]
    assert client.post("/logout").status_code == 303
    assert _refused(client, {"Authorization": f"Bearer {token}"}) == "token_revoked"


def test_a_forged_generation_is_refused(client, factory, jwt_secret):
    import jwt

    username = factory.user(factory.agency())
    claims = jwt.decode(_sign_in(client, username)["Authorization"][7:], jwt_secret, algorithms=["HS256"])
    for gen in (-1, "1", 1.5, 7):
        forged = jwt.encode({**claims, "gen": gen}, jwt_secret, algorithm="HS256")
        assert _refused(client, {"Authorization": f"Bearer {forged}"}) in ("invalid_token", "token_revoked")


# -- the commands ------------------------------------------------------------------------------
def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.mark.parametrize("command", ["disable-user", "enable-user", "reset-password"])
def test_commands_have_help(command):
    r = _cli(command, "--help")
    assert r.returncode == 0 and "USERNAME" in r.stdout.upper()


def test_commands_disable_enable_and_reset_password(engine):
    from core.db import session_scope
    from core.security import issue_token

    agency = f"TH-C{uuid.uuid4().hex[:8].upper()}"
    username = f"cli-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as s:
        service.create_agency(session=s, code=agency, country="TH", name="Command test")
        user = service.create_user(
            session=s, username=username, agency_code=agency, role="operator", password=secrets.token_urlsafe(16)
        )
        token = issue_token(service.principal_of(user)).token

    def valid(t: str) -> bool:
        from core.errors import NotAuthenticated

        with session_scope(engine) as s:
            try:
                service.resolve_principal(session=s, token=t)
                return True
            except NotAuthenticated:
                return False

    assert valid(token)
    r = _cli("disable-user", username)
    assert r.returncode == 0, r.stderr
    assert not valid(token)
    assert _cli("enable-user", username).returncode == 0
    new_password = "a long enough new password"
    r = _cli("reset-password", username, "--password-stdin", stdin=new_password + "\n")
    assert r.returncode == 0, r.stderr
    with session_scope(engine) as s:
        principal = service.authenticate(session=s, username=username, password=new_password)
        assert principal.token_generation == 2
        actions = _audit(s, username)
    assert [a for a, _ in actions] == ["user.create", "user.disable", "user.enable", "user.password"]
    assert all(actor.startswith("cli:") for _, actor in actions[1:])
    for command in ("disable-user", "enable-user"):
        r = _cli(command, "nobody-" + username)
        assert r.returncode == 1 and "does not exist" in r.stderr, (command, r.stderr)
    r = _cli("reset-password", "nobody-" + username, "--password-stdin", stdin=new_password + "\n")
    assert r.returncode == 1 and "does not exist" in r.stderr
    # A password the policy refuses is named as such, and changes nothing.
    r = _cli("reset-password", username, "--password-stdin", stdin="short\n")
    assert r.returncode == 1 and r.stderr.strip(), r
    with session_scope(engine) as s:
        assert service.get_user(session=s, username=username).token_generation == 2
