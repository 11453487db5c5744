"""Sharing agreements over HTTP: who may create, read and withdraw them, what is refused and why,
and the audit entries they leave."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.usefixtures("jwt_secret")


API = "/api/v1/sharing/agreements"


@pytest.fixture
def parties(factory, db):  # noqa: F811
    a, b, c = factory.agency("TH"), factory.agency("MY"), factory.agency("ID")
    sector = factory.zone(a, members=[a, b], kind="joint_patrol_sector")
    zone = factory.zone(a)
    segment, _ = factory.segment([(100.0, 6.0), (100.1, 6.1)])
    users = {
        "a_sup": factory.headers(factory.user(a, role="supervisor")),
        "a_admin": factory.headers(factory.user(a, role="admin")),
        "a_op": factory.headers(factory.user(a, role="operator")),
        "b_sup": factory.headers(factory.user(b, role="supervisor")),
        "b_op": factory.headers(factory.user(b, role="operator")),
        "c_sup": factory.headers(factory.user(c, role="supervisor")),
    }
    db.commit()
    return {"a": a, "b": b, "c": c, "sector": sector, "zone": zone, "segment": segment, **users}


def body(p, **over) -> dict:
    return {
        "to_agency": p["b"],
        "alert_kinds": ["crossing"],
        "incident_categories": ["drugs"],
        "zone_ids": [p["zone"]],
        "segment_ids": [p["segment"]],
        "purpose": "MoU 2026/14, art. 3",
        **over,
    }


def test_create_read_list_withdraw(client, parties, db):  # noqa: F811
    p = parties
    r = client.post(API, json=body(p, personal_data=True), headers=p["a_sup"])
    assert r.status_code == 201, r.text
    g = r.json()
    assert g["from_agency"] == p["a"] and g["to_agency"] == p["b"] and g["direction"] == "outgoing"
    assert g["active"] is True and g["personal_data"] is True and g["withdrawn_at"] is None
    sector = client.post(API, json=body(p, to_agency=None, to_sector_zone_id=p["sector"]), headers=p["a_admin"])
    assert sector.status_code == 201, sector.text

    # The receiving agency reads it as incoming; the sector's members too; an outsider gets 404.
    assert client.get(f"{API}/{g['id']}", headers=p["b_op"]).json()["direction"] == "incoming"
    assert client.get(f"{API}/{sector.json()['id']}", headers=p["b_op"]).status_code == 200
    assert client.get(f"{API}/{g['id']}", headers=p["c_sup"]).status_code == 404
    assert client.get(f"{API}/999999999", headers=p["a_sup"]).status_code == 404
    ids = lambda r: [i["id"] for i in r.json()["items"]]  # noqa: E731
    assert ids(client.get(API, headers=p["a_op"])) == [sector.json()["id"], g["id"]]
    assert ids(client.get(API, params={"direction": "incoming"}, headers=p["b_op"])) == [sector.json()["id"], g["id"]]
    assert ids(client.get(API, params={"direction": "incoming"}, headers=p["a_op"])) == []
    assert ids(client.get(API, headers=p["c_sup"])) == []
    page = client.get(API, params={"limit": 1}, headers=p["a_op"]).json()
    assert ids(client.get(API, params={"limit": 1, "cursor": page["next_cursor"]}, headers=p["a_op"])) == [g["id"]]

    # Only the releasing agency's supervisors and admins withdraw; twice is a conflict.
    assert client.post(f"{API}/{g['id']}/withdraw", headers=p["a_op"]).status_code == 403
    assert client.post(f"{API}/{g['id']}/withdraw", headers=p["b_sup"]).status_code == 403
    assert client.post(f"{API}/{g['id']}/withdraw", headers=p["c_sup"]).status_code == 404
    r = client.post(f"{API}/{g['id']}/withdraw", json={"reason": "end of operation"}, headers=p["a_sup"])
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["withdrawn_by"]
    assert client.post(f"{API}/{g['id']}/withdraw", headers=p["a_sup"]).status_code == 409
    assert ids(client.get(API, params={"active": "true"}, headers=p["b_op"])) == [sector.json()["id"]]
    assert ids(client.get(API, params={"active": "false"}, headers=p["b_op"])) == [g["id"]]

    entries = db.execute(
        text(
            "SELECT action, agencies, details FROM audit_log WHERE entity_type = 'agreement' AND entity_id = :id "
            "ORDER BY seq"
        ),
        {"id": str(g["id"])},
    ).all()
    assert [e.action for e in entries] == ["sharing.create", "sharing.withdraw"]
    assert set(entries[0].agencies) == {p["a"], p["b"]} and entries[0].details["personal_data"] is True
    assert entries[1].details["reason"] == "end of operation"
    sector_entry = db.execute(
        text("SELECT agencies FROM audit_log WHERE entity_type = 'agreement' AND entity_id = :id"),
        {"id": str(sector.json()["id"])},
    ).scalar_one()
    assert set(sector_entry) == {p["a"], p["b"]}


def test_authentication_and_roles(client, parties):  # noqa: F811
    p = parties
    assert client.post(API, json=body(p)).status_code == 401
    assert client.get(API).status_code == 401
    assert client.get(f"{API}/1").status_code == 401
    assert client.post(f"{API}/1/withdraw").status_code == 401
    r = client.post(API, json=body(p), headers=p["a_op"])
    assert r.status_code == 403 and r.json()["error"] == "role_not_allowed"  # the access table refuses first


REFUSALS = [
    ({"to_agency": None}, "exactly one"),
    ({"to_sector_zone_id": 1}, "exactly one"),
    ({"alert_kinds": [], "incident_categories": []}, "at least one"),
    ({"alert_kinds": ["teleport"]}, None),
    ({"incident_categories": ["jaywalking"]}, None),
    ({"to_agency": "SELF"}, "another agency"),
    ({"to_agency": "XX-NOBODY"}, "does not exist"),
    ({"zone_ids": [2**31 - 1]}, "do not exist"),
    ({"segment_ids": [2**31 - 1]}, "do not exist"),
    ({"zone_ids": [0]}, None),
    ({"valid_from": "2026-05-01T00:00:00Z", "valid_until": "2026-04-01T00:00:00Z"}, "after valid_from"),
    ({"valid_from": "2026-05-01T00:00:00"}, None),
    ({"purpose": "  "}, None),
    ({"surprise": True}, None),
]


def test_refused_with_a_reason(client, parties, factory):  # noqa: F811
    p = parties
    theirs = factory.zone(p["b"])
    for change, reason in [*REFUSALS, ({"zone_ids": [theirs]}, "do not exist or are not")]:
        if change.get("to_agency") == "SELF":
            change = {"to_agency": p["a"]}
        r = client.post(API, json=body(p, **change), headers=p["a_sup"])
        assert r.status_code == 422, (change, r.text)
        if reason:
            assert reason in r.json()["message"], (change, r.text)
    assert client.get(API, headers=p["a_sup"]).json()["items"] == []


def test_sector_must_be_a_joint_sector_the_agency_belongs_to(client, parties, factory):  # noqa: F811
    p = parties
    not_a_sector = client.post(API, json=body(p, to_agency=None, to_sector_zone_id=p["zone"]), headers=p["a_sup"])
    assert not_a_sector.status_code == 422 and "not a joint patrol sector" in not_a_sector.json()["message"]
    other = factory.zone(p["b"], members=[p["b"], p["c"]], kind="joint_patrol_sector")
    r = client.post(API, json=body(p, to_agency=None, to_sector_zone_id=other), headers=p["a_sup"])
    assert r.status_code == 422 and "not a member" in r.json()["message"]


def test_an_expired_agreement_is_listed_as_inactive(client, parties):  # noqa: F811
    p = parties
    past = datetime.now(timezone.utc) - timedelta(days=2)
    r = client.post(
        API,
        json=body(p, valid_from=past.isoformat(), valid_until=(past + timedelta(days=1)).isoformat()),
        headers=p["a_sup"],
    )
    assert r.status_code == 201 and r.json()["active"] is False
    assert client.get(API, params={"active": "true"}, headers=p["b_op"]).json()["items"] == []


def test_openapi_documents_the_routes(client):  # noqa: F811
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/api/v1/sharing/agreements",
        "/api/v1/sharing/agreements/{agreement_id}",
        "/api/v1/sharing/agreements/{agreement_id}/withdraw",
    } <= set(paths)
