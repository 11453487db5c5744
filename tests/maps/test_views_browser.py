"""The track and coverage maps in a real browser, each with a screenshot and no outside request."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from core import topics
from maps.coverage import GAP_COLOUR, NEVER_PATROLLED_COLOUR, PATROL_AGE_STEPS
from tests.conftest import detection, mosquitto_pub, scalar, unique, wait_for
from tests.maps.test_patrol_browser import _unit

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# Either side of the Thai-Malaysian land border near Sadao / Bukit Kayu Hitam.
TRACK = [(100.4190, 6.6200), (100.4195, 6.5400), (100.4205, 6.5060), (100.4210, 6.5000)]
TIMEOUT_MS = 20_000


def test_track_map_shows_the_path_and_the_crossing_direction(settings, engine, ingest, make_gateway, operator, web):
    sensor = unique("cam")
    gw = make_gateway(agency=operator.agency, sensors={sensor: (100.42, 6.56)}, range_m=10_000)
    t0 = datetime.now(timezone.utc) - timedelta(seconds=60)
    topic = topics.detections(settings.mqtt_topic_root, gw.agency, gw.id, sensor)
    for i, (lon, lat) in enumerate(TRACK):
        body = detection(
            sensor,
            lon,
            lat,
            track_id="t1",
            object_class="person",
            observed_at=(t0 + timedelta(seconds=10 * i)).isoformat(),
        )
        assert mosquitto_pub(settings, gw, topic, body).returncode == 0
    track_key = f"{sensor}:t1"
    wait_for(lambda: scalar(engine, "SELECT count(*) FROM detections WHERE track_key = :k", k=track_key) == 4)
    wait_for(
        lambda: (
            scalar(engine, "SELECT count(*) FROM alerts WHERE track_key = :k AND kind = 'crossing'", k=track_key) == 1
        )
    )

    web.login(operator)
    web.page.goto(f"{web.base_url}/maps/track?track_key={track_key}")
    web.page.wait_for_selector("path.bw-track-path", timeout=TIMEOUT_MS)
    label = web.page.wait_for_selector(".bw-crossing-label", timeout=TIMEOUT_MS)
    assert "TH → MY" in label.inner_text()
    assert web.page.locator("path.bw-track-fix").count() == 4
    assert web.page.locator(".bw-arrow").count() == 3
    web.page.wait_for_selector("path.bw-segments", timeout=TIMEOUT_MS)
    title = web.page.locator(".bw-title").inner_text()
    assert "4 fixes" in title and "1 crossing" in title
    web.page.wait_for_selector('body[data-bw-live="ok"]', timeout=TIMEOUT_MS)
    assert (
        web.page.locator(".bw-title a", has_text="Latest fix on the COP").get_attribute("href")
        == "/maps/cop?lat=6.50000&lon=100.42100&zoom=13"
    )
    web.screenshot("track")
    web.assert_stayed_local()
    assert not web.console_errors, web.console_errors


def test_coverage_map_draws_a_heat_map_of_the_period(settings, engine, make_gateway, operator, web):
    """The heat map of the period, and the segments by last patrol with the gaps highlighted."""
    sensor = unique("cam")
    make_gateway(agency=operator.agency, sensors={sensor: (100.42, 6.56)})
    # Activity as the sensors would have stored it: 300 detections in the last 12 hours, two hot spots.
    with engine.begin() as conn:
        conn.execute(
            text("""
            INSERT INTO detections (observed_at, sensor_id, agency_code, event_id, geom, located_by, class,
                                    confidence, raw)
            SELECT now() - (g * interval '2 minutes'), CAST(:s AS text), :a, md5(CAST(:s AS text) || g::text), ST_SetSRID(ST_MakePoint(
                       CASE WHEN g % 3 = 0 THEN 101.95 ELSE 100.42 END + (g % 7) * 0.002,
                       CASE WHEN g % 3 = 0 THEN 6.05 ELSE 6.56 END + (g % 5) * 0.002), 4326),
                   'payload', 'person', 0.8, '{}'
            FROM generate_series(1, 300) AS g"""),
            {"s": sensor, "a": operator.agency},
        )
    # One of the agency's units passed along the land border at Sadao an hour ago: that segment
    # is patrolled, the others of the Thai border are gaps.
    unit_id, _, _ = _unit(engine, operator.agency, (100.43, 6.60))
    with engine.begin() as conn:
        conn.execute(
            text("""
            INSERT INTO unit_positions (unit_id, agency_code, client_id, observed_at, geom)
            VALUES (:u, :a, 'p1', now() - interval '1 hour', ST_SetSRID(ST_MakePoint(100.4205, 6.5065), 4326))"""),
            {"u": unit_id, "a": operator.agency},
        )
        patrolled = (
            conn.execute(
                text("""
            SELECT id FROM border_segments WHERE 'TH' IN (left_state, right_state)
              AND ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint(100.4205, 6.5065), 4326)::geography, :m)"""),
                {"m": settings.border_buffer_m},
            )
            .scalars()
            .all()
        )
        gaps = conn.execute(
            text("SELECT count(*) FROM border_segments WHERE 'TH' IN (left_state, right_state)")
        ).scalar() - len(patrolled)
    assert patrolled and gaps > 0

    web.login(operator)
    web.page.goto(f"{web.base_url}/maps/coverage?hours=24")
    web.page.wait_for_selector("canvas.leaflet-heatmap-layer", timeout=TIMEOUT_MS)
    assert "300 detections" in web.page.locator(".bw-title").inner_text()
    web.page.wait_for_selector("path.bw-segments", timeout=TIMEOUT_MS)
    web.page.wait_for_selector('body[data-bw-live="ok"]', timeout=TIMEOUT_MS)
    # The heat layer painted something: some pixels of its canvas are not transparent.
    painted = web.page.evaluate("""() => {
        const c = document.querySelector('canvas.leaflet-heatmap-layer');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n; }""")
    assert painted > 100
    # Segments by last patrol: the patrolled one green (within 6 h), the gaps highlighted.
    for segment in patrolled:
        web.page.wait_for_selector(
            f'path.bw-patrolled[data-feature-id="{segment}"][stroke="{PATROL_AGE_STEPS[0][1]}"]', timeout=TIMEOUT_MS
        )
        assert web.page.locator(f'path.bw-gaps[data-feature-id="{segment}"]').count() == 0
    web.page.wait_for_selector(f'path.bw-gaps[stroke="{GAP_COLOUR}"]', timeout=TIMEOUT_MS)
    assert web.page.locator("path.bw-gaps").count() >= 1
    assert web.page.locator(f'path.bw-patrolled[stroke="{NEVER_PATROLLED_COLOUR}"]').count() >= 1
    legend = web.page.locator(".bw-legend").inner_text()
    assert "Segments by last patrol" in legend and "≤ 6 h ago" in legend
    web.screenshot("coverage")
    web.assert_stayed_local()
    assert not web.console_errors, web.console_errors
