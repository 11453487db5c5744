"""Outbound webhooks against a real HTTP receiver on loopback: filters, HMAC signatures, retries
with back-off after a 500, timeouts, final failures, the delivery log on the real API server."""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import orjson
import pytest

from core.security import Principal
from interop import webhooks
from tests.conftest import wait_for
from tests.factories import now

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@dataclass
class Receiver:
    """A tiny HTTP server that answers with the scripted status codes (then 200) and keeps every request."""

    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    requests: list[tuple[dict, bytes, float]] = field(default_factory=list)
    url: str = ""

    def __enter__(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()))
                time.sleep(receiver.delay_s)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/borderwatch"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks_world(committed_agency):
    f = committed_agency.factory
    supervisor = f.user(committed_agency.code, role="supervisor")
    sensor = f.sensor(committed_agency.code, 100.42, 6.63)
    committed_agency.commit()
    principal = Principal(username=supervisor, agency_code=committed_agency.code, role="supervisor")
    return committed_agency, principal, f.token(supervisor), sensor


def _deliverer(engine, **kwargs):
    from core.db import session_scope

    return webhooks.Deliverer(lambda: session_scope(engine), allowed_networks=LOOPBACK, **kwargs)


def _log(engine, subscription_id):
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT alert_id, status, attempts, last_status_code, last_error FROM "
                "webhook_deliveries WHERE subscription_id = :s ORDER BY alert_id"
            ),
            {"s": subscription_id},
        ).all()


def test_signed_delivery_retried_after_a_500_and_logged(engine, api_server, hooks_world):
    agency, principal, token, sensor = hooks_world
    f = agency.factory
    auth = {"Authorization": f"Bearer {token}"}
    with Receiver(statuses=[500]) as receiver:
        r = httpx.post(
            f"{api_server.base_url}/api/v1/webhooks",
            headers=auth,
            timeout=30,
            json={"url": receiver.url, "kinds": ["crossing"], "severities": ["high", "critical"]},
        )
        assert r.status_code == 201, r.text
        sub = r.json()
        secret = sub.pop("secret")
        assert len(secret) >= 40
        listed = httpx.get(f"{api_server.base_url}/api/v1/webhooks", headers=auth, timeout=30).json()
        assert [w["id"] for w in listed] == [sub["id"]] and "secret" not in listed[0]
        operator = {"Authorization": f"Bearer {agency.token}"}
        assert httpx.get(f"{api_server.base_url}/api/v1/webhooks", headers=operator, timeout=30).status_code == 403

        wanted = f.alert(sensor, agency.code, 100.42, 6.63, now(), kind="crossing", severity="high")
        f.alert(sensor, agency.code, 100.42, 6.63, now(), kind="crossing", severity="low")  # severity filtered
        f.alert(sensor, agency.code, 100.42, 6.63, now(), kind="zone_entry", severity="high")  # kind filtered
        other = f.agency()
        f.alert(f.sensor(other, 100.42, 6.63), other, 100.42, 6.63, now(), kind="crossing", severity="high")
        agency.commit()

        deliverer = _deliverer(engine, timeout_s=5, max_attempts=4, backoff_s=0.3)
        try:
            wait_for(lambda: deliverer.run_once() and len(receiver.requests) >= 2, timeout=30)
        finally:
            deliverer.close()
    (h1, b1, t1), (h2, b2, t2) = receiver.requests[:2]
    assert len(receiver.requests) == 2
    assert b1 == b2 and h1["x-borderwatch-delivery"] == h2["x-borderwatch-delivery"]
    assert t2 - t1 >= 0.3  # the back-off
    for headers, body, _ in receiver.requests:
        assert headers["content-type"] == "application/json"
        assert webhooks.verify(secret, headers["x-borderwatch-timestamp"], body, headers["x-borderwatch-signature"])
        assert not webhooks.verify(
            "wrong-secret", headers["x-borderwatch-timestamp"], body, headers["x-borderwatch-signature"]
        )
        assert not webhooks.verify(
            secret, headers["x-borderwatch-timestamp"], body + b" ", headers["x-borderwatch-signature"]
        )
    payload = orjson.loads(b1)
    assert payload["event"] == "alert" and payload["alert"]["id"] == wanted
    assert payload["alert"]["agency_code"] == agency.code and payload["alert"]["geometry"]["type"] == "Point"

    log = httpx.get(f"{api_server.base_url}/api/v1/webhooks/{sub['id']}/deliveries", headers=auth, timeout=30).json()
    assert [(d["alert_id"], d["status"], d["attempts"], d["last_status_code"]) for d in log] == [
        (wanted, "delivered", 2, 200)
    ]
    assert log[0]["delivered_at"] is not None
    assert (
        httpx.get(
            f"{api_server.base_url}/api/v1/webhooks/{sub['id']}/deliveries",
            headers={"Authorization": f"Bearer {_other_supervisor_token(engine)}"},
            timeout=30,
        ).status_code
        == 404
    )


def _other_supervisor_token(engine) -> str:
    from sqlalchemy.orm import Session

    from tests.factories import Factory

    with Session(engine) as session:
        f = Factory(session)
        code = f.agency()
        user = f.user(code, role="supervisor")
        token = f.token(user)
        session.commit()
    return token


def test_failures_are_retried_until_given_up_and_a_4xx_is_final(engine, hooks_world):
    from core.db import session_scope

    agency, principal, _, sensor = hooks_world
    f = agency.factory
    with Receiver(statuses=[500] * 10) as broken, Receiver(statuses=[404]) as gone, Receiver(delay_s=1.5) as slow:
        with session_scope(engine) as s:
            subs = [
                webhooks.create(
                    session=s,
                    principal=principal,
                    webhook_in=webhooks.WebhookCreate(url=r.url),
                    allowed_networks=LOOPBACK,
                ).id
                for r in (broken, gone, slow)
            ]
        alert = f.alert(sensor, agency.code, 100.42, 6.63, now())
        agency.commit()
        deliverer = _deliverer(engine, timeout_s=0.5, max_attempts=3, backoff_s=0.1)
        try:
            wait_for(
                lambda: (
                    deliverer.run_once() is not None
                    and all(row.status != "pending" for sub in subs for row in _log(engine, sub))
                    and all(_log(engine, sub) for sub in subs)
                ),
                timeout=30,
                interval=0.1,
            )
        finally:
            deliverer.close()
    (b,), (g,), (s_,) = (_log(engine, sub) for sub in subs)
    assert (b.alert_id, b.status, b.attempts, b.last_status_code) == (alert, "failed", 3, 500)
    assert b.last_error.startswith("HTTP 500")
    assert (g.status, g.attempts, g.last_status_code) == ("failed", 1, 404)
    assert (s_.status, s_.attempts, s_.last_status_code) == ("failed", 3, None) and "Timeout" in s_.last_error
    assert len(broken.requests) == 3 and len(gone.requests) == 1


def test_subscriptions_refuse_bad_input(engine, api_server, hooks_world):
    _, _, token, _ = hooks_world
    auth = {"Authorization": f"Bearer {token}"}
    for body in (
        {"url": "ftp://example.org/x"},
        {"url": "http://127.0.0.1:9/x", "kinds": ["teleport"]},
        {"url": "http://127.0.0.1:9/x", "severities": ["apocalyptic"]},
        {"kinds": ["crossing"]},
    ):
        r = httpx.post(f"{api_server.base_url}/api/v1/webhooks", headers=auth, json=body, timeout=30)
        assert r.status_code == 422, (body, r.text)
    assert httpx.get(f"{api_server.base_url}/api/v1/webhooks/999999999", headers=auth, timeout=30).status_code == 404
