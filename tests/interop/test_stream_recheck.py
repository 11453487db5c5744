"""Long-lived streams look at their caller again every BW_STREAM_RECHECK_S seconds: the live feed
(SSE, through a real server) ends with an `end` event naming the reason, the CoT TCP stream
(`borderwatch cot-serve`) closes, once the token has expired or been revoked, or the user has been
disabled, deleted, or given another role or agency."""

from __future__ import annotations

import secrets
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx
import orjson
import pytest
from sqlalchemy import text

from tests.conftest import run_api_server
from tests.interop.cot_process import cot_serve

RECHECK = {"BW_STREAM_RECHECK_S": "0.5"}


@pytest.fixture(scope="module")
def server(engine):
    with run_api_server("api-streams.log", RECHECK) as s:
        yield s


@dataclass
class Caller:
    agency: str
    username: str
    token: str


@pytest.fixture
def caller(engine) -> Iterator[Caller]:
    """A committed agency and operator with a token (committed: the server has its own connections)."""
    from accounts import service
    from core.db import session_scope
    from core.security import issue_token

    agency = f"TH-S{uuid.uuid4().hex[:8].upper()}"
    username = f"op-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as s:
        service.create_agency(session=s, code=agency, country="TH", name=f"Stream test {agency}")
        user = service.create_user(
            session=s, username=username, agency_code=agency, role="operator", password=secrets.token_urlsafe(16)
        )
        token = issue_token(service.principal_of(user)).token
    yield Caller(agency, username, token)


def _short_lived_token(username: str) -> str:
    """A token that expires two seconds from now."""
    from accounts import service
    from core.db import session_scope
    from core.security import issue_token

    with session_scope() as s:
        principal = service.principal_of(service.get_user(session=s, username=username))
    return issue_token(principal, now=datetime.now(timezone.utc) - timedelta(minutes=60) + timedelta(seconds=3)).token


def _change(caller: Caller, how: str) -> None:
    from accounts import service
    from core.db import session_scope

    with session_scope() as s:
        if how == "disabled":
            service.disable_user(session=s, username=caller.username)
        elif how == "logout":
            service.revoke_tokens(session=s, username=caller.username)
        elif how == "password":
            service.set_password(session=s, username=caller.username, password="another long password")
        elif how == "role":
            s.execute(text("UPDATE users SET role = 'liaison' WHERE username = :u"), {"u": caller.username})
        elif how == "agency":
            other = f"TH-S{uuid.uuid4().hex[:8].upper()}"
            service.create_agency(session=s, code=other, country="TH", name="Other stream agency")
            s.execute(text("UPDATE users SET agency_code = :a WHERE username = :u"), {"a": other, "u": caller.username})
        elif how == "deleted":
            s.execute(text("DELETE FROM users WHERE username = :u"), {"u": caller.username})


def _events(response) -> Iterator[tuple[str | None, dict | None]]:
    current: dict = {}
    for line in response.iter_lines():
        if line == "":
            if current:
                yield current.get("event"), current.get("data")
            current = {}
        elif line.startswith("event: "):
            current["event"] = line[7:]
        elif line.startswith("data: "):
            current["data"] = orjson.loads(line[6:])


REASONS = {
    "disabled": "user_disabled",
    "logout": "token_revoked",
    "password": "token_revoked",
    "role": "role_changed",
    "agency": "agency_changed",
    "deleted": "user_deleted",
    "expired": "token_expired",
}


@pytest.mark.parametrize("how", list(REASONS))
def test_the_live_feed_ends_with_the_reason(server, caller, how):
    token = _short_lived_token(caller.username) if how == "expired" else caller.token
    with httpx.stream(
        "GET",
        f"{server.base_url}/api/v1/live",
        params={"max_seconds": 20, "interval": 0.2},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as r:
        assert r.status_code == 200, r.read()
        events = _events(r)
        assert next(events)[0] == "ready"
        if how != "expired":
            _change(caller, how)
        changed = time.monotonic()
        received = list(events)
    assert received, "the stream ended without a word"
    kind, data = received[-1]
    assert kind == "end", received[-3:]
    assert data["reason"] == REASONS[how] and data["message"]
    # Within a few looks, far from the 20 s the stream was asked for.
    assert time.monotonic() - changed < 10


def test_a_valid_caller_keeps_the_feed_to_its_end(server, caller):
    with httpx.stream(
        "GET",
        f"{server.base_url}/api/v1/live",
        params={"max_seconds": 2, "interval": 0.2},
        headers={"Authorization": f"Bearer {caller.token}"},
        timeout=30,
    ) as r:
        kinds = [kind for kind, _ in _events(r)]
    assert kinds[0] == "ready" and "end" not in kinds


@pytest.fixture
def cot_stream(engine) -> Iterator[int]:
    with cot_serve("cot-serve-recheck", RECHECK) as port:
        yield port


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection within ``seconds`` (whatever it sends before)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if sock.recv(65536) == b"":
                return True
        except socket.timeout:
            return False
    return False


@pytest.mark.parametrize("how", ["disabled", "logout", "password", "role", "deleted"])
def test_the_cot_stream_closes(cot_stream, caller, how):
    with socket.create_connection(("127.0.0.1", cot_stream), timeout=10) as sock:
        sock.sendall(caller.token.encode() + b"\n")
        # Still open while the caller may read.
        assert not _closed_within(sock, 1.5)
        _change(caller, how)
        assert _closed_within(sock, 10)


def test_the_cot_stream_closes_when_the_token_expires(cot_stream, caller):
    with socket.create_connection(("127.0.0.1", cot_stream), timeout=10) as sock:
        sock.sendall(_short_lived_token(caller.username).encode() + b"\n")
        assert not _closed_within(sock, 1)
        assert _closed_within(sock, 10)
