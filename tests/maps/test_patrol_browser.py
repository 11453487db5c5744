"""Patrol coordination on the maps in a real browser: units on the COP move when their phone
reports a position, an alert is promoted to an incident from its popup (a same-origin form), and
the incident map shows the recommended units with their ETA and the tasked unit's track."""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import text

from accounts import service as accounts
from core.db import session_scope
from core.security import Principal
from maps.cop import UNIT_STATUS_COLOURS
from patrols import schemas
from patrols import units as patrol_units

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

TIMEOUT_MS = 20_000
# Thai side of the border near Sadao, away from the other browser tests' places.
UNIT_AT = (100.47, 6.66)
ALERT_AT = (100.50, 6.63)


def _unit(engine, agency: str, place, *, kind: str = "land", callsign: str | None = None) -> tuple[int, str, str]:
    """A committed unit of ``agency`` with its device's patrol_unit user; (id, username, password)."""
    username, password = f"unit-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
    with session_scope(engine) as s:
        accounts.create_user(session=s, username=username, agency_code=agency, role="patrol_unit", password=password)
        unit = patrol_units.create_unit(
            session=s,
            principal=Principal(username="map-test", agency_code=agency, role="admin"),
            unit_in=schemas.UnitCreate(
                callsign=callsign or f"U{uuid.uuid4().hex[:6]}",
                kind=kind,
                cruising_speed_kmh=60,
                home_lon=place[0],
                home_lat=place[1],
                username=username,
            ),
        )
    return unit.id, username, password


def _token(base: str, username: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _report(base: str, headers, unit_id: int, *points: tuple[float, float], start: datetime | None = None) -> None:
    start = start or datetime.now(timezone.utc)
    positions = [
        {
            "client_id": uuid.uuid4().hex,
            "observed_at": (start + timedelta(seconds=i)).isoformat(),
            "lon": lon,
            "lat": lat,
        }
        for i, (lon, lat) in enumerate(points)
    ]
    r = httpx.post(f"{base}/api/v1/units/{unit_id}/positions", json={"positions": positions}, headers=headers)
    assert r.status_code == 200 and r.json()["position_updated"], r.text


def _marker_at(page, unit_id: int):
    return page.evaluate(
        "id => { const it = BW.layers.units.items.get(String(id)); if (!it) return null;"
        " const ll = it.layer.getLatLng(); return [ll.lng, ll.lat]; }",
        unit_id,
    )


def test_a_position_report_moves_the_unit_on_the_open_cop(api_server, engine, operator, web):
    unit_id, username, password = _unit(engine, operator.agency, UNIT_AT, kind="maritime")
    page = web.page
    web.login(operator)
    marker = f'.bw-units[data-feature-id="{unit_id}"]'
    page.wait_for_selector(marker, timeout=TIMEOUT_MS)
    # Icon by kind, colour by status.
    assert page.locator(f"{marker} i.fa-ship").count() == 1
    background = page.locator(f"{marker} .bw-badge").evaluate("e => e.style.background")
    assert background.replace(" ", "") == "rgb(46,125,50)" and UNIT_STATUS_COLOURS["available"] == "#2e7d32"
    assert _marker_at(page, unit_id) == pytest.approx(list(UNIT_AT))
    page.evaluate("window.__sameDocument = true")

    # The unit's phone reports through the mobile API; the marker moves without a reload.
    device = _token(api_server.base_url, username, password)
    moved = (UNIT_AT[0] + 0.03, UNIT_AT[1] + 0.01)
    _report(api_server.base_url, device, unit_id, moved)
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while _marker_at(page, unit_id) != pytest.approx(list(moved)):
        assert time.monotonic() < deadline, f"the marker stayed at {_marker_at(page, unit_id)}"
        time.sleep(0.2)
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"

    # Its status changes colour on the next poll.
    r = httpx.put(f"{api_server.base_url}/api/v1/units/{unit_id}/status", json={"status": "off_duty"}, headers=device)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while (
        page.locator(f"{marker} .bw-badge").evaluate("e => e.style.background").replace(" ", "") != "rgb(117,117,117)"
    ):
        assert time.monotonic() < deadline, "the unit's colour did not follow its status"
        time.sleep(0.2)
    page.locator(marker).click()
    popup = page.wait_for_selector(".bw-popup-units", timeout=5_000).inner_text()
    assert "off_duty" in popup and "maritime" in popup
    web.assert_stayed_local()
    assert not web.console_errors, web.console_errors


def _alert(engine, make_gateway, agency: str, lon: float, lat: float) -> int:
    """An open crossing alert as the geofence writes it (committed), from a sensor of ``agency``."""
    sensor = f"cam-{uuid.uuid4().hex[:8]}"
    make_gateway(agency=agency, sensors={sensor: (lon, lat + 0.01)})
    with engine.begin() as conn:
        return conn.execute(
            text(
                "WITH d AS (INSERT INTO detections (observed_at, sensor_id, agency_code, event_id, geom, located_by, "
                "class, confidence, raw) VALUES (now(), CAST(:s AS text), :a, md5(CAST(:s AS text)), ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), "
                "'payload', 'person', 0.9, '{}') RETURNING id) "
                "INSERT INTO alerts (agency_code, kind, severity, status, title, observed_at, sensor_id, class, "
                "detection_id, detection_ids, from_state, to_state, geom) SELECT :a, 'crossing', 'high', 'open', "
                "'Person crossing MY → TH', now(), CAST(:s AS text), 'person', d.id, ARRAY[d.id], 'MY', 'TH', "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) FROM d RETURNING id"
            ),
            {"a": agency, "s": sensor, "lon": lon, "lat": lat},
        ).scalar_one()


