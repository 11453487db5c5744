"""Every change of an incident, tasking, unit status, user and agency is in the audit trail, in the
transaction of the change; supervisors read their agency's entries; `borderwatch audit verify`."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import text

from accounts import service as accounts
from audit import service as audit
from tests.factories import TH_LAND

API = "/api/v1"


def entries(db, entity_type: str, entity_id) -> list[tuple[str, str, dict]]:
    rows = db.execute(
        text(
            "SELECT action, actor, details, agencies FROM audit_log "
            "WHERE entity_type = :t AND entity_id = :i ORDER BY seq"
        ),
        {"t": entity_type, "i": str(entity_id)},
    ).all()
    return [(r.action, r.actor, r.details, r.agencies) for r in rows]


def test_agency_and_user_changes_are_recorded(db):
    code = "TH-AUD" + os.urandom(3).hex().upper()
    accounts.create_agency(session=db, code=code, country="TH", name="Audit test", actor="cli:root")
    accounts.create_user(
        session=db,
        username=f"u-{code.lower()}",
        agency_code=code,
        role="supervisor",
        password="a long enough password",
        actor="cli:root",
    )
    accounts.set_password(session=db, username=f"u-{code.lower()}", password="another long password", actor="cli:root")
    assert entries(db, "agency", code) == [
        ("agency.create", "cli:root", {"country": "TH", "name": "Audit test"}, [code])
    ]
    user = entries(db, "user", f"u-{code.lower()}")
    assert [(a, actor) for a, actor, _, _ in user] == [("user.create", "cli:root"), ("user.password", "cli:root")]
    assert user[0][2] == {"role": "supervisor"}
    # Neither the password nor its hash is in the trail.
    raw = db.execute(
        text("SELECT string_agg(CAST(details AS text), ' ') FROM audit_log WHERE entity_id = :u"),
        {"u": f"u-{code.lower()}"},
    ).scalar_one()
    assert "password" not in raw and "argon2" not in raw


def test_the_patrol_flow_is_recorded(client, world, db):
    a = world.agency()
    unit_id, device = world.unit(a, TH_LAND, device=True)
    incident = client.post(
        f"{API}/incidents",
        json={
            "lon": TH_LAND[0],
            "lat": TH_LAND[1],
            "title": "footprints",
            "category": "people_smuggling",
            "priority": "high",
        },
        headers=a.operator_h,
    ).json()
    iid = incident["id"]
    client.post(f"{API}/incidents/{iid}/notes", json={"note": "three sets of tracks"}, headers=a.operator_h)
    tasking = client.post(f"{API}/incidents/{iid}/taskings", json={"unit_id": unit_id}, headers=a.operator_h).json()
    assert client.post(f"{API}/taskings/{tasking['id']}/accept", headers=device).status_code == 200
    assert client.put(f"{API}/units/{unit_id}/status", json={"status": "on_scene"}, headers=device).status_code == 200
    r = client.put(
        f"{API}/incidents/{iid}/status", json={"status": "resolved", "note": "handed over"}, headers=a.operator_h
    )
    assert r.status_code == 200, r.text

    inc = entries(db, "incident", iid)
    assert [(x[0], x[2].get("from"), x[2].get("to")) for x in inc] == [
        ("incident.create", None, None),
        ("incident.note", None, None),
        ("incident.status", "new", "assigned"),
        ("incident.status", "assigned", "en_route"),
        ("incident.status", "en_route", "on_scene"),
        ("incident.status", "on_scene", "resolved"),
    ]
    assert inc[0][1] == a.operator and inc[0][2]["category"] == "people_smuggling" and inc[0][3] == [a.code]
    assert inc[1][2] == {"note": "three sets of tracks"}
    assert [x[0] for x in entries(db, "tasking", tasking["id"])] == [
        "tasking.create",
        "tasking.accept",
        "tasking.complete",
    ]
    unit = entries(db, "unit", unit_id)
    assert [(x[0], x[2].get("from"), x[2].get("to")) for x in unit] == [
        ("unit.create", None, None),
        ("unit.status", "available", "en_route"),
        ("unit.status", "en_route", "on_scene"),
        ("unit.status", "on_scene", "available"),
    ]
    assert audit.verify(session=db).ok


def test_a_refused_change_leaves_no_entry(client, world, db):
    a = world.agency()
    unit_id, _ = world.unit(a, TH_LAND)
    before = db.execute(text("SELECT max(seq) FROM audit_log")).scalar_one()
    r = client.put(f"{API}/units/{unit_id}/status", json={"status": "on_scene"}, headers=a.operator_h)
    assert r.status_code == 409
    assert db.execute(text("SELECT max(seq) FROM audit_log")).scalar_one() == before


def test_supervisors_read_their_agencys_entries_page_by_page(client, world, factory, db):
    a, b = world.agency(), world.agency("MY")
    for _ in range(3):
        world.unit(a, TH_LAND)
    theirs, _ = world.unit(b, TH_LAND)
    supervisor = factory.headers(factory.user(a.code, role="supervisor"))
    world.settle()
    seen, cursor = [], None
    while True:
        r = client.get(
            f"{API}/audit", params={"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=supervisor
        )
        assert r.status_code == 200, r.text
        page = r.json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert all(a.code in e["agencies"] for e in seen)
    assert [e["seq"] for e in seen] == sorted((e["seq"] for e in seen), reverse=True)
    assert {e["action"] for e in seen} >= {"agency.create", "user.create", "unit.create"}
    assert len([e for e in seen if e["action"] == "unit.create"]) == 3
    assert not any(e["entity_type"] == "unit" and e["entity_id"] == str(theirs) for e in seen)
    only_units = client.get(f"{API}/audit", params={"entity_type": "unit"}, headers=a.admin_h).json()["items"]
    assert len(only_units) == 3 and {e["entity_type"] for e in only_units} == {"unit"}
    # Each entry carries its chain fields, so a reader can check links on what they were given.
    assert all(len(e["hash"]) == 64 and len(e["prev_hash"]) == 64 for e in seen)


def test_operators_and_strangers_cannot_read_the_trail(client, world):
    a = world.agency()
    r = client.get(f"{API}/audit", headers=a.operator_h)
    assert r.status_code == 403 and r.json()["error"] == "role_not_allowed"  # the access table refuses first
    assert client.get(f"{API}/audit").status_code == 401
    assert client.get(f"{API}/audit", params={"cursor": "bm9wZQ"}, headers=a.admin_h).status_code == 422
    assert client.get(f"{API}/audit", params={"limit": 0}, headers=a.admin_h).status_code == 422


def _verify_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", "audit", "verify", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_the_command_exits_non_zero_where_the_chain_breaks(engine):
    """On the committed chain: intact, then one entry altered behind the trigger, then put back."""
    from core.db import session_scope

    with session_scope(engine) as s:
        seq = audit.record(
            session=s,
            actor="tester",
            action="test.append",
            entity_type="test_entry",
            entity_id="cli",
            agencies=["ZZ-CLI"],
            details={"note": "original"},
        )
    ok = _verify_cli()
    assert ok.returncode == 0, ok.stderr
    head_seq, head_hash = ok.stdout.strip().split(":")
    assert int(head_seq) >= seq and len(head_hash) == 64 and "audit chain intact" in ok.stderr

    def edit(note: str) -> None:
        with session_scope(engine) as s:
            s.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
            s.execute(
                text("UPDATE audit_log SET details = jsonb_build_object('note', CAST(:n AS text)) WHERE seq = :s"),
                {"n": note, "s": seq},
            )
            s.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))

    edit("forged")
    try:
        broken = _verify_cli()
        assert broken.returncode == 1
        assert f"altered at {seq}: entry {seq} was altered" in broken.stderr
        assert f"first at entry {seq}" in broken.stderr
    finally:
        edit("original")
    assert _verify_cli(f"--anchor={head_seq}:{head_hash}").returncode == 0
    wrong = _verify_cli(f"--anchor={head_seq}:{'0' * 64}")
    assert wrong.returncode == 1 and "anchored hash" in wrong.stderr
    assert _verify_cli("--anchor=nonsense").returncode == 1
