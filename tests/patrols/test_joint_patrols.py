"""Joint patrols (sector, agencies, units, route, hand-over points) and border coverage."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.factories import TH_LAND, now

API = "/api/v1"


def plan(sector, **kw):
    a, b = sector["a"], sector["b"]
    body = {
        "name": "Straits night patrol",
        "zone_id": sector["zone"],
        "agencies": [a.code, b.code],
        "starts_at": now().isoformat(),
        "ends_at": (now() + timedelta(hours=10)).isoformat(),
        "unit_ids": [sector["a_boat"], sector["b_boat"]],
        "waypoints": [[100.2, 2.8], [100.5, 3.0], [100.8, 3.2]],
        "handover_points": [{"name": "HP-1", "lon": 100.5, "lat": 3.0, "from_agency": a.code, "to_agency": b.code}],
    }
    body.update(kw)
    return body


def test_plan_a_joint_patrol(client, sector):
    a, b, c = sector["a"], sector["b"], sector["c"]
    r = client.post(f"{API}/joint-patrols", json=plan(sector), headers=a.admin_h)
    assert r.status_code == 201, r.text
    patrol = r.json()
    assert patrol["agencies"] == [a.code, b.code] and patrol["unit_ids"] == sorted([sector["a_boat"], sector["b_boat"]])
    assert patrol["route"] == {"type": "LineString", "coordinates": [[100.2, 2.8], [100.5, 3.0], [100.8, 3.2]]}
    assert patrol["handover_points"] == [
        {
            "seq": 1,
            "name": "HP-1",
            "from_agency": a.code,
            "to_agency": b.code,
            "geometry": {"type": "Point", "coordinates": [100.5, 3.0]},
        }
    ]
    # The partner sees it; an agency outside the agreement does not.
    assert client.get(f"{API}/joint-patrols/{patrol['id']}", headers=b.operator_h).json() == patrol
    assert client.get(f"{API}/joint-patrols/{patrol['id']}", headers=c.operator_h).status_code == 404
    active = client.get(f"{API}/joint-patrols", params={"active": True}, headers=b.operator_h).json()["items"]
    assert [p["id"] for p in active] == [patrol["id"]]


@pytest.mark.parametrize(
    "change,reason",
    [
        (lambda s: {"agencies": [s["a"].code, s["c"].code]}, "not party"),
        (lambda s: {"unit_ids": [s["c_boat"]]}, "units"),
        (
            lambda s: {
                "handover_points": [
                    {"name": "x", "lon": 100.5, "lat": 3.0, "from_agency": s["a"].code, "to_agency": s["a"].code}
                ]
            },
            "handover",
        ),
        (lambda s: {"ends_at": (now() - timedelta(hours=1)).isoformat()}, "ends_at"),
        (lambda s: {"waypoints": [[100.2, 2.8]]}, "waypoints"),
    ],
)
def test_bad_plans_are_refused_with_a_reason(client, sector, change, reason):
    r = client.post(f"{API}/joint-patrols", json=plan(sector, **change(sector)), headers=sector["a"].admin_h)
    assert r.status_code == 422 and reason in r.text


def test_only_a_member_may_plan_in_a_sector(client, sector, factory):
    c = sector["c"]
    body = plan(sector, agencies=[c.code, sector["a"].code], unit_ids=[], handover_points=[])
    assert client.post(f"{API}/joint-patrols", json=body, headers=c.admin_h).status_code == 404
    assert client.post(f"{API}/joint-patrols", json=plan(sector), headers=sector["a"].operator_h).status_code == 403


def test_coverage_and_gaps(client, world, factory):
    a = world.agency("TH")
    near, _ = factory.segment([(100.30, 6.60), (100.50, 6.60)], impact_level="high")
    far, _ = factory.segment([(101.50, 6.00), (101.70, 6.00)], impact_level="high")
    low, _ = factory.segment([(102.50, 6.00), (102.70, 6.00)], impact_level="low")
    world.settle()
    unit_id, device = world.unit(a, TH_LAND, device=True)
    when = now() - timedelta(hours=2)
    client.post(
        f"{API}/units/{unit_id}/positions",
        headers=device,
        json={"positions": [{"client_id": "c1", "observed_at": when.isoformat(), "lon": 100.40, "lat": 6.62}]},
    )  # about 2 km off
    segments = {s["segment_id"]: s for s in client.get(f"{API}/coverage", headers=a.operator_h).json()["segments"]}
    assert segments[near]["last_unit_id"] == unit_id
    assert segments[near]["last_patrolled_at"].startswith(when.strftime("%Y-%m-%dT%H:%M"))
    assert segments[far]["last_patrolled_at"] is None
    gaps = client.get(f"{API}/coverage/gaps", params={"hours": 24}, headers=a.operator_h).json()["segments"]
    ids = [s["segment_id"] for s in gaps]
    assert near not in ids and far in ids and low in ids
    assert ids.index(far) < ids.index(low)
    levels = [s["impact_level"] for s in gaps]
    assert levels == sorted(levels, key=["high", "medium", "low"].index)
    # Within one hour the near segment is a gap too.
    one_hour = client.get(f"{API}/coverage/gaps", params={"hours": 1}, headers=a.operator_h).json()["segments"]
    assert near in [s["segment_id"] for s in one_hour]
    # Another agency's units do not cover this agency's border.
    other = world.agency("TH")
    theirs = {s["segment_id"]: s for s in client.get(f"{API}/coverage", headers=other.operator_h).json()["segments"]}
    assert theirs[near]["last_patrolled_at"] is None
