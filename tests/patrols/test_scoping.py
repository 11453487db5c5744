"""Another agency can neither read nor change a patrol record, endpoint by endpoint (missing,
forged and expired tokens are refused on every route by tests/api/test_auth.py, which walks
every route of the application)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.factories import TH_LAND, now

API = "/api/v1"


@pytest.fixture
def owned(client, world, factory):
    a, b = world.agency("TH"), world.agency("TH")  # same country: scope is by agency, not by state
    unit_id, device = world.unit(a, TH_LAND, device=True)
    client.post(
        f"{API}/units/{unit_id}/positions",
        headers=device,
        json={
            "positions": [
                {
                    "client_id": "p1",
                    "observed_at": (now() - timedelta(minutes=5)).isoformat(),
                    "lon": 100.42,
                    "lat": 6.63,
                }
            ]
        },
    )
    incident = client.post(
        f"{API}/incidents", json={"title": "contact", "lon": TH_LAND[0], "lat": TH_LAND[1]}, headers=a.operator_h
    ).json()
    tasking = client.post(
        f"{API}/incidents/{incident['id']}/taskings", json={"unit_id": unit_id}, headers=a.operator_h
    ).json()
    partner = factory.agency("MY")
    zone = factory.zone(a.code, members=[a.code, partner], kind="joint_patrol_sector")
    world.settle()
    patrol = client.post(
        f"{API}/joint-patrols",
        headers=a.admin_h,
        json={
            "name": "night patrol",
            "zone_id": zone,
            "agencies": [a.code, partner],
            "starts_at": now().isoformat(),
            "ends_at": (now() + timedelta(hours=8)).isoformat(),
        },
    )
    assert patrol.status_code == 201, patrol.text
    b_unit_device = world.unit(b, TH_LAND, device=True)[1]
    return {
        "a": a,
        "b": b,
        "unit": unit_id,
        "incident": incident["id"],
        "tasking": tasking["id"],
        "patrol": patrol.json()["id"],
        "b_device": b_unit_device,
    }


def requests(o):
    u, i, t, p = o["unit"], o["incident"], o["tasking"], o["patrol"]
    return [
        ("GET", f"/units/{u}", None),
        ("PUT", f"/units/{u}/status", {"status": "off_duty"}),
        (
            "POST",
            f"/units/{u}/positions",
            {"positions": [{"client_id": "x", "observed_at": now().isoformat(), "lon": 100.4, "lat": 6.6}]},
        ),
        ("GET", f"/units/{u}/positions", None),
        ("PUT", f"/units/{u}/credentials", None),
        ("GET", f"/units/{u}/taskings", None),
        ("GET", f"/incidents/{i}", None),
        ("GET", f"/incidents/{i}/timeline", None),
        ("POST", f"/incidents/{i}/notes", {"note": "mine now"}),
        ("GET", f"/incidents/{i}/recommendation", None),
        ("POST", f"/incidents/{i}/taskings", {"unit_id": u}),
        ("GET", f"/incidents/{i}/taskings", None),
        ("GET", f"/taskings/{t}", None),
        ("POST", f"/taskings/{t}/accept", None),
        ("POST", f"/taskings/{t}/decline", None),
        ("GET", f"/joint-patrols/{p}", None),
        ("PUT", f"/incidents/{i}/status", {"status": "closed"}),
    ]


@pytest.mark.parametrize("who", ["operator_h", "admin_h", "b_device"])
def test_another_agency_gets_404_everywhere(client, owned, who):
    b = owned["b"]
    headers = owned["b_device"] if who == "b_device" else getattr(b, who)
    for method, path, body in requests(owned):
        r = client.request(method, API + path, json=body, headers=headers)
        assert r.status_code in (403, 404), f"{method} {path}: {r.status_code} {r.text}"
    # Nothing changed for the owner.
    a = owned["a"]
    assert client.get(f"{API}/units/{owned['unit']}", headers=a.operator_h).json()["status"] == "available"
    assert client.get(f"{API}/taskings/{owned['tasking']}", headers=a.operator_h).json()["status"] == "assigned"
    assert client.get(f"{API}/incidents/{owned['incident']}", headers=a.operator_h).json()["status"] == "assigned"
    assert len(client.get(f"{API}/incidents/{owned['incident']}/timeline", headers=a.operator_h).json()["entries"]) == 3


def test_lists_show_only_the_callers_records(client, owned):
    a, b = owned["a"], owned["b"]
    for path, key in (("/units", "items"), ("/incidents", "items"), ("/joint-patrols", "items")):
        mine = client.get(API + path, headers=a.operator_h).json()[key]
        theirs = client.get(API + path, headers=b.operator_h).json()[key]
        assert mine, path
        assert not {x["id"] for x in mine} & {x["id"] for x in theirs}, path
    coverage_b = client.get(f"{API}/coverage", headers=b.operator_h).json()["segments"]
    assert all(s["last_unit_id"] is None for s in coverage_b)


def test_the_owner_can_do_all_of_it(client, owned):
    """The same requests succeed for the owner (so the refusals above are about scope, not the requests)."""
    a = owned["a"]
    device_free = ("/credentials", "/positions")
    for method, path, body in requests(owned):
        headers = a.admin_h
        r = client.request(method, API + path, json=body, headers=headers)
        if path.endswith(device_free) and method != "GET":
            continue
        assert r.status_code < 500, f"{method} {path}: {r.status_code}"
        if method == "GET":
            assert r.status_code == 200, f"{method} {path}: {r.text}"


def test_an_expired_token_is_refused_on_a_patrol_write(client, world, jwt_secret):
    import jwt

    a = world.agency()
    unit_id, _ = world.unit(a, TH_LAND)
    iat = now() - timedelta(hours=2)
    claims = {
        "sub": a.admin,
        "agency": a.code,
        "role": "admin",
        "iss": "borderwatch",
        "iat": int(iat.timestamp()),
        "exp": int((iat + timedelta(hours=1)).timestamp()),
    }
    expired = {"Authorization": f"Bearer {jwt.encode(claims, jwt_secret, algorithm='HS256')}"}
    r = client.put(f"{API}/units/{unit_id}/status", json={"status": "off_duty"}, headers=expired)
    assert r.status_code == 401 and r.json()["error"] == "token_expired"
    assert client.get(f"{API}/units/{unit_id}", headers=a.admin_h).json()["status"] == "available"
