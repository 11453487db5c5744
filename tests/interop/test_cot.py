"""Cursor-on-Target read by a parser that is not ours (takproto, the TAK protocol library): the
HTTP endpoint on a real server, and `borderwatch cot-serve` as a real TCP server."""

from __future__ import annotations

import socket
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import takproto

from core.security import Principal
from interop import cot
from tests.factories import now
from tests.interop.cot_process import cot_serve

DECLARATION = cot.XML_DECLARATION


def parse(document: bytes):
    """takproto's reading of one CoT XML document (its TakMessage protobuf)."""
    message = takproto.parse_proto(bytearray(document))
    assert message is not None, document
    return message.cotEvent


def test_type_codes_follow_the_cot_tree():
    assert [cot.unit_type(k) for k in ("land", "maritime", "air")] == ["a-f-G-U-C", "a-f-S-X", "a-f-A-M-H"]
    assert cot.alert_type("crossing", "person") == "a-u-G"
    assert cot.alert_type("zone_entry", "vehicle") == "a-u-G-E-V"
    assert cot.alert_type("dark_vessel", "vessel") == "a-s-S-X"
    assert cot.alert_type("watchlist_hit", "boat") == "a-s-S-X"
    assert cot.alert_type("crossing", "aircraft") == "a-u-A"
    assert cot.alert_type("sensor_offline", None) == "b-m-p-s-m"


@pytest.fixture
def cot_world(committed_agency):
    """A land and a maritime unit, an open and a closed incident, an alert; another agency's alert."""
    from patrols import incidents, schemas, units

    f = committed_agency.factory
    admin = f.user(committed_agency.code, role="admin")
    principal = Principal(username=admin, agency_code=committed_agency.code, role="admin")
    land = units.create_unit(
        session=f.session,
        principal=principal,
        unit_in=schemas.UnitCreate(
            callsign="LIMA1", kind="land", cruising_speed_kmh=50, home_lon=100.42, home_lat=6.63
        ),
    )
    boat = units.create_unit(
        session=f.session,
        principal=principal,
        unit_in=schemas.UnitCreate(
            callsign="SIERRA2", kind="maritime", cruising_speed_kmh=40, home_lon=99.9, home_lat=6.6
        ),
    )
    open_incident = incidents.create_incident(
        session=f.session,
        principal=principal,
        incident_in=schemas.IncidentCreate(
            title='Boat landing <night> & "cargo"', category="drugs", priority="high", lon=100.42, lat=6.63
        ),
    )
    closed = incidents.create_incident(
        session=f.session,
        principal=principal,
        incident_in=schemas.IncidentCreate(title="False trace", category="other", priority="low", lon=100.43, lat=6.64),
    )
    incidents.change_incident_status(
        session=f.session,
        principal=principal,
        incident_id=closed.id,
        change=schemas.IncidentStatusChange(status="false_alarm"),
    )
    sensor = f.sensor(committed_agency.code, 100.42, 6.63)
    alert = f.alert(sensor, committed_agency.code, 100.421, 6.631, now(), kind="crossing", object_class="person")
    other = f.agency()
    other_alert = f.alert(f.sensor(other, 100.42, 6.63), other, 100.42, 6.63, now())
    committed_agency.commit()
    return committed_agency, {
        "land": land.id,
        "boat": boat.id,
        "open": open_incident.id,
        "closed": closed.id,
        "alert": alert,
        "other_alert": other_alert,
        "sensor": sensor,
    }


def _check_picture(events, ids):
    by_uid = {e.uid: e for e in events}
    land, boat = by_uid[f"borderwatch.unit.{ids['land']}"], by_uid[f"borderwatch.unit.{ids['boat']}"]
    assert (land.type, land.how, land.detail.contact.callsign) == ("a-f-G-U-C", "m-g", "LIMA1")
    assert (boat.type, boat.detail.contact.callsign) == ("a-f-S-X", "SIERRA2")
    assert abs(land.lat - 6.63) < 1e-6 and abs(land.lon - 100.42) < 1e-6 and land.ce == 10.0
    alert = by_uid[f"borderwatch.alert.{ids['alert']}"]
    assert alert.type == "a-u-G" and alert.how == "m-f" and abs(alert.lon - 100.421) < 1e-6
    assert f"borderwatch.alert.{ids['other_alert']}" not in by_uid
    incident = by_uid[f"borderwatch.incident.{ids['open']}"]
    assert incident.type == "b-m-p-s-m" and incident.how == "h-e"
    assert "<night> &" in incident.detail.xmlDetail.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    closed = by_uid[f"borderwatch.incident.{ids['closed']}"]
    for event in events:
        assert event.sendTime == event.startTime <= event.staleTime
    # Current markers stay a while; an ended incident is stale at once (TAK clients drop it).
    assert land.staleTime - land.sendTime >= 10_000 and incident.staleTime > incident.sendTime
    assert closed.staleTime == closed.sendTime


