"""The map pages and the files they load: authentication, scoping, closed-network headers,
and the query parameters the live layers use (since, track_key, simplify, states)."""

from __future__ import annotations

from datetime import timedelta

import orjson

import features.detections
from api.params import TimeRange
from core.security import Principal
from features import density
from tests.factories import now


def _login(client, factory, agency=None):
    """A session cookie as /login sets it (tests/api/test_maps.py covers the form and its password check)."""
    agency = agency or factory.agency()
    username = factory.user(agency)
    # Kept as a request's commit keeps it: a refused request later rolls back only its own work.
    factory.session.commit()
    client.cookies.set("bw_token", factory.token(username))
    return agency, username


def test_static_files_need_a_session(client):
    assert client.get("/maps/static/live.js").status_code == 401
    assert client.get("/maps/static/vendor/leaflet@1.9.4/dist/leaflet.js").status_code == 401


def test_static_files_are_served_with_their_types(client, factory):
    _login(client, factory)
    js = client.get("/maps/static/vendor/leaflet@1.9.4/dist/leaflet.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert js.headers["x-content-type-options"] == "nosniff"
    font = client.get("/maps/static/vendor/fontawesome-free@6.2.0/webfonts/fa-solid-900.woff2")
    assert font.status_code == 200 and font.headers["content-type"] == "font/woff2"
    assert client.get("/maps/static/vendor/leaflet@1.9.4/LICENSE").status_code == 404  # no suffix: not served


def test_static_files_stay_inside_the_static_folder(client, factory):
    _login(client, factory)
    for path in (
        "/maps/static/%2e%2e/assets.py",
        "/maps/static/..%2f..%2fcore%2fsettings.py",
        "/maps/static/vendor/../../cop.py",
        "/maps/static/nope.js",
    ):
        assert client.get(path).status_code == 404, path


def test_cop_page_is_local_only_and_holds_no_data(client, factory):
    assert client.get("/maps/cop").status_code == 303
    agency, _ = _login(client, factory)
    sensor = factory.sensor(agency, 101.0, 6.2)
    page = client.get("/maps/cop")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert agency in html and "/api/v1/detections" in html and "/api/v1/segments" in html
    # The page is the same for every operator of the agency: the data comes from the API.
    assert sensor not in html
    for url in ("https://", "http://"):
        assert f'src="{url}' not in html and f'href="{url}' not in html


def test_configured_tile_server_is_allowed_by_the_policy(client, factory, monkeypatch):
    from core.settings import get_settings

    monkeypatch.setenv("BW_MAP_TILE_URL", "https://{s}.tiles.agency.example/{z}/{x}/{y}.png")
    get_settings.cache_clear()
    _login(client, factory)
    page = client.get("/maps/cop")
    assert "img-src 'self' data: blob: https://*.tiles.agency.example" in page.headers["content-security-policy"]
    assert "tiles.agency.example/{z}/{x}/{y}.png" in page.text


def test_overview_uses_the_local_base_layer(client, factory):
    _login(client, factory)
    html = client.get("/maps/overview").text
    assert "/api/v1/states" in html and "openstreetmap" not in html.lower()


def test_states_endpoint(client, factory):
    _, username = _login(client, factory)
    assert client.get("/api/v1/states", headers={"Authorization": "Bearer x"}).status_code == 401
    headers = factory.headers(username)
    fc = client.get("/api/v1/states?bbox=99,5,103,8&simplify=0.01", headers=headers).json()
    assert {f["id"] for f in fc["features"]} >= {"TH", "MY"}
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in fc["features"])
    full = client.get("/api/v1/states?bbox=99,5,103,8", headers=headers).content
    assert len(client.get("/api/v1/states?bbox=99,5,103,8&simplify=0.05", headers=headers).content) < len(full)