def test_promote_an_alert_then_follow_the_incident_on_its_map(api_server, engine, make_gateway, operator, web):
    base = api_server.base_url
    unit_id, username, password = _unit(engine, operator.agency, UNIT_AT, callsign=f"Sadao-{uuid.uuid4().hex[:4]}")
    alert_id = _alert(engine, make_gateway, operator.agency, *ALERT_AT)
    page = web.page
    web.login(operator)

    # The alert's popup on the COP links to the promote form (close up: the unit's badge is nearby).
    page.goto(f"{base}/maps/cop?lat={ALERT_AT[1]}&lon={ALERT_AT[0]}&zoom=14")
    alert = f'path.bw-alerts[data-feature-id="{alert_id}"]'
    page.wait_for_selector(alert, timeout=TIMEOUT_MS)
    page.locator(alert).click(force=True)
    link = page.wait_for_selector(".bw-popup-alerts a.bw-link >> text='Promote to an incident'", timeout=5_000)
    assert link.get_attribute("href") == f"/maps/promote?alert_id={alert_id}"
    link.click()
    page.wait_for_selector("form.bw-form")
    assert "Person crossing MY → TH" in page.inner_text("form.bw-form")
    page.select_option("select[name=category]", "people_smuggling")
    page.select_option("select[name=priority]", "critical")
    page.fill("textarea[name=note]", "Two people on foot")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "/maps/incident?id=" in page.url
    incident_id = int(page.url.rsplit("=", 1)[1])
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT priority, category, agency_code FROM incidents WHERE id = :i"), {"i": incident_id}
        ).one()
        assert tuple(row) == ("critical", "people_smuggling", operator.agency)
        assert conn.execute(text("SELECT status FROM alerts WHERE id = :a"), {"a": alert_id}).scalar() == "incident"

    # The incident map: the incident, its alert, the recommended unit with a line and its ETA.
    page.wait_for_selector("path.bw-incident", timeout=TIMEOUT_MS)
    assert page.locator("path.bw-incident-alert").count() == 1
    assert page.locator("path.bw-eta-line").count() >= 1
    label = page.locator(".bw-eta-label").first.inner_text()
    assert label.startswith("1. Sadao-") and "min" in label
    assert "1 recommended" in page.locator(".bw-title").inner_text()
    page.wait_for_selector('body[data-bw-live="ok"]', timeout=TIMEOUT_MS)
    web.screenshot("incident-recommendation")

    # Task the unit; it accepts and drives towards the incident: its track is drawn.
    ops = _token(base, operator.username, operator.password)
    device = _token(base, username, password)
    r = httpx.post(f"{base}/api/v1/incidents/{incident_id}/taskings", json={"unit_id": unit_id}, headers=ops)
    assert r.status_code == 201, r.text
    assert httpx.post(f"{base}/api/v1/taskings/{r.json()['id']}/accept", headers=device).status_code == 200
    path = [
        (UNIT_AT[0] + (ALERT_AT[0] - UNIT_AT[0]) * k / 4, UNIT_AT[1] + (ALERT_AT[1] - UNIT_AT[1]) * k / 4)
        for k in range(1, 4)
    ]
    _report(base, device, unit_id, *path)
    page.reload()
    page.wait_for_selector("path.bw-unit-track", timeout=TIMEOUT_MS)
    assert page.locator("path.bw-unit-fix").count() == 3
    assert page.locator("path.bw-tasked-unit").count() == 1
    title = page.locator(".bw-title").inner_text()
    assert "tasked: Sadao-" in title and "en_route" in title
    page.wait_for_selector('body[data-bw-live="ok"]', timeout=TIMEOUT_MS)
    web.screenshot("incident")

    # Back on the COP, the incident is drawn by priority and links to its map.
    page.goto(f"{base}/maps/cop")
    page.wait_for_selector(
        f'.bw-incidents[data-feature-id="{incident_id}"] i.fa-triangle-exclamation', timeout=TIMEOUT_MS
    )
    web.assert_stayed_local()
    assert not web.console_errors, web.console_errors