def test_http_endpoint_parses_event_by_event(api_server, cot_world):
    agency, ids = cot_world
    r = httpx.get(f"{api_server.base_url}/api/v1/cot", headers={"Authorization": f"Bearer {agency.token}"}, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(r.content)
    assert root.tag == "events"
    events = [parse(DECLARATION + ET.tostring(e)) for e in root]
    assert len(events) == 5  # two units, two incidents, one alert
    _check_picture(events, ids)
    only_units = httpx.get(
        f"{api_server.base_url}/api/v1/cot",
        params={"types": "unit"},
        headers={"Authorization": f"Bearer {agency.token}"},
        timeout=30,
    )
    assert {e.get("type")[:3] for e in ET.fromstring(only_units.content)} == {"a-f"}
    assert httpx.get(f"{api_server.base_url}/api/v1/cot", timeout=30).status_code == 401


@pytest.fixture
def cot_stream(engine):
    with cot_serve("cot-serve") as port:
        yield port


def _read_events(sock: socket.socket, buffer: bytearray, count: int, timeout: float = 20.0) -> list:
    """Read until ``count`` whole documents have arrived; returns them parsed by takproto."""
    deadline = time.monotonic() + timeout
    while buffer.count(DECLARATION) < count + 1 and time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        buffer.extend(chunk)
        if buffer.count(DECLARATION) == count and buffer.rstrip().endswith(b"</event>"):
            break
    parts = [p for p in bytes(buffer).split(DECLARATION) if p.strip()]
    assert len(parts) >= count, (len(parts), bytes(buffer)[-500:])
    del buffer[:]
    return [parse(DECLARATION + p.strip()) for p in parts]


def test_tcp_stream_sends_the_picture_then_each_change(cot_stream, cot_world):
    agency, ids = cot_world
    with socket.create_connection(("127.0.0.1", cot_stream), timeout=10) as sock:
        sock.sendall(agency.token.encode() + b"\n")
        buffer = bytearray()
        _check_picture(_read_events(sock, buffer, 5), ids)
        # A new alert is one more event on the open stream.
        f = agency.factory
        alert = f.alert(ids["sensor"], agency.code, 100.45, 6.65, now(), kind="zone_entry", object_class="vehicle")
        agency.commit()
        (event,) = _read_events(sock, buffer, 1)
        assert event.uid == f"borderwatch.alert.{alert}" and event.type == "a-u-G-E-V"


def test_tcp_stream_closes_on_a_bad_token(cot_stream):
    with socket.create_connection(("127.0.0.1", cot_stream), timeout=10) as sock:
        sock.sendall(b"not-a-token\n")
        sock.settimeout(10)
        assert sock.recv(1024) == b""


@pytest.mark.parametrize("role", ["patrol_unit", "liaison"])
def test_tcp_stream_closes_for_a_role_without_the_picture(cot_stream, committed_agency, role):
    """The roles GET /api/v1/cot refuses (core.permissions) get no stream either: a lost phone's
    token is no way into the agency's whole picture."""
    f = committed_agency.factory
    token = f.token(f.user(committed_agency.code, role=role))
    committed_agency.commit()
    with socket.create_connection(("127.0.0.1", cot_stream), timeout=10) as sock:
        sock.sendall(token.encode() + b"\n")
        sock.settimeout(10)
        assert sock.recv(1024) == b""


def test_cot_time_has_milliseconds_and_utc():
    assert (
        cot.cot_time(datetime(2026, 11, 22, 7, 0, 1, 123456, tzinfo=timezone(timedelta(hours=7))))
        == "2026-11-22T00:00:01.123Z"
    )
