"""Watch-list endpoints: create, read, change and remove entries of the caller's agency only,
with clear errors for bad input, and read-only access for roles that may not edit."""

from __future__ import annotations

import pytest


@pytest.fixture
def agencies(factory):
    a, b = factory.agency("TH"), factory.agency("MY")
    return {
        "a": a,
        "b": b,
        "op_a": factory.headers(factory.user(a)),
        "op_b": factory.headers(factory.user(b)),
        "liaison_a": factory.headers(factory.user(a, role="liaison")),
    }


def create(client, headers, **body):
    body = {"kind": "plate", "value": "AB 1234", "reason": "stolen vehicle", **body}
    return client.post("/api/v1/watchlists", json=body, headers=headers)


def test_create_normalises_the_value_and_lists_it(client, agencies):
    response = create(client, agencies["op_a"], value="ab-1234", severity="critical")
    assert response.status_code == 201, response.text
    entry = response.json()
    assert (entry["kind"], entry["value"], entry["display_value"], entry["severity"], entry["active"]) == (
        "plate",
        "AB1234",
        "ab-1234",
        "critical",
        True,
    )
    assert entry["agency_code"] == agencies["a"]
    listed = client.get("/api/v1/watchlists", headers=agencies["op_a"]).json()
    assert [e["id"] for e in listed] == [entry["id"]]
    assert client.get(f"/api/v1/watchlists/{entry['id']}", headers=agencies["op_a"]).json() == entry


def test_vessel_identifiers_are_checked(client, agencies):
    h = agencies["op_a"]
    assert create(client, h, kind="mmsi", value="533 123 456").json()["value"] == "533123456"
    assert create(client, h, kind="imo", value="IMO 9745500").json()["value"] == "9745500"
    assert create(client, h, kind="vessel_name", value="  Capt. J_Rimes ").json()["value"] == "CAPT J RIMES"
    bad = create(client, h, kind="mmsi", value="12345")
    assert bad.status_code == 422 and "9 digits" in bad.json()["message"]
    bad = create(client, h, kind="imo", value="IMO 12")
    assert bad.status_code == 422 and "7 digits" in bad.json()["message"]
    bad = create(client, h, kind="plate", value="---")
    assert bad.status_code == 422 and "nothing to match" in bad.json()["message"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"kind": "passport"}, "kind"),
        ({"value": ""}, "value"),
        ({"reason": ""}, "reason"),
        ({"severity": "low"}, "severity"),
        ({"expires_at": "2027-01-01T00:00:00"}, "expires_at"),
        ({"agency_code": "XX-OTHER"}, "agency_code"),
    ],
)
def test_bad_input_is_a_422_with_the_field(client, agencies, body, field):
    response = create(client, agencies["op_a"], **body)
    assert response.status_code == 422, response.text
    assert field in response.json()["message"]


def test_duplicate_is_a_409_but_another_agency_may_list_the_same(client, agencies):
    first = create(client, agencies["op_a"]).json()
    again = create(client, agencies["op_a"], value="ab 1234")
    assert again.status_code == 409 and again.json()["details"]["entry_id"] == first["id"]
    assert create(client, agencies["op_b"]).status_code == 201


def test_other_agencies_entries_do_not_exist_for_the_caller(client, agencies):
    entry = create(client, agencies["op_a"]).json()
    hb = agencies["op_b"]
    assert client.get("/api/v1/watchlists", headers=hb).json() == []
    assert client.get(f"/api/v1/watchlists/{entry['id']}", headers=hb).status_code == 404
    assert client.patch(f"/api/v1/watchlists/{entry['id']}", json={"active": False}, headers=hb).status_code == 404
    assert client.delete(f"/api/v1/watchlists/{entry['id']}", headers=hb).status_code == 404
    assert client.get(f"/api/v1/watchlists/{entry['id']}", headers=agencies["op_a"]).json()["active"] is True


def test_update_and_delete(client, agencies):
    h = agencies["op_a"]
    entry = create(client, h).json()
    changed = client.patch(
        f"/api/v1/watchlists/{entry['id']}", json={"active": False, "reason": "recovered"}, headers=h
    )
    assert changed.status_code == 200 and (changed.json()["active"], changed.json()["reason"]) == (False, "recovered")
    assert [e["id"] for e in client.get("/api/v1/watchlists", params={"active": "true"}, headers=h).json()] == []
    bad = client.patch(f"/api/v1/watchlists/{entry['id']}", json={"severity": None}, headers=h)
    assert bad.status_code == 422
    assert client.delete(f"/api/v1/watchlists/{entry['id']}", headers=h).status_code == 204
    assert client.get(f"/api/v1/watchlists/{entry['id']}", headers=h).status_code == 404


def test_liaison_may_read_but_not_change(client, agencies):
    entry = create(client, agencies["op_a"]).json()
    h = agencies["liaison_a"]
    assert [e["id"] for e in client.get("/api/v1/watchlists", headers=h).json()] == [entry["id"]]
    assert create(client, h, value="ZZ 1").status_code == 403
    assert client.patch(f"/api/v1/watchlists/{entry['id']}", json={"active": False}, headers=h).status_code == 403
    assert client.delete(f"/api/v1/watchlists/{entry['id']}", headers=h).status_code == 403


def test_no_token_no_watchlist(client):
    for method, path in (
        ("GET", "/api/v1/watchlists"),
        ("POST", "/api/v1/watchlists"),
        ("DELETE", "/api/v1/watchlists/1"),
    ):
        assert client.request(method, path).status_code == 401
