"""Per-user caps on open streams: the live feed answers 429 with the reason beyond
BW_LIVE_MAX_STREAMS_PER_USER, cot-serve closes a connection beyond BW_COT_MAX_STREAMS_PER_USER;
a closed stream gives its place back, and other users are not affected."""

from __future__ import annotations

import secrets
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from core.settings import REPO_ROOT
from tests.conftest import run_api_server, wait_for
from tests.interop.cot_process import cot_serve

CAPS = {"BW_LIVE_MAX_STREAMS_PER_USER": "2", "BW_COT_MAX_STREAMS_PER_USER": "2"}


def _token(engine) -> str:
    """A committed agency and operator (the servers have connections of their own), and its token."""
    from accounts import service
    from core.db import session_scope
    from core.security import issue_token

    agency = f"TH-C{uuid.uuid4().hex[:8].upper()}"
    with session_scope(engine) as s:
        service.create_agency(session=s, code=agency, country="TH", name=f"Stream caps {agency}")
        user = service.create_user(
            session=s,
            username=f"op-{uuid.uuid4().hex[:8]}",
            agency_code=agency,
            role="operator",
            password=secrets.token_urlsafe(16),
        )
        return issue_token(service.principal_of(user)).token


@pytest.fixture(scope="module")
def server(engine):
    with run_api_server("api-stream-caps.log", CAPS) as s:
        yield s


def _open_live(stack: ExitStack, client: httpx.Client, token: str) -> httpx.Response:
    r = stack.enter_context(
        client.stream("GET", "/api/v1/live", headers={"Authorization": f"Bearer {token}"}, params={"max_seconds": 60})
    )
    if r.status_code == 200:
        # The stream has started (the "ready" event). The line iterator is kept: dropping it would close
        # the connection.
        r.extensions["lines"] = lines = r.iter_lines()
        next(lines)
    return r


def test_the_live_feed_refuses_a_user_over_the_cap(server, engine):
    token, other = _token(engine), _token(engine)
    with httpx.Client(base_url=server.base_url, timeout=30) as client, ExitStack() as stack:
        first = _open_live(stack, client, token)
        second = _open_live(stack, client, token)
        assert first.status_code == second.status_code == 200
        third = _open_live(stack, client, token)
        assert third.status_code == 429, third.status_code
        third.read()
        assert third.json()["error"] == "too_many_streams" and "BW_LIVE_MAX_STREAMS_PER_USER" in third.text
        assert third.headers["retry-after"]
        # Another user has places of their own.
        assert _open_live(stack, client, other).status_code == 200
        second.close()

        # A closed stream gives its place back.
        def reopened() -> bool:
            with client.stream("GET", "/api/v1/live", headers={"Authorization": f"Bearer {token}"}) as r:
                return r.status_code == 200

        wait_for(reopened, timeout=15, interval=0.2)


@pytest.fixture(scope="module")
def cot_port(engine) -> Iterator[int]:
    with cot_serve("cot-serve-caps", CAPS) as port:
        yield port


def _cot(port: int, token: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(token.encode() + b"\n")
    return sock


def _open(sock: socket.socket, seconds: float = 2.0) -> bool:
    """Whether the connection stays open for ``seconds`` (whatever the server sends meanwhile)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if sock.recv(65536) == b"":
                return False
        except socket.timeout:
            return True
        except ConnectionError:
            return False
    return True


def test_cot_serve_closes_a_connection_over_the_cap(cot_port, engine):
    token, other = _token(engine), _token(engine)
    first, second = _cot(cot_port, token), _cot(cot_port, token)
    try:
        assert _open(first) and _open(second)
        third = _cot(cot_port, token)
        assert not _open(third, 5.0)
        third.close()
        log = (REPO_ROOT / ".run" / "test" / "cot-serve-caps.log").read_text()
        assert "BW_COT_MAX_STREAMS_PER_USER" in log
        theirs = _cot(cot_port, other)
        assert _open(theirs)
        theirs.close()
        second.close()

        def reopened() -> bool:
            sock = _cot(cot_port, token)
            try:
                return _open(sock, 1.5)
            finally:
                sock.close()

        wait_for(reopened, timeout=15, interval=0.2)
    finally:
        first.close()
        second.close()
