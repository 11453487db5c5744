"""Browser pages: login form, cookie, logout and the folium overview map."""

from __future__ import annotations

from datetime import timedelta

import folium
import jwt

from maps.overview import build_overview
from tests.factories import PASSWORD, now


def test_overview_redirects_to_login_without_cookie(client):
    response = client.get("/maps/overview")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


def test_login_page(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<form method="post" action="/login">' in response.text
    assert 'name="password" type="password"' in response.text


def test_wrong_password_shows_the_form_again(client, factory):
    username = factory.user(factory.agency())
    response = client.post("/login", data={"username": username, "password": "wrong password!"})
    assert response.status_code == 401
    assert "Invalid username or password." in response.text
    assert "bw_token" not in client.cookies


def test_login_sets_a_strict_httponly_cookie_and_renders_the_map(client, factory):
    agency = factory.agency()
    username = factory.user(agency)
    seg_id, seg_name = factory.segment([(100.9, 6.1), (101.2, 6.3)], impact_level="high")
    sensor = factory.sensor(agency, 101.0, 6.2)
    factory.alert(
        sensor, agency, 101.0, 6.2, now() - timedelta(minutes=3), severity="critical", title="Person crossing MY → TH"
    )

    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 303
    assert response.headers["location"] == "/maps/cop"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("bw_token=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Path=/" in cookie

    page = client.get("/maps/overview")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert "leaflet" in html.lower()
    assert "Border segments" in html and seg_name in html
    assert "Open alerts" in html and "Person crossing MY" in html
    assert sensor in html
    # Signed in: the login page sends the user to the map.
    assert client.get("/login").headers["location"] == "/maps/cop"


def test_logout_clears_the_cookie(client, factory):
    username = factory.user(factory.agency())
    client.post("/login", data={"username": username, "password": PASSWORD})
    response = client.post("/logout")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert "bw_token" not in client.cookies
    assert client.get("/maps/overview").status_code == 303


def test_expired_cookie_redirects_to_login(client, factory, jwt_secret):
    from accounts import service

    username = factory.user(factory.agency())
    user = service.get_user(session=factory.session, username=username)
    iat = now() - timedelta(hours=3)
    token = jwt.encode(
        {
            "sub": username,
            "agency": user.agency_code,
            "role": user.role,
            "iss": "borderwatch",
            "iat": int(iat.timestamp()),
            "exp": int((iat + timedelta(hours=1)).timestamp()),
        },
        jwt_secret,
        algorithm="HS256",
    )
    client.cookies.set("bw_token", token)
    response = client.get("/maps/overview")
    assert response.status_code == 303 and response.headers["location"] == "/login"


def test_data_in_the_map_is_escaped(client, factory):
    agency = factory.agency()
    username = factory.user(agency)
    sensor = factory.sensor(agency, 101.0, 6.2)
    factory.alert(sensor, agency, 101.0, 6.2, now(), title="<script>alert(1)</script>`${x}`")
    client.post("/login", data={"username": username, "password": PASSWORD})
    html = client.get("/maps/overview").text
    assert "<script>alert(1)</script>" not in html
    assert "${x}" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# -- the pure builder --------------------------------------------------------------------------
def _fc(*features):
    return {"type": "FeatureCollection", "features": list(features)}


def test_build_overview_with_nothing_to_show():
    m = build_overview(_fc(), _fc(), _fc(), _fc())
    assert isinstance(m, folium.Map)
    html = m.get_root().render()
    assert "Border segments" in html and "Zones" in html and "Sensors" in html and "Open alerts" in html


def test_build_overview_colours_by_level():
    segments = _fc(
        {
            "type": "Feature",
            "id": 1,
            "geometry": {"type": "LineString", "coordinates": [[100, 6], [101, 6.5]]},
            "properties": {
                "name": "Golok river",
                "kind": "land",
                "impact_level": "high",
                "left_state": "TH",
                "right_state": "MY",
            },
        },
    )
    zones = _fc(
        {
            "type": "Feature",
            "id": 7,
            "geometry": {"type": "MultiPolygon", "coordinates": [[[[100, 6], [100.1, 6], [100.1, 6.1], [100, 6]]]]},
            "properties": {
                "name": "Sector 1",
                "kind": "joint_patrol_sector",
                "owner_agency": "TH-RTP",
                "impact_level": "medium",
            },
        },
    )
    sensors = _fc(
        {
            "type": "Feature",
            "id": "cam-1",
            "geometry": {"type": "Point", "coordinates": [100.5, 6.2]},
            "properties": {"name": "Tower 1", "kind": "camera", "gateway_status": "online"},
        }
    )
    alerts = _fc(
        {
            "type": "Feature",
            "id": 3,
            "geometry": {"type": "Point", "coordinates": [100.5, 6.25]},
            "properties": {
                "title": "Vehicle crossing",
                "severity": "critical",
                "observed_at": "2026-11-22T07:00:00Z",
                "from_state": "MY",
                "to_state": "TH",
                "kind": "crossing",
                "class": "vehicle",
                "sensor_id": "cam-1",
            },
        }
    )
    html = build_overview(segments, zones, sensors, alerts).get_root().render()
    assert "#c62828" in html  # high impact segment
    assert "#00897b" in html  # joint patrol sector
    assert "#b71c1c" in html  # critical alert
    assert "Vehicle crossing" in html and "MY &rarr; TH" in html and "2026-11-22T07:00:00Z" in html
    assert "Golok river" in html and "Tower 1" in html
