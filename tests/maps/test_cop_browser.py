"""The COP in a real browser: login, border segments drawn, a detection published over MQTT
appears without a reload, a closed alert disappears, and nothing is requested off the machine."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from core import topics
from maps.cop import SENSOR_HEALTH_STEPS, SENSOR_SILENT_COLOUR
from tests.conftest import detection, mosquitto_pub, scalar, unique, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# East of Sungai Kolok, well away from the other tests' sensors (no clustering with them).
SENSOR_AT = (101.95, 6.05)
DETECTION_AT = (101.9512, 6.0507)
LIVE_TIMEOUT_MS = 20_000
SILENT, HEALTHY = SENSOR_SILENT_COLOUR, SENSOR_HEALTH_STEPS[0][1]


def _insert_alert(engine, agency: str, sensor: str, detection_id: int, lon: float, lat: float) -> int:
    """An open alert as the geofence would write it (committed, so the API server sees it)."""
    with engine.begin() as conn:
        return conn.execute(
            text(
                "INSERT INTO alerts (agency_code, kind, severity, status, title, observed_at, sensor_id, class, "
                "detection_id, detection_ids, from_state, to_state, geom) VALUES (:a, 'crossing', 'critical', 'open', "
                "'Person crossing MY → TH', now(), :s, 'person', :d, ARRAY[CAST(:d AS bigint)], 'MY', 'TH', "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) RETURNING id"
            ),
            {"a": agency, "s": sensor, "d": detection_id, "lon": lon, "lat": lat},
        ).scalar_one()


def test_cop_is_live_and_stays_on_the_machine(settings, engine, ingest, make_gateway, operator, web):
    sensor = unique("cam")
    gw = make_gateway(agency=operator.agency, sensors={sensor: SENSOR_AT})
    page = web.page

    web.login(operator)
    # The border segments and the base layer are drawn from the local endpoints.
    page.wait_for_selector("path.bw-segments", timeout=LIVE_TIMEOUT_MS)
    page.wait_for_selector("path.bw-countries", timeout=LIVE_TIMEOUT_MS)
    sensor_path = f'path.bw-sensors[data-feature-id="{sensor}"]'
    page.wait_for_selector(sensor_path, timeout=LIVE_TIMEOUT_MS)
    # Never heard from yet: grey.
    assert page.get_attribute(sensor_path, "stroke") == SILENT
    page.wait_for_selector('body[data-bw-live="ok"]', timeout=LIVE_TIMEOUT_MS)
    # Thailand–Malaysia: the land boundary and the two maritime lines either side of the peninsula.
    assert page.locator("path.bw-segments").count() >= 3
    assert page.locator(".leaflet-control-layers").inner_text().count("Border segments") == 1
    legend = page.locator(".bw-legend").inner_text()
    assert "Open alerts" in legend and "critical" in legend and "≤ 15 min ago" in legend
    # A marker on the window: a reload would lose it.
    page.evaluate("window.__sameDocument = true")
    assert page.locator(".bw-detections").count() == 0

    body = detection(sensor, *DETECTION_AT, object_class="vehicle", track_id=unique("t"))
    result = mosquitto_pub(settings, gw, topics.detections(settings.mqtt_topic_root, gw.agency, gw.id, sensor), body)
    assert result.returncode == 0, result.stderr
    detection_id = wait_for(lambda: scalar(engine, "SELECT id FROM detections WHERE sensor_id = :s", s=sensor))
    marker = page.wait_for_selector(f'.bw-detections [data-feature-id="{detection_id}"]', timeout=LIVE_TIMEOUT_MS)
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"

    # Its popup carries the facts and a link to the track map.
    marker.click()
    popup = page.wait_for_selector(".bw-popup-detections", timeout=5_000)
    assert "vehicle" in popup.inner_text() and sensor in popup.inner_text()
    assert page.locator(".bw-popup-detections a.bw-link").get_attribute("href").startswith("/maps/track?track_key=")
    page.keyboard.press("Escape")

    # A second detection a few hundred metres away: at this zoom the two are one cluster of 2.
    second = detection(sensor, DETECTION_AT[0] + 0.003, DETECTION_AT[1] + 0.002, object_class="person")
    assert (
        mosquitto_pub(
            settings, gw, topics.detections(settings.mqtt_topic_root, gw.agency, gw.id, sensor), second
        ).returncode
        == 0
    )
    page.wait_for_selector(".marker-cluster >> text='2'", timeout=LIVE_TIMEOUT_MS)
    page.wait_for_selector(
        f'.bw-detections [data-feature-id="{detection_id}"]', state="detached", timeout=LIVE_TIMEOUT_MS
    )

    # An alert opened elsewhere appears; once closed it disappears, still without a reload.
    alert_id = _insert_alert(engine, operator.agency, sensor, detection_id, 101.97, 6.10)
    page.wait_for_selector(f'path.bw-alerts[data-feature-id="{alert_id}"]', timeout=LIVE_TIMEOUT_MS)
    web.screenshot("cop")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alerts SET status = 'closed' WHERE id = :id"), {"id": alert_id})
    page.wait_for_selector(f'path.bw-alerts[data-feature-id="{alert_id}"]', state="detached", timeout=LIVE_TIMEOUT_MS)
    assert page.evaluate("window.__sameDocument === true")

    # The sensor has been heard from: its health turns green at the next sensors poll.
    page.wait_for_selector(f'{sensor_path}[stroke="{HEALTHY}"]', timeout=30_000)

    # Only this agency's data: another agency's sensors never reach the page.
    foreign = scalar(engine, "SELECT id FROM sensors WHERE agency_code <> :a LIMIT 1", a=operator.agency)
    if foreign:
        assert page.locator(f'[data-feature-id="{foreign}"]').count() == 0

    web.assert_stayed_local()
    assert not web.console_errors, web.console_errors
    requested = {r.split("?")[0] for r in web.requests}
    assert any(r.endswith("/maps/static/vendor/leaflet@1.9.4/dist/leaflet.js") for r in requested)
    assert any("/api/v1/detections" in r for r in requested)
    assert any("since=" in r for r in web.requests if "/api/v1/detections" in r), "no incremental poll"


def test_cop_without_a_session_goes_to_the_login_form(web):
    web.page.goto(web.base_url + "/maps/cop")
    assert web.page.url.endswith("/login")
    assert web.page.locator("input[name=password]").count() == 1
    web.assert_stayed_local()
