"""The mobile API: Idempotency-Key replays, cursor pages, ETag / If-None-Match, since= delta sync."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.factories import TH_LAND, now

API = "/api/v1"


def incident_body(**kw):
    return {"title": "vehicle at the fence", "lon": TH_LAND[0], "lat": TH_LAND[1], **kw}


def count_incidents(db, agency: str) -> int:
    return db.execute(text("SELECT count(*) FROM incidents WHERE agency_code = :a"), {"a": agency}).scalar()


def test_a_retried_create_is_replayed_not_repeated(client, world, db):
    a = world.agency()
    headers = {**a.operator_h, "Idempotency-Key": str(uuid.uuid4())}
    first = client.post(f"{API}/incidents", json=incident_body(), headers=headers)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    again = client.post(f"{API}/incidents", json=incident_body(), headers=headers)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert count_incidents(db, a.code) == 1
    # The same JSON in another key order is the same request.
    reordered = {"lat": TH_LAND[1], "lon": TH_LAND[0], "title": "vehicle at the fence"}
    assert client.post(f"{API}/incidents", json=reordered, headers=headers).content == first.content
    # Without a key, or with a new one, a POST creates again.
    client.post(f"{API}/incidents", json=incident_body(), headers=a.operator_h)
    client.post(f"{API}/incidents", json=incident_body(), headers={**a.operator_h, "Idempotency-Key": "k2"})
    assert count_incidents(db, a.code) == 3


def test_the_same_key_with_another_body_is_refused(client, world, db):
    a = world.agency()
    headers = {**a.operator_h, "Idempotency-Key": "shift-42"}
    assert client.post(f"{API}/incidents", json=incident_body(), headers=headers).status_code == 201
    other = client.post(f"{API}/incidents", json=incident_body(priority="critical"), headers=headers)
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
    assert count_incidents(db, a.code) == 1


def test_keys_belong_to_their_caller(client, world, factory, db):
    a = world.agency()
    other_operator = factory.headers(factory.user(a.code))
    world.settle()
    key = {"Idempotency-Key": "same-key"}
    one = client.post(f"{API}/incidents", json=incident_body(), headers={**a.operator_h, **key})
    two = client.post(f"{API}/incidents", json=incident_body(), headers={**other_operator, **key})
    assert one.status_code == two.status_code == 201 and one.json()["id"] != two.json()["id"]


def test_a_failed_create_is_not_stored(client, world):
    a = world.agency()
    headers = {**a.operator_h, "Idempotency-Key": "k-fail"}
    r = client.post(f"{API}/incidents", json={"alert_ids": [2**40]}, headers=headers)
    assert r.status_code == 404
    assert client.post(f"{API}/incidents", json={"alert_ids": [2**40]}, headers=headers).status_code == 404


def test_position_batch_replay_with_a_key(client, world):
    a = world.agency()
    unit_id, device = world.unit(a, TH_LAND, device=True)
    body = {
        "positions": [
            {"client_id": "p1", "observed_at": (now() - timedelta(minutes=1)).isoformat(), "lon": 100.41, "lat": 6.62}
        ]
    }
    headers = {**device, "Idempotency-Key": "batch-1"}
    first = client.post(f"{API}/units/{unit_id}/positions", json=body, headers=headers)
    replay = client.post(f"{API}/units/{unit_id}/positions", json=body, headers=headers)
    assert first.json()["stored"] == 1 and replay.content == first.content


def test_cursor_pages_cover_everything_once(client, world):
    a = world.agency()
    ids = {world.unit(a, TH_LAND)[0] for _ in range(7)}
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{API}/units", params=params, headers=a.operator_h).json()
        seen += [u["id"] for u in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == sorted(ids)
    assert client.get(f"{API}/units", params={"cursor": "bm9wZQ"}, headers=a.operator_h).status_code == 422


def test_incident_pages_are_newest_first(client, world):
    a = world.agency()
    ids = [client.post(f"{API}/incidents", json=incident_body(), headers=a.operator_h).json()["id"] for _ in range(5)]
    first = client.get(f"{API}/incidents", params={"limit": 2}, headers=a.operator_h).json()
    rest = client.get(
        f"{API}/incidents", params={"limit": 10, "cursor": first["next_cursor"]}, headers=a.operator_h
    ).json()
    assert [i["id"] for i in first["items"] + rest["items"]] == ids[::-1] and rest["next_cursor"] is None


def test_etag_and_if_none_match(client, world):
    a = world.agency()
    unit_id, device = world.unit(a, TH_LAND, device=True)
    r = client.get(f"{API}/units/{unit_id}", headers=device)
    etag = r.headers["etag"]
    unchanged = client.get(f"{API}/units/{unit_id}", headers={**device, "If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["etag"] == etag
    client.put(f"{API}/units/{unit_id}/status", json={"status": "off_duty"}, headers=device)
    changed = client.get(f"{API}/units/{unit_id}", headers={**device, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["status"] == "off_duty"


def test_compact_json(client, world):
    a = world.agency()
    unit_id, _ = world.unit(a, TH_LAND)
    body = client.get(f"{API}/units/{unit_id}", headers=a.operator_h).content
    assert b": " not in body and b", " not in body


@pytest.fixture
def committed(engine):
    """An agency, users and two units committed for real (since= compares transaction ids); removed after."""
    from core.db import session_scope
    from tests.factories import Factory, World

    made = {}
    with session_scope(engine) as s:
        world = World(Factory(s), s)
        agency = world.agency()
        unit_id, device = world.unit(agency, TH_LAND, device=True)
        other, _ = world.unit(agency, TH_LAND)
        made.update(agency=agency, unit=unit_id, other=other, device=device)
    yield made
    with session_scope(engine) as s:
        code = made["agency"].code
        s.execute(text("DELETE FROM incidents WHERE agency_code = :a"), {"a": code})
        s.execute(text("DELETE FROM patrol_units WHERE agency_code = :a"), {"a": code})
        s.execute(
            text(
                "DELETE FROM idempotent_requests WHERE username IN (SELECT username FROM users WHERE agency_code = :a)"
            ),
            {"a": code},
        )
        s.execute(text("DELETE FROM users WHERE agency_code = :a"), {"a": code})
        s.execute(text("DELETE FROM agencies WHERE code = :a"), {"a": code})


def test_since_returns_only_what_changed(committed, jwt_secret):
    from api.app import create_app

    a, unit_id, device = committed["agency"], committed["unit"], committed["device"]
    with TestClient(create_app()) as client:

        def task() -> dict:
            incident = client.post(f"{API}/incidents", json=incident_body(), headers=a.operator_h).json()
            r = client.post(
                f"{API}/incidents/{incident['id']}/taskings", json={"unit_id": unit_id}, headers=a.operator_h
            )
            assert r.status_code == 201, r.text
            return r.json()

        first = task()
        sync = client.get(f"{API}/units/{unit_id}/taskings", headers=device).json()
        assert [t["id"] for t in sync["items"]] == [first["id"]]
        token = sync["sync_token"]
        nothing = client.get(f"{API}/units/{unit_id}/taskings", params={"since": token}, headers=device).json()
        assert nothing["items"] == []
        client.post(f"{API}/taskings/{first['id']}/decline", headers=device)
        second = task()
        delta = client.get(f"{API}/units/{unit_id}/taskings", params={"since": token}, headers=device).json()
        assert [(t["id"], t["status"]) for t in delta["items"]] == [
            (first["id"], "declined"),
            (second["id"], "assigned"),
        ]
        assert client.get(f"{API}/units/{unit_id}/taskings", params={"since": "x1"}, headers=device).status_code == 422
        # The other unit's device cannot read this unit's taskings; nor can this one read the other's.
        other = client.get(f"{API}/units/{committed['other']}/taskings", headers=device)
        assert other.status_code == 403
