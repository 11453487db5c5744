"""Watch-list changes are in the audit trail: who put which identifier on the list and why, each
change with its old and new value, and a deleted entry's whole content; a refused change leaves
no entry. The agency's supervisors read that history through /api/v1/audit."""

from __future__ import annotations

from sqlalchemy import text


def _trail(db, entry_id: int) -> list[tuple[str, str, dict, list[str]]]:
    rows = db.execute(
        text(
            "SELECT action, actor, details, agencies FROM audit_log "
            "WHERE entity_type = 'watchlist_entry' AND entity_id = :i ORDER BY seq"
        ),
        {"i": str(entry_id)},
    ).all()
    return [(r.action, r.actor, r.details, r.agencies) for r in rows]


def test_create_change_and_delete_are_recorded(client, factory, db):
    agency, other = factory.agency("TH"), factory.agency("MY")
    operator, supervisor = factory.user(agency), factory.user(agency, role="supervisor")
    h, them = factory.headers(operator), factory.headers(factory.user(other))
    entry = client.post(
        "/api/v1/watchlists", json={"kind": "plate", "value": "ab-1234", "reason": "stolen vehicle"}, headers=h
    ).json()
    eid = entry["id"]
    r = client.patch(f"/api/v1/watchlists/{eid}", json={"severity": "critical", "reason": "stolen vehicle"}, headers=h)
    assert r.status_code == 200
    # Refused changes (another agency's caller, nothing changed) leave no trace.
    assert client.patch(f"/api/v1/watchlists/{eid}", json={"active": False}, headers=them).status_code == 404
    assert client.patch(f"/api/v1/watchlists/{eid}", json={"severity": "critical"}, headers=h).status_code == 200
    assert client.delete(f"/api/v1/watchlists/{eid}", headers=h).status_code == 204
    assert client.get(f"/api/v1/watchlists/{eid}", headers=h).status_code == 404

    trail = _trail(db, eid)
    assert [(action, actor, agencies) for action, actor, _, agencies in trail] == [
        ("watchlist.create", operator, [agency]),
        ("watchlist.update", operator, [agency]),
        ("watchlist.delete", operator, [agency]),
    ]
    created, changed, deleted = (details for _, _, details, _ in trail)
    assert (
        created["kind"],
        created["value"],
        created["display_value"],
        created["reason"],
        created["severity"],
        created["created_by"],
    ) == ("plate", "AB1234", "ab-1234", "stolen vehicle", "high", operator)
    assert changed == {"changes": {"severity": {"from": "high", "to": "critical"}}}
    # The deleted entry's trace: what was watched for, why, by whom, as it was when removed.
    assert (deleted["value"], deleted["severity"], deleted["reason"], deleted["created_by"], deleted["active"]) == (
        "AB1234",
        "critical",
        "stolen vehicle",
        operator,
        True,
    )

    page = client.get(
        "/api/v1/audit",
        params={"entity_type": "watchlist_entry", "entity_id": str(eid)},
        headers=factory.headers(supervisor),
    )
    assert page.status_code == 200, page.text
    assert {e["action"] for e in page.json()["items"]} == {"watchlist.create", "watchlist.update", "watchlist.delete"}


def test_roles_that_may_not_edit_are_refused_and_leave_no_trace(client, factory, db):
    from core.permissions import ROLES, WATCHLIST_EDITORS

    agency = factory.agency("TH")
    editor = factory.headers(factory.user(agency))
    eid = client.post(
        "/api/v1/watchlists", json={"kind": "plate", "value": "zz-9999", "reason": "test"}, headers=editor
    ).json()["id"]
    for role in sorted(set(ROLES) - set(WATCHLIST_EDITORS)):
        h = factory.headers(factory.user(agency, role=role))
        db.commit()  # a refused request rolls back to here
        # The liaison hotline reads the watch-list; a patrol unit's device does not (core.permissions).
        assert client.get(f"/api/v1/watchlists/{eid}", headers=h).status_code == (403 if role == "patrol_unit" else 200)
        assert (
            client.post(
                "/api/v1/watchlists", json={"kind": "plate", "value": "yy-1111", "reason": "test"}, headers=h
            ).status_code
            == 403
        )
        assert client.patch(f"/api/v1/watchlists/{eid}", json={"severity": "critical"}, headers=h).status_code == 403
        assert client.delete(f"/api/v1/watchlists/{eid}", headers=h).status_code == 403
    assert [action for action, *_ in _trail(db, eid)] == ["watchlist.create"]
    assert (
        db.execute(
            text(
                "SELECT count(*) FROM audit_log WHERE entity_type = 'watchlist_entry' AND details->>'value' = 'YY1111'"
            )
        ).scalar_one()
        == 0
    )
