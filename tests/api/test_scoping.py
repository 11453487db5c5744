"""Agency scoping: a user sees their own agency's sensors, detections and alerts, the zones their
agency owns or shares, and every border segment -- and nothing else, whatever the filters say."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.factories import now


@pytest.fixture
def two_agencies(factory):
    a, b = factory.agency("TH"), factory.agency("MY")
    t = now() - timedelta(minutes=30)
    sa, sb = factory.sensor(a, 100.40, 6.60), factory.sensor(b, 100.45, 6.55)
    return {
        "a": a,
        "b": b,
        "user_a": factory.headers(factory.user(a)),
        "user_b": factory.headers(factory.user(b, role="operator")),
        "sensor_a": sa,
        "sensor_b": sb,
        "det_a": factory.detection(sa, a, 100.41, 6.61, t),
        "det_b": factory.detection(sb, b, 100.46, 6.56, t),
        "alert_a": factory.alert(sa, a, 100.41, 6.61, t, title="A-only crossing"),
        "alert_b": factory.alert(sb, b, 100.46, 6.56, t, title="B-only crossing"),
        "zone_a": factory.zone(a),
        "zone_b": factory.zone(b),
        "zone_joint": factory.zone(a, members=[a, b], kind="joint_patrol_sector"),
        "segment": factory.segment([(100.3, 6.5), (100.6, 6.7)])[0],
    }


def ids(client, headers, endpoint, **params) -> set:
    response = client.get(f"/api/v1/{endpoint}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return {f["id"] for f in response.json()["features"]}


def test_sensors_detections_alerts_are_own_agency_only(client, two_agencies):
    w = two_agencies
    for user, mine, theirs in (("user_a", "a", "b"), ("user_b", "b", "a")):
        headers = w[user]
        assert ids(client, headers, "sensors") == {w[f"sensor_{mine}"]}
        assert w[f"det_{mine}"] in ids(client, headers, "detections")
        assert w[f"det_{theirs}"] not in ids(client, headers, "detections")
        assert ids(client, headers, "alerts") == {w[f"alert_{mine}"]}


def test_every_returned_feature_belongs_to_the_caller(client, two_agencies):
    w = two_agencies
    for endpoint in ("sensors", "detections", "alerts"):
        response = client.get(f"/api/v1/{endpoint}", headers=w["user_b"])
        assert {f["properties"]["agency_code"] for f in response.json()["features"]} == {w["b"]}


def test_zones_owned_or_shared(client, two_agencies):
    w = two_agencies
    seen_by_a = ids(client, w["user_a"], "zones")
    seen_by_b = ids(client, w["user_b"], "zones")
    assert w["zone_a"] in seen_by_a and w["zone_joint"] in seen_by_a and w["zone_b"] not in seen_by_a
    assert w["zone_b"] in seen_by_b and w["zone_joint"] in seen_by_b and w["zone_a"] not in seen_by_b


def test_segments_are_shared(client, two_agencies):
    w = two_agencies
    assert w["segment"] in ids(client, w["user_a"], "segments")
    assert w["segment"] in ids(client, w["user_b"], "segments")


def test_filters_cannot_reach_another_agency(client, two_agencies):
    w = two_agencies
    assert ids(client, w["user_b"], "detections", sensor_id=w["sensor_a"]) == set()
    assert ids(client, w["user_b"], "alerts", sensor_id=w["sensor_a"]) == set()
    # A bbox around A's sensor only still finds nothing of A's.
    assert ids(client, w["user_b"], "sensors", bbox="100.39,6.59,100.42,6.62") == set()
    assert ids(client, w["user_b"], "zones", kind="restricted_area") == {w["zone_b"]}


def test_agency_claim_must_match_the_user(client, factory, two_agencies, jwt_secret):
    """A token claiming another agency than the user's (forged or stale) is refused."""
    import jwt

    from accounts import service

    w = two_agencies
    username = factory.user(w["b"])
    user = service.get_user(session=factory.session, username=username)
    claims = {
        "sub": user.username,
        "agency": w["a"],
        "role": user.role,
        "iss": "borderwatch",
        "iat": int(now().timestamp()),
        "exp": int((now() + timedelta(minutes=5)).timestamp()),
    }
    token = jwt.encode(claims, jwt_secret, algorithm="HS256")
    response = client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_map_shows_only_own_alerts(client, two_agencies, factory):
    w = two_agencies
    client.cookies.set("bw_token", w["user_b"]["Authorization"].removeprefix("Bearer "))
    page = client.get("/maps/overview")
    assert page.status_code == 200
    assert "B-only crossing" in page.text
    assert "A-only crossing" not in page.text