def test_detections_since_keeps_what_was_received_since(client, factory, db):
    from sqlalchemy import text

    agency, username = _login(client, factory)
    sensor = factory.sensor(agency, 101.0, 6.2)
    old = factory.detection(sensor, agency, 101.0, 6.2, now() - timedelta(minutes=5))
    new = factory.detection(sensor, agency, 101.0, 6.2, now() - timedelta(minutes=10))  # observed earlier
    db.execute(text("UPDATE detections SET received_at = now() - interval '5 minutes' WHERE id = :id"), {"id": old})
    since = (now() - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    fc = client.get("/api/v1/detections", params={"since": since}, headers=factory.headers(username)).json()
    assert [f["id"] for f in fc["features"]] == [new]
    bad = client.get("/api/v1/detections", params={"since": "yesterday"}, headers=factory.headers(username))
    assert bad.status_code == 422 and "since" in bad.text


def test_track_key_filters_detections_and_alerts(client, factory):
    agency, username = _login(client, factory)
    sensor = factory.sensor(agency, 101.0, 6.2)
    on_track = factory.detection(sensor, agency, 101.0, 6.2, now(), track="t1")
    factory.detection(sensor, agency, 101.1, 6.3, now(), track="t2")
    alert = factory.alert(sensor, agency, 101.0, 6.2, now())  # the factory puts alerts on track t1
    headers = factory.headers(username)
    dets = client.get("/api/v1/detections", params={"track_key": f"{sensor}:t1"}, headers=headers).json()
    assert [f["id"] for f in dets["features"]] == [on_track]
    alerts = client.get("/api/v1/alerts", params={"track_key": f"{sensor}:t1"}, headers=headers).json()
    assert [f["id"] for f in alerts["features"]] == [alert]


def test_track_page(client, factory):
    agency, _ = _login(client, factory)
    sensor = factory.sensor(agency, 100.42, 6.62)
    t0 = now() - timedelta(minutes=5)
    for i, lat in enumerate((6.62, 6.58, 6.52, 6.50)):
        factory.detection(sensor, agency, 100.42, lat, t0 + timedelta(seconds=30 * i), track="t1")
    factory.alert(sensor, agency, 100.42, 6.55, t0 + timedelta(seconds=45), from_state="TH", to_state="MY")
    page = client.get("/maps/track", params={"track_key": f"{sensor}:t1"})
    assert page.status_code == 200, page.text
    assert "TH &rarr; MY" in page.text and "4 fixes" in page.text
    assert "content-security-policy" in page.headers


def test_track_page_is_scoped_to_the_agency(client, factory):
    other = factory.agency()
    sensor = factory.sensor(other, 100.42, 6.62)
    factory.detection(sensor, other, 100.42, 6.62, now(), track="t1")
    _login(client, factory)
    page = client.get("/maps/track", params={"track_key": f"{sensor}:t1"})
    assert page.status_code == 404 and "no detections" in page.text
    assert client.get("/maps/track").status_code == 422  # the track key is required


def test_coverage_page_and_its_period(client, factory):
    agency, _ = _login(client, factory)
    sensor = factory.sensor(agency, 100.42, 6.62)
    for i in range(5):
        factory.detection(sensor, agency, 100.42, 6.62, now() - timedelta(minutes=i))
    factory.detection(sensor, agency, 100.9, 6.1, now() - timedelta(hours=30))  # outside the default 24 h
    page = client.get("/maps/coverage")
    assert page.status_code == 200 and "5 detections" in page.text
    assert "leaflet-heat.js" in page.text and "L.heatLayer(" in page.text
    assert "6 detections" in client.get("/maps/coverage?hours=48").text
    assert client.get("/maps/coverage?hours=0").status_code == 422
    bad = client.get("/maps/coverage", params={"start": "2026-11-22T10:00:00Z", "end": "2026-11-22T09:00:00Z"})
    assert bad.status_code == 422 and "start" in bad.text


def test_detection_density_counts_per_cell_and_is_scoped(factory, db):
    agency, other = factory.agency(), factory.agency()
    mine, theirs = factory.sensor(agency, 100.4, 6.6), factory.sensor(other, 100.4, 6.6)
    for _ in range(3):
        factory.detection(mine, agency, 100.4001, 6.6001, now())
    factory.detection(mine, agency, 101.5, 6.0, now())
    factory.detection(theirs, other, 100.4, 6.6, now())
    cells = density.cells(
        features.detections.LAYER,
        session=db,
        principal=Principal("x", agency, "operator"),
        time_range=TimeRange(start=now() - timedelta(hours=1)),
        cell_deg=0.01,
    )
    assert [n for _, _, n in cells] == [3, 1]
    lat, lon, _ = cells[0]
    assert abs(lat - 6.6001) < 1e-6 and abs(lon - 100.4001) < 1e-6


def test_map_layers_ask_only_for_their_agencys_data(client, factory):
    # The live layers reuse the scoped feature endpoints; the COP page itself carries no data.
    agency, username = _login(client, factory)
    other = factory.agency()
    theirs = factory.sensor(other, 101.0, 6.2)
    fc = orjson.loads(client.get("/api/v1/sensors", headers=factory.headers(username)).content)
    assert theirs not in {f["id"] for f in fc["features"]}


def test_cop_can_be_centred(client, factory):
    _login(client, factory)
    page = client.get("/maps/cop", params={"lat": 6.6, "lon": 100.43, "zoom": 11})
    assert page.status_code == 200 and "[6.6, 100.43]" in page.text and '"zoom": 11' in page.text
    assert client.get("/maps/cop", params={"lat": 6.6}).status_code == 422
    assert client.get("/maps/cop", params={"lat": 6.6, "lon": 100.4, "zoom": 40}).status_code == 422


def test_login_page_loads_nothing_from_elsewhere(client):
    page = client.get("/login")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.lower()