def test_promote_refuses_cross_site_posts(api_server, engine, make_gateway, operator):
    base = api_server.base_url
    alert_id = _alert(engine, make_gateway, operator.agency, *ALERT_AT)
    with httpx.Client(base_url=base, follow_redirects=False) as c:
        r = c.post("/login", data={"username": operator.username, "password": operator.password})
        assert r.status_code == 303 and "bw_token" in c.cookies
        form = c.get(f"/maps/promote?alert_id={alert_id}")
        assert form.status_code == 200
        token = form.text.split('name="form_token" value="')[1].split('"')[0]
        body = {"alert_id": str(alert_id), "form_token": token, "priority": "high", "category": "other"}
        # Another site's page posting with the operator's cookie: refused, nothing created.
        r = c.post("/maps/promote", data=body, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and r.json()["error"] == "cross_site_request"
        r = c.post("/maps/promote", data=body, headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403
        r = c.post("/maps/promote", data=body)  # neither Origin nor Referer
        assert r.status_code == 403
        # The same origin without the form's token (or another alert's): refused.
        r = c.post("/maps/promote", data={**body, "form_token": "0" * 64}, headers={"Origin": base})
        assert r.status_code == 403
        with engine.connect() as conn:
            assert (
                conn.execute(text("SELECT count(*) FROM incident_alerts WHERE alert_id = :a"), {"a": alert_id}).scalar()
                == 0
            )
        # The form itself, from this site: the incident is opened.
        r = c.post("/maps/promote", data=body, headers={"Origin": base})
        assert r.status_code == 303 and r.headers["location"].startswith("/maps/incident?id=")
        # A second time: the alert already belongs to an incident; the form says so.
        r = c.post("/maps/promote", data=body, headers={"Origin": base})
        assert r.status_code == 409 and "already belong" in r.text
    # Without a session: 401.
    assert httpx.post(f"{base}/maps/promote", data=body, headers={"Origin": base}).status_code == 401
