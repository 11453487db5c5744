"""A chain edited behind the trigger's back: the chain endpoint and `borderwatch evidence verify` say
which item and which event (altered, rewritten, removed, cut from the end, reordered, the item's own
record changed); the trigger refuses edits; uploaded bytes are kept only if they hash to the record."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError

from core.settings import get_settings
from patrols.evidence import service as evidence
from patrols.evidence import verification
from patrols.evidence.chain import event_hash
from patrols.evidence.content import content_path
from patrols.evidence.models import CustodyEvent
from tests.patrols.evidence.test_custody import API, PHOTO, PHOTO_SHA, hand, incident, snapshot, take


def four_events(client, world) -> tuple[int, object]:
    """An item with collected, handover, received, examined; returns its id and an agency that sees it."""
    th, my = world.agency("TH"), world.agency("MY")
    iid = incident(client, th)
    eid = client.post(f"{API}/incidents/{iid}/evidence", json=snapshot(), headers=th.operator_h).json()["id"]
    assert hand(client, eid, th.admin_h, my.code).status_code == 200
    assert take(client, eid, my.operator_h).status_code == 200
    assert (
        client.post(
            f"{API}/evidence/{eid}/events", json={"kind": "examined", "note": "seen"}, headers=my.operator_h
        ).status_code
        == 201
    )
    return eid, th


def test_the_chain_names_the_event_where_it_breaks(client, world, db, tamper):
    eid, th = four_events(client, world)

    def chain() -> dict:
        return client.get(f"{API}/evidence/{eid}/chain", headers=th.operator_h).json()

    def problems() -> list[tuple[str, int]]:
        body = chain()
        assert body["verified"] is (not body["problems"])
        if body["problems"]:
            assert body["broken_at"] == min(p["seq"] for p in body["problems"])
        return [(p["kind"], p["seq"]) for p in body["problems"]]

    assert problems() == []
    event = db.execute(text("SELECT * FROM custody_events WHERE item_id = :i AND seq = 2"), {"i": eid}).one()
    where = {"i": eid}
    cases = {
        "altered": (
            "UPDATE custody_events SET to_agency = 'ZZ-ELSEWHERE' WHERE item_id = :i AND seq = 2",
            [("altered", 2)],
            "event 2 was altered",
        ),
        "rewritten": (
            "UPDATE custody_events SET note = 'routine', hash = :h WHERE item_id = :i AND seq = 2",
            [("altered", 2)],
            "event 2 was rewritten",
        ),
        "removed": (
            "DELETE FROM custody_events WHERE item_id = :i AND seq = 3",
            [("removed", 3)],
            "event 3 is missing",
        ),
        "cut": ("DELETE FROM custody_events WHERE item_id = :i AND seq = 4", [("removed", 4)], "cut from the end"),
        "reordered": (
            (
                "UPDATE custody_events SET seq = 1000 WHERE item_id = :i AND seq = 2",
                "UPDATE custody_events SET seq = 2 WHERE item_id = :i AND seq = 3",
                "UPDATE custody_events SET seq = 3 WHERE item_id = :i AND seq = 1000",
            ),
            [("reordered", 2), ("reordered", 3)],
            "event 2 is the event written as 3",
        ),
    }
    forged = event_hash({**event._mapping, "note": "routine"})
    original = [
        dict(r._mapping) for r in db.execute(text("SELECT * FROM custody_events WHERE item_id = :i"), where).all()
    ]

    def restore() -> None:
        # Each request commits the test's savepoint, so the chain is put back by hand.
        tamper("DELETE FROM custody_events WHERE item_id = :i", where)
        db.execute(insert(CustodyEvent), original)

    for name, (sql, expected, message) in cases.items():
        tamper(sql, {**where, "h": forged})
        assert problems() == expected, name
        assert any(message in p["message"] for p in chain()["problems"]), (name, chain()["problems"])
        restore()
        assert problems() == [], name

    # A chain recomputed from event 2 on (each hash, each link, the item's last hash): only the audit
    # trail, which recorded every event's hash when it was written, gives it away.
    rows = [dict(r) for r in original]
    rows.sort(key=lambda r: r["seq"])
    prev = rows[0]["hash"]
    for r in rows[1:]:
        if r["seq"] == 2:
            r["note"] = "routine"
        r["prev_hash"] = prev
        r["hash"] = prev = event_hash(r)
    tamper("DELETE FROM custody_events WHERE item_id = :i", where)
    db.execute(insert(CustodyEvent), rows)
    db.execute(text("UPDATE evidence_items SET head_hash = :h WHERE id = :i"), {"h": prev, "i": eid})
    assert problems() == [("altered", 2), ("altered", 3), ("altered", 4)]
    assert "the audit trail recorded it with another hash" in chain()["problems"][0]["message"]
    # The last event cut and the item made to end one event earlier: the audit trail still has it.
    restore()
    last = next(r for r in original if r["seq"] == 3)
    db.execute(
        text("UPDATE evidence_items SET head_hash = :h, head_seq = 3 WHERE id = :i"), {"h": last["hash"], "i": eid}
    )
    tamper("DELETE FROM custody_events WHERE item_id = :i AND seq = 4", where)
    assert problems() == [("removed", 4)]
    assert "the audit trail recorded it" in chain()["problems"][0]["message"]
    restore()
    head = next(r for r in original if r["seq"] == 4)
    db.execute(
        text("UPDATE evidence_items SET head_hash = :h, head_seq = 4 WHERE id = :i"), {"h": head["hash"], "i": eid}
    )
    assert problems() == []

    # The item's own record changed: its content hash no longer says what the collected event recorded.
    db.execute(text("UPDATE evidence_items SET content_sha256 = :h WHERE id = :i"), {"h": "0" * 64, "i": eid})
    assert problems() == [("item_altered", 1)]
    assert "content_sha256 changed" in chain()["problems"][0]["message"]
    db.execute(text("UPDATE evidence_items SET content_sha256 = :h WHERE id = :i"), {"h": PHOTO_SHA, "i": eid})
    assert chain()["verified"] is True


def test_the_trigger_refuses_update_delete_and_truncate(client, world, db):
    eid, _ = four_events(client, world)
    for sql in (
        "UPDATE custody_events SET note = 'x' WHERE item_id = :i",
        "DELETE FROM custody_events WHERE item_id = :i",
        "TRUNCATE custody_events CASCADE",
    ):
        savepoint = db.begin_nested()
        with pytest.raises(DBAPIError, match="append-only"):
            db.execute(text(sql), {"i": eid})
        savepoint.rollback()
    assert db.execute(text("SELECT count(*) FROM custody_events WHERE item_id = :i"), {"i": eid}).scalar() == 4


def test_uploaded_bytes_are_kept_only_if_they_match(client, world, db, evidence_dir, monkeypatch):
    th, my = world.agency("TH"), world.agency("MY")
    iid = incident(client, th)
    eid = client.post(f"{API}/incidents/{iid}/evidence", json=snapshot(), headers=th.operator_h).json()["id"]
    url = f"{API}/evidence/{eid}/content"
    check = client.get(f"{url}/verify", headers=th.operator_h).json()
    assert (check["stored"], check["matches"]) == (False, False)

    r = client.put(url, content=PHOTO[:-1] + b"!", headers=th.operator_h)
    assert r.status_code == 422 and r.json()["error"] == "content_hash_mismatch", r.text
    assert r.json()["details"]["recorded_sha256"] == PHOTO_SHA
    assert not list(evidence_dir.rglob(PHOTO_SHA)) and not list((evidence_dir / "incoming").iterdir())
    assert client.put(url, content=PHOTO, headers=my.operator_h).status_code == 404  # not MY's to see
    r = client.put(url, content=PHOTO, headers=th.operator_h)
    assert r.status_code == 200 and r.json()["content_stored"] is True, r.text
    stored = content_path(evidence_dir, PHOTO_SHA)
    assert stored.read_bytes() == PHOTO
    assert client.put(url, content=PHOTO, headers=th.operator_h).status_code == 200  # a retry changes nothing
    check = client.get(f"{url}/verify", headers=th.operator_h).json()
    assert check == {
        "item_id": eid,
        "stored": True,
        "recorded_sha256": PHOTO_SHA,
        "actual_sha256": PHOTO_SHA,
        "size": len(PHOTO),
        "matches": True,
    }
    stored.write_bytes(PHOTO + b"edited")
    check = client.get(f"{url}/verify", headers=th.operator_h).json()
    assert check["matches"] is False and check["actual_sha256"] == hashlib.sha256(PHOTO + b"edited").hexdigest()
    assert (
        db.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'evidence.content_store' AND entity_id = :i"),
            {"i": str(eid)},
        ).scalar()
        == 1
    )

    # Past the cap: refused before anything is kept; a seized item has no bytes to upload.
    monkeypatch.setenv("BW_EVIDENCE_MAX_BYTES", "16")
    get_settings.cache_clear()
    r = client.put(url, content=PHOTO, headers=th.operator_h)
    assert r.status_code == 413 and r.json()["error"] == "content_too_large"
    # Sent in chunks without a length: refused once past the cap, nothing left behind.
    r = client.put(url, content=iter([PHOTO[:10], PHOTO[10:20], PHOTO[20:]]), headers=th.operator_h)
    assert r.status_code == 413 and r.json()["error"] == "content_too_large"
    assert not list((evidence_dir / "incoming").iterdir())
    monkeypatch.delenv("BW_EVIDENCE_MAX_BYTES")
    get_settings.cache_clear()
    sack = client.post(
        f"{API}/incidents/{iid}/evidence", json={"kind": "seized_item", "description": "sack"}, headers=th.operator_h
    ).json()["id"]
    r = client.put(f"{API}/evidence/{sack}/content", content=b"x", headers=th.operator_h)
    assert r.status_code == 409 and r.json()["error"] == "evidence_has_no_content"


def test_a_refused_upload_touches_no_disk(client, world, factory, evidence_dir):
    """Who may upload is decided before the body is read: no spool file, not even its directory."""
    th, my = world.agency("TH"), world.agency("MY")
    iid = incident(client, th)
    eid = client.post(f"{API}/incidents/{iid}/evidence", json=snapshot(), headers=th.operator_h).json()["id"]
    liaison = factory.headers(factory.user(th.code, role="liaison"))
    world.settle()
    url = f"{API}/evidence/{eid}/content"
    assert client.put(url, content=PHOTO, headers=my.operator_h).status_code == 404  # not MY's to see
    assert client.put(url, content=PHOTO, headers=liaison).status_code == 403  # no role to upload
    r = client.put(url, content=iter([PHOTO[:10], PHOTO[10:]]), headers=liaison)
    assert r.status_code == 403 and r.json()["error"] == "role_not_allowed", r.text
    assert not (evidence_dir / "incoming").exists()
    assert client.put(url, content=PHOTO, headers=th.operator_h).status_code == 200


def test_uploads_larger_than_the_request_body_cap_are_still_taken(client, world, evidence_dir):
    """The request-body cap (BW_MAX_BODY_BYTES, 1 MiB) does not apply to evidence bytes."""
    th = world.agency("TH")
    video = os.urandom(3 * 1024 * 1024)
    sha = hashlib.sha256(video).hexdigest()
    iid = incident(client, th)
    item = snapshot(content_sha256=sha, content_size=len(video), media_type="video/mp4")
    eid = client.post(f"{API}/incidents/{iid}/evidence", json=item, headers=th.operator_h).json()["id"]
    r = client.put(f"{API}/evidence/{eid}/content", content=video, headers=th.operator_h)
    assert r.status_code == 200, r.text
    assert content_path(evidence_dir, sha).stat().st_size == len(video)


def _verify_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", "evidence", "verify", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_the_command_names_item_and_event_and_exits_non_zero(engine):
    """On committed data: intact, then one event altered behind the trigger, then put back."""
    from accounts import service as accounts
    from core.db import session_scope
    from core.security import Principal
    from patrols import incidents
    from patrols import schemas as p_schemas
    from patrols.evidence import schemas as ev_schemas

    code = f"TH-E{uuid.uuid4().hex[:8].upper()}"
    with session_scope(engine) as s:
        accounts.create_agency(session=s, code=code, country="TH", name="Evidence CLI test", actor="cli:test")
        boss = Principal(username="cli-test-admin", agency_code=code, role="admin")
        iid = incidents.create_incident(
            session=s,
            principal=boss,
            incident_in=p_schemas.IncidentCreate(lon=100.42, lat=6.63, title="cli", category="drugs", priority="low"),
        ).id
        eid = evidence.create_item(
            session=s,
            principal=boss,
            incident_id=iid,
            item_in=ev_schemas.EvidenceCreate(kind="seized_item", description="one sack"),
        ).id
        evidence.record_event(
            session=s, principal=boss, item_id=eid, event_in=ev_schemas.EventIn(kind="examined", note="original")
        )

    helped = subprocess.run(
        [sys.executable, "-m", "cli", "evidence", "verify", "--help"], capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0 and "--item" in helped.stdout
    ok = _verify_cli(f"--item={eid}")
    assert ok.returncode == 0, ok.stderr
    assert "chains of custody intact: 1 item(s), 2 event(s)" in ok.stderr

    def edit(note: str) -> None:
        with session_scope(engine) as s:
            s.execute(text("ALTER TABLE custody_events DISABLE TRIGGER custody_events_append_only"))
            s.execute(text("UPDATE custody_events SET note = :n WHERE item_id = :i AND seq = 2"), {"n": note, "i": eid})
            s.execute(text("ALTER TABLE custody_events ENABLE TRIGGER custody_events_append_only"))

    def behind_the_trigger(*statements: str) -> None:
        with session_scope(engine) as s:
            s.execute(text("ALTER TABLE custody_events DISABLE TRIGGER custody_events_append_only"))
            for statement in statements:
                s.execute(text(statement), {"i": eid})
            s.execute(text("ALTER TABLE custody_events ENABLE TRIGGER custody_events_append_only"))

    swap = (
        "UPDATE custody_events SET seq = 100 WHERE item_id = :i AND seq = 1",
        "UPDATE custody_events SET seq = 1 WHERE item_id = :i AND seq = 2",
        "UPDATE custody_events SET seq = 2 WHERE item_id = :i AND seq = 100",
    )
    edit("nothing found")
    try:
        for args in ((f"--item={eid}",), ()):
            broken = _verify_cli(*args)
            assert broken.returncode == 1, broken.stderr
            assert f"item {eid}: altered at event 2: event 2 was altered" in broken.stderr
            assert f"first: item {eid} at event 2" in broken.stderr or not args
    finally:
        edit("original")
    behind_the_trigger(*swap)
    try:
        broken = _verify_cli(f"--item={eid}")
        assert broken.returncode == 1
        assert f"item {eid}: reordered at event 1: event 1 is the event written as 2" in broken.stderr
        assert f"item {eid}: reordered at event 2" in broken.stderr
    finally:
        behind_the_trigger(*swap)
    with session_scope(engine) as s:
        last = dict(
            s.execute(text("SELECT * FROM custody_events WHERE item_id = :i AND seq = 2"), {"i": eid}).one()._mapping
        )
    behind_the_trigger("DELETE FROM custody_events WHERE item_id = :i AND seq = 2")
    try:
        broken = _verify_cli(f"--item={eid}")
        assert broken.returncode == 1
        assert f"item {eid}: removed at event 2: event 2 is missing: cut from the end" in broken.stderr
    finally:
        with session_scope(engine) as s:
            s.execute(insert(CustodyEvent), [last])
    assert _verify_cli(f"--item={eid}").returncode == 0
    missing = _verify_cli("--item=999999999")
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_the_incident_map_counts_evidence_and_names_broken_chains(client, world, db, tamper):
    th = world.agency("TH")
    iid = incident(client, th)
    eid = client.post(
        f"{API}/incidents/{iid}/evidence", json=snapshot(description="<script>x</script> frame"), headers=th.operator_h
    ).json()["id"]
    sack = client.post(
        f"{API}/incidents/{iid}/evidence", json={"kind": "seized_item", "description": "sack"}, headers=th.operator_h
    ).json()["id"]

    def page(headers) -> str:
        r = client.get("/maps/incident", params={"id": iid}, headers=headers)
        assert r.status_code == 200, r.text
        return r.text

    # The list, page by page, newest first.
    first = client.get(f"{API}/incidents/{iid}/evidence", params={"limit": 1}, headers=th.operator_h).json()
    second = client.get(
        f"{API}/incidents/{iid}/evidence", params={"limit": 1, "cursor": first["next_cursor"]}, headers=th.operator_h
    ).json()
    assert [i["id"] for i in first["items"] + second["items"]] == [sack, eid] and second["next_cursor"] is None
    assert (
        client.get(f"{API}/incidents/{iid}/evidence", params={"cursor": "bm9wZQ"}, headers=th.operator_h).status_code
        == 422
    )

    text_ = page(th.operator_h)
    assert "evidence: 2 (chains verified)" in text_
    # Only the item with a place is drawn; its text is escaped.
    assert text_.count("bw-evidence") == 1 and "<script>x</script>" not in text_
    tamper("UPDATE custody_events SET note = 'forged' WHERE item_id = :i AND seq = 1", {"i": eid})
    assert f"evidence: 2 (chain broken: items {eid})" in page(th.operator_h)


def test_concurrent_events_never_fork_an_items_chain(engine):
    """Six transactions record events on one item at once, each committing: one chain, no gaps."""
    import threading

    from accounts import service as accounts
    from core.db import session_scope
    from core.security import Principal
    from patrols import incidents
    from patrols import schemas as p_schemas
    from patrols.evidence import schemas as ev_schemas

    code = f"TH-C{uuid.uuid4().hex[:8].upper()}"
    boss = Principal(username="concurrency-admin", agency_code=code, role="admin")
    with session_scope(engine) as s:
        accounts.create_agency(session=s, code=code, country="TH", name="Evidence concurrency", actor="cli:test")
        iid = incidents.create_incident(
            session=s,
            principal=boss,
            incident_in=p_schemas.IncidentCreate(lon=100.42, lat=6.63, title="race", category="drugs", priority="low"),
        ).id
        eid = evidence.create_item(
            session=s,
            principal=boss,
            incident_id=iid,
            item_in=ev_schemas.EvidenceCreate(kind="seized_item", description="one sack"),
        ).id
    barrier, errors = threading.Barrier(6), []

    def worker(i: int) -> None:
        try:
            for round_ in range(3):
                with session_scope(engine) as s:
                    s.execute(text("SELECT 1"))
                    if round_ == 0:
                        barrier.wait(timeout=30)
                    evidence.record_event(
                        session=s,
                        principal=boss,
                        item_id=eid,
                        event_in=ev_schemas.EventIn(kind="examined", note=f"worker {i} {round_}"),
                    )
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    with session_scope(engine) as s:
        seqs = s.execute(text("SELECT seq FROM custody_events WHERE item_id = :i ORDER BY seq"), {"i": eid}).scalars()
        assert list(seqs) == list(range(1, 20))
        result = verification.verify(session=s, item_id=eid)
        assert result.ok and result.events == 19, result.broken
