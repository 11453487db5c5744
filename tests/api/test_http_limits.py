"""Limits a real API server keeps before it reads a request: the body cap (413, unread), and the
session cookie's Secure flag behind a TLS proxy (trusted X-Forwarded-Proto, BW_COOKIE_SECURE)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import orjson
import pytest

from accounts import service
from core.db import session_scope
from core.settings import REPO_ROOT
from tests.conftest import free_port

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def account(engine) -> tuple[str, str]:
    """A committed agency and operator (the servers below read the real database)."""
    code = f"TH-H{uuid.uuid4().hex[:8].upper()}"
    username = f"http-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as s:
        service.create_agency(session=s, code=code, country="TH", name="HTTP limits")
        service.create_user(session=s, username=username, agency_code=code, role="operator", password=PASSWORD)
    return code, username


@contextmanager
def borderwatch_api(env: dict[str, str] | None = None) -> Iterator[str]:
    """``borderwatch api`` (the command operators run) on a free loopback port."""
    port = free_port()
    log = open(REPO_ROOT / ".run" / "test" / "api-limits.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "api", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "borderwatch api exited"
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "borderwatch api did not answer /health within 30 s"
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with borderwatch_api() as base:
        yield base


def _raw(base: str, head: bytes, body: bytes = b"", timeout: float = 10) -> bytes:
    """Send a request by hand and read what comes back before the timeout."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head + body)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_a_declared_oversized_body_is_refused_unread(server):
    # 100 MB announced, none of it sent: the answer comes at once, without waiting for the body.
    head = (
        b"POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 100000000\r\n\r\n"
    )
    started = time.monotonic()
    answer = _raw(server, head)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    body = orjson.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["error"] == "request_too_large" and "1048576 bytes" in body["message"]
    assert time.monotonic() - started < 10


def test_a_chunked_body_is_cut_off_at_the_cap(server, account):
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(64):  # 4 MiB offered
            sent += 65536
            yield b"a" * 65536

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = httpx.post(f"{server}/api/v1/auth/token", content=chunks(), headers=form, timeout=30)
    assert r.status_code == 413 and r.json()["error"] == "request_too_large", r.text
    # A body within the cap is served as before.
    ok = httpx.post(f"{server}/api/v1/auth/token", data={"username": account[1], "password": PASSWORD}, timeout=30)
    assert ok.status_code == 200, ok.text


def test_the_cap_is_a_setting(account):
    with borderwatch_api({"BW_MAX_BODY_BYTES": "2048"}) as base:
        r = httpx.post(f"{base}/api/v1/auth/token", data={"username": "x" * 3000, "password": "y"}, timeout=30)
        assert r.status_code == 413 and "2048 bytes" in r.json()["message"]


def _login_cookies(base: str, username: str, **headers: str) -> list[str]:
    r = httpx.post(f"{base}/login", data={"username": username, "password": PASSWORD}, headers=headers, timeout=30)
    assert r.status_code == 303, r.text
    cookies = r.headers.get_list("set-cookie")
    assert {c.split("=", 1)[0] for c in cookies} == {"bw_token", "bw_csrf"}
    return cookies


def _secure(cookies: list[str]) -> bool:
    flags = [{p.strip().lower() for p in c.split(";")} for c in cookies]
    assert len({"secure" in f for f in flags}) == 1, cookies  # both or neither
    return "secure" in flags[0]


def test_the_cookies_are_secure_behind_a_trusted_tls_proxy(server, account):
    assert not _secure(_login_cookies(server, account[1]))
    # The proxy on this machine (trusted by default) terminates TLS and says so.
    assert _secure(_login_cookies(server, account[1], **{"X-Forwarded-Proto": "https"}))


def test_an_untrusted_proxy_is_not_believed_and_secure_can_be_forced(account):
    with borderwatch_api({"BW_FORWARDED_ALLOW_IPS": "10.255.0.1"}) as base:
        assert not _secure(_login_cookies(base, account[1], **{"X-Forwarded-Proto": "https"}))
    with borderwatch_api({"BW_FORWARDED_ALLOW_IPS": "10.255.0.1", "BW_COOKIE_SECURE": "true"}) as base:
        assert _secure(_login_cookies(base, account[1]))
