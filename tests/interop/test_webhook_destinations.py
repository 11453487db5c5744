"""Where a webhook may point: only public addresses, unless the network is allowed
(BW_WEBHOOK_ALLOWED_NETWORKS), checked when subscribing and again before every attempt; the POST
goes to the address that was checked."""

from __future__ import annotations

import ipaddress
import socket

import httpx
import pytest

from core.db import session_scope
from interop import webhooks
from tests.conftest import run_api_server, wait_for
from tests.factories import now
from tests.interop.test_webhooks import LOOPBACK, Receiver, _deliverer, _log, hooks_world  # noqa: F401

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("fc00::1", "private"),
    ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"),
    ("100.64.0.1", "non-public"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"),
    ("192.0.2.7", "private"),
]


def _resolver(answers: dict[str, list[str]]):
    def resolve(host, port, type=0):
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, type, 6, "", (a, port)) for a in answers[host]]

    return resolve


@pytest.mark.parametrize("address,kind", REFUSED)
def test_addresses_that_are_not_public_are_refused(address, kind):
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(webhooks.WebhookDestinationRefused, match=f"resolves to a {kind} address"):
        webhooks.resolve_destination(f"http://{literal}:8080/hook", (), resolve=_resolver({address: [address]}))


def test_public_addresses_pass_and_a_name_passes_only_if_every_address_does():
    resolve = _resolver(
        {
            "hooks.example.org": ["93.184.216.34", "2606:2800:220:1::1"],
            "split.example.org": ["93.184.216.34", "10.0.0.5"],
        }
    )
    assert webhooks.resolve_destination("https://hooks.example.org/in", (), resolve=resolve) == "93.184.216.34"
    with pytest.raises(webhooks.WebhookDestinationRefused, match="resolves to a private address") as refused:
        webhooks.resolve_destination("https://split.example.org/in", (), resolve=resolve)
    # What the name resolved to stays on the deliverer's side.
    assert "10.0.0.5" not in refused.value.message and "10.0.0.5" not in str(refused.value.details)
    with pytest.raises(webhooks.WebhookDestinationRefused, match="does not resolve"):
        webhooks.resolve_destination("https://nowhere.example.org/in", (), resolve=resolve)


def test_an_allowed_network_is_allowed_and_nothing_else():
    allowed = (ipaddress.ip_network("10.20.0.0/16"),)
    resolve = _resolver({"10.20.3.4": ["10.20.3.4"], "10.21.0.1": ["10.21.0.1"], "127.0.0.1": ["127.0.0.1"]})
    assert webhooks.resolve_destination("http://10.20.3.4/h", allowed, resolve=resolve) == "10.20.3.4"
    for host in ("10.21.0.1", "127.0.0.1"):
        with pytest.raises(webhooks.WebhookDestinationRefused):
            webhooks.resolve_destination(f"http://{host}/h", allowed, resolve=resolve)


def test_the_request_goes_to_the_checked_address_with_the_url_s_host():
    assert (
        webhooks._pinned("https://u:p@hooks.example.org:8443/in?x=1", "93.184.216.34")
        == "https://u:p@93.184.216.34:8443/in?x=1"
    )
    assert webhooks._pinned("http://hooks.example.org/in", "2606:2800:220:1::1") == "http://[2606:2800:220:1::1]/in"


def test_the_api_refuses_a_subscription_to_an_internal_address(api_server, hooks_world):  # noqa: F811
    _, _, token, _ = hooks_world
    auth = {"Authorization": f"Bearer {token}"}
    # the test run allows loopback (its receivers), nothing else that is not public
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1:8080/x",
        "http://[::1]:9/x",
        "http://no-such-host.invalid/x",
    ):
        r = httpx.post(f"{api_server.base_url}/api/v1/webhooks", headers=auth, json={"url": url}, timeout=30)
        assert r.status_code == 422, (url, r.text)
        assert r.json()["error"] == "webhook_destination_refused", r.text


def test_the_api_does_not_name_the_address_a_refused_host_resolves_to(hooks_world):  # noqa: F811
    _, _, token, _ = hooks_world
    with run_api_server("api-webhooks-refused.log", {"BW_WEBHOOK_ALLOWED_NETWORKS": ""}) as server:
        r = httpx.post(
            f"{server.base_url}/api/v1/webhooks",
            headers={"Authorization": f"Bearer {token}"},
            json={"url": "http://localhost:9/x"},
            timeout=30,
        )
    assert r.status_code == 422 and r.json()["error"] == "webhook_destination_refused", r.text
    assert "localhost" in r.json()["message"] and "loopback" in r.json()["message"]
    assert "127.0.0.1" not in r.text and "::1" not in r.text


def test_a_destination_refused_at_delivery_gets_no_request(engine, hooks_world):  # noqa: F811
    agency, principal, _, sensor = hooks_world
    with Receiver() as receiver:
        with session_scope(engine) as s:
            sub = webhooks.create(
                session=s,
                principal=principal,
                webhook_in=webhooks.WebhookCreate(url=receiver.url),
                allowed_networks=LOOPBACK,
            ).id
        agency.factory.alert(sensor, agency.code, 100.42, 6.63, now())
        agency.commit()
        strict = webhooks.Deliverer(lambda: session_scope(engine), allowed_networks=(), max_attempts=2, backoff_s=0.05)
        try:
            wait_for(
                lambda: strict.run_once() is not None and _log(engine, sub) and _log(engine, sub)[0].status == "failed",
                timeout=30,
                interval=0.1,
            )
        finally:
            strict.close()
        (row,) = _log(engine, sub)
        assert row.attempts == 2 and row.last_status_code is None
        assert row.last_error.startswith("refused: webhook host '127.0.0.1' resolves to a loopback address")
        assert receiver.requests == []

        deliverer = _deliverer(engine)
        try:
            agency.factory.alert(sensor, agency.code, 100.42, 6.63, now())
            agency.commit()
            wait_for(lambda: deliverer.run_once() is not None and receiver.requests, timeout=30, interval=0.1)
        finally:
            deliverer.close()
        headers = receiver.requests[0][0]
        assert headers["host"] == receiver.url.split("/")[2]
