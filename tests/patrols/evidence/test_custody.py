"""Evidence and its chain of custody over the API: an item handed from agency to agency, each hand-over
accepted by the receiving agency, one chain of events whose hashes link; who may see, hand over,
accept and record; retries of creating requests; everything in the audit trail."""

from __future__ import annotations

import hashlib

from sqlalchemy import text

from patrols.evidence import chain as evidence
from patrols.evidence.models import GENESIS
from tests.factories import TH_LAND

API = "/api/v1"
PHOTO = b"\xff\xd8\xff\xe0 jpeg bytes of a boat on the beach at Sadao \xff\xd9"
PHOTO_SHA = hashlib.sha256(PHOTO).hexdigest()


def incident(client, agency) -> int:
    r = client.post(
        f"{API}/incidents",
        json={"lon": TH_LAND[0], "lat": TH_LAND[1], "title": "boat landing", "category": "drugs", "priority": "high"},
        headers=agency.operator_h,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def snapshot(**extra) -> dict:
    return {
        "kind": "snapshot",
        "description": "camera 7 frame: two men unloading sacks",
        "content_uri": "s3://th-evidence/cam7/frame-0042.jpg",
        "content_sha256": PHOTO_SHA.upper(),
        "content_size": len(PHOTO),
        "media_type": "image/jpeg",
        "lon": 100.4201,
        "lat": 6.6302,
        "collected_at": "2026-11-22T03:10:00Z",
        **extra,
    }


def hand(client, item_id, headers, to, custodian="evidence room", **extra):
    return client.post(
        f"{API}/evidence/{item_id}/handover",
        json={"to_agency": to, "to_custodian": custodian, "reason": "prosecution in the receiving state", **extra},
        headers=headers,
    )


def take(client, item_id, headers, **extra):
    return client.post(
        f"{API}/evidence/{item_id}/accept",
        json={
            "received_by": "Sgt. Rahman",
            "acknowledgement": "received sealed, 1 item",
            "seal_intact": True,
            "signature": "iVBORw0KGgoAAAANSUhEUgAAAAE=",
            **extra,
        },
        headers=headers,
    )


def err(r) -> tuple[int, str]:
    return r.status_code, r.json()["error"]


def test_an_item_passes_three_agencies_in_one_verified_chain(client, world, factory, db):
    th, my, idn, vn = world.agency("TH"), world.agency("MY"), world.agency("ID"), world.agency("VN")
    iid = incident(client, th)
    world.settle()

    # Registered by an operator; a retry with the same key gives the same item, not a second one.
    key = {"Idempotency-Key": "ev-create-1"}
    r = client.post(f"{API}/incidents/{iid}/evidence", json=snapshot(), headers={**th.operator_h, **key})
    assert r.status_code == 201, r.text
    item = r.json()
    again = client.post(f"{API}/incidents/{iid}/evidence", json=snapshot(), headers={**th.operator_h, **key})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true" and again.json() == item
    assert db.execute(text("SELECT count(*) FROM evidence_items WHERE incident_id = :i"), {"i": iid}).scalar() == 1
    assert (item["content_sha256"], item["status"], item["custodian_agency"], item["events"]) == (
        PHOTO_SHA,
        "in_custody",
        th.code,
        1,
    )
    assert item["location"]["coordinates"] == [100.4201, 6.6302] and item["collected_by"] == th.operator
    eid = item["id"]

    # TH → MY: only supervisors and admins of the custodian hand over; in transit until MY accepts.
    assert err(hand(client, eid, th.operator_h, my.code)) == (403, "role_not_allowed")
    r = hand(client, eid, th.admin_h, my.code, custodian="MY-MMEA evidence store Langkawi")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["pending_agency"]) == ("in_transit", my.code)
    assert err(hand(client, eid, th.admin_h, idn.code)) == (409, "evidence_in_transit")
    # MY sees it now; a third agency does not, nor the incident's evidence.
    assert client.get(f"{API}/evidence/{eid}", headers=my.operator_h).status_code == 200
    assert [i["id"] for i in client.get(f"{API}/incidents/{iid}/evidence", headers=my.operator_h).json()["items"]] == [
        eid
    ]
    # Accepting: not the giver, not an agency that is not the receiver.
    assert err(take(client, eid, th.admin_h)) == (403, "not_receiver")
    assert err(take(client, eid, idn.admin_h)) == (404, "evidence_not_found")
    assert err(take(client, eid, my.operator_h, handover_seq=1)) == (409, "conflict")
    r = take(client, eid, my.operator_h, handover_seq=2)
    assert r.status_code == 200, r.text
    assert (r.json()["custodian_agency"], r.json()["custodian"], r.json()["status"]) == (
        my.code,
        "MY-MMEA evidence store Langkawi",
        "in_custody",
    )
    assert err(take(client, eid, my.operator_h)) == (409, "not_in_transit")

    # The former custodian can no longer hand it over; MY → ID, accepted by ID.
    r = hand(client, eid, th.admin_h, idn.code)
    assert err(r) == (403, "not_custodian") and my.code in r.json()["message"]
    assert hand(client, eid, my.admin_h, idn.code, custodian="POLRI Medan").status_code == 200
    assert err(take(client, eid, my.operator_h)) == (403, "not_receiver")
    assert take(client, eid, idn.operator_h, received_by="Bripka Sitorus").status_code == 200

    chain = client.get(f"{API}/evidence/{eid}/chain", headers=th.operator_h).json()
    assert chain["verified"] is True and chain["broken_at"] is None and chain["problems"] == []
    events = chain["events"]
    assert [e["kind"] for e in events] == ["collected", "handover", "received", "handover", "received"]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert [(e["from_agency"], e["to_agency"]) for e in events] == [
        (None, th.code),
        (th.code, my.code),
        (th.code, my.code),
        (my.code, idn.code),
        (my.code, idn.code),
    ]
    assert [e["actor"] for e in events[1:3]] == [th.admin, my.operator]
    assert events[0]["prev_hash"] == GENESIS
    for before, after in zip(events, events[1:]):
        assert after["prev_hash"] == before["hash"]
    for e in events:  # each hash is the SHA-256 of the event's canonical form (docs/evidence-chain.md)
        assert e["hash"] == evidence.event_hash({**e, "at": _parse(e["at"]), "item_id": eid}) == documented_hash(eid, e)
    assert events[0]["details"]["content_sha256"] == PHOTO_SHA
    assert events[2]["details"]["received_by"] == "Sgt. Rahman" and events[2]["details"]["seal_intact"] is True
    assert events[4]["details"]["received_by"] == "Bripka Sitorus"
    assert client.get(f"{API}/evidence/{eid}", headers=idn.operator_h).json()["head_hash"] == events[-1]["hash"]

    # Seen by the incident's agency and everyone who held it; not by an uninvolved agency.
    for agency in (th, my, idn):
        assert client.get(f"{API}/evidence/{eid}/chain", headers=agency.operator_h).status_code == 200
    for url in (
        f"/evidence/{eid}",
        f"/evidence/{eid}/chain",
        f"/incidents/{iid}/evidence",
        f"/evidence/{eid}/content/verify",
    ):
        assert client.get(f"{API}{url}", headers=vn.admin_h).status_code == 404, url
    assert err(hand(client, eid, vn.admin_h, vn.code)) == (404, "evidence_not_found")

    # The custodian records what happens to it; disposal is for supervisors; afterwards nothing moves.
    ev = client.post(
        f"{API}/evidence/{eid}/events",
        json={"kind": "examined", "note": "lab: photo not edited"},
        headers=idn.operator_h,
    )
    assert ev.status_code == 201, ev.text
    assert err(
        client.post(f"{API}/evidence/{eid}/events", json={"kind": "examined", "note": "x"}, headers=my.admin_h)
    ) == (403, "not_custodian")
    destroy = {"kind": "destroyed", "note": "court order 12/2026"}
    assert err(client.post(f"{API}/evidence/{eid}/events", json=destroy, headers=idn.operator_h)) == (
        403,
        "role_not_allowed",
    )
    done = client.post(f"{API}/evidence/{eid}/events", json=destroy, headers=idn.admin_h)
    assert done.status_code == 201 and done.json()["status"] == "destroyed" and done.json()["events"] == 7
    assert err(hand(client, eid, idn.admin_h, th.code)) == (409, "evidence_disposed")
    assert client.get(f"{API}/evidence/{eid}/chain", headers=th.operator_h).json()["verified"] is True

    # Every change is in the audit trail with the hash of the event it wrote; reads by others too.
    rows = db.execute(
        text(
            "SELECT action, agencies, details FROM audit_log WHERE entity_type = 'evidence' "
            "AND entity_id = :i ORDER BY seq"
        ),
        {"i": str(eid)},
    ).all()
    changes = [r for r in rows if not r.action.endswith("read")]
    assert [r.action for r in changes] == [
        "evidence.create",
        "evidence.handover",
        "evidence.accept",
        "evidence.handover",
        "evidence.accept",
        "evidence.examined",
        "evidence.destroyed",
    ]
    all_events = client.get(f"{API}/evidence/{eid}/chain", headers=th.operator_h).json()["events"]
    assert [r.details["event_hash"] for r in changes] == [e["hash"] for e in all_events]
    assert {my.code, th.code} <= set(changes[1].agencies)
    assert any(r.action == "evidence.chain_read" and idn.code in r.agencies for r in rows)
    listed = db.execute(
        text("SELECT agencies, details FROM audit_log WHERE action = 'evidence.list_read' AND entity_id = :i"),
        {"i": str(iid)},
    ).all()
    assert [(sorted(r.agencies), r.details["item_ids"]) for r in listed] == [(sorted([my.code, th.code]), [eid])]


def documented_hash(item_id: int, e: dict) -> str:
    """The hash as docs/evidence-chain.md tells an outside verifier to compute it."""
    import json
    from datetime import datetime, timezone

    at = datetime.fromisoformat(e["at"].replace("Z", "+00:00")).astimezone(timezone.utc)
    body = {
        k: e[k]
        for k in (
            "seq",
            "kind",
            "actor",
            "actor_agency",
            "from_agency",
            "from_custodian",
            "to_agency",
            "to_custodian",
            "note",
            "details",
            "prev_hash",
        )
    }
    body |= {"item_id": item_id, "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(raw).hexdigest()


def _parse(value: str):
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_declined_and_withdrawn_handovers_return_the_item(client, world):
    th, my = world.agency("TH"), world.agency("MY")
    iid = incident(client, th)
    seized = {
        "kind": "seized_item",
        "description": "methamphetamine tablets in 3 sacks",
        "quantity": "3 sacks",
        "seal_number": "TH-SEAL-0091",
    }
    item = client.post(f"{API}/incidents/{iid}/evidence", json=seized, headers=th.operator_h).json()
    assert item["sealed"] is True and item["quantity"] == "3 sacks"
    eid = item["id"]
    assert hand(client, eid, th.admin_h, my.code).status_code == 200
    r = client.post(f"{API}/evidence/{eid}/decline", json={"reason": "no jurisdiction"}, headers=my.operator_h)
    assert r.status_code == 200 and (r.json()["status"], r.json()["custodian_agency"]) == ("in_custody", th.code)
    assert hand(client, eid, th.admin_h, my.code).status_code == 200
    r = client.post(f"{API}/evidence/{eid}/decline", json={"reason": "sent by mistake"}, headers=th.admin_h)
    assert r.status_code == 200 and r.json()["pending_agency"] is None
    # Seals: a sealed item is unsealed (with a reason) before it is sealed again.
    seal = {"kind": "sealed", "seal_number": "TH-SEAL-0092"}
    assert err(client.post(f"{API}/evidence/{eid}/events", json=seal, headers=th.operator_h)) == (409, "seal_conflict")
    assert (
        client.post(
            f"{API}/evidence/{eid}/events",
            json={"kind": "unsealed", "note": "count for the lab"},
            headers=th.operator_h,
        ).status_code
        == 201
    )
    r = client.post(f"{API}/evidence/{eid}/events", json=seal, headers=th.operator_h)
    assert r.status_code == 201 and r.json()["seal_number"] == "TH-SEAL-0092"
    chain = client.get(f"{API}/evidence/{eid}/chain", headers=my.operator_h).json()
    assert [e["kind"] for e in chain["events"]] == [
        "collected",
        "handover",
        "handover_declined",
        "handover",
        "handover_declined",
        "unsealed",
        "sealed",
    ]
    assert [e["details"].get("by") for e in chain["events"] if e["kind"] == "handover_declined"] == [
        "receiver",
        "giver",
    ]
    assert chain["verified"] is True
    # The declined agency keeps sight of what it was offered, but cannot act on it.
    assert err(hand(client, eid, my.admin_h, th.code)) == (403, "not_custodian")


def test_patrol_units_register_and_hand_over_what_they_hold(client, world):
    th, my = world.agency("TH"), world.agency("MY")
    unit_id, device = world.unit(th, TH_LAND, device=True)
    other_id, other_device = world.unit(th, TH_LAND, device=True)
    my_unit, my_device = world.unit(my, TH_LAND, device=True)
    iid = incident(client, th)
    # A unit's device registers evidence of the incidents its unit is tasked to (core.permissions).
    untasked = client.post(
        f"{API}/incidents/{iid}/evidence", json={"kind": "other", "description": "x"}, headers=device
    )
    assert err(untasked) == (403, "outside_field_scope")
    assert client.post(f"{API}/incidents/{iid}/taskings", json={"unit_id": unit_id}, headers=th.operator_h).is_success
    r = client.post(
        f"{API}/incidents/{iid}/evidence", json={"kind": "other", "description": "GPS unit from boat"}, headers=device
    )
    assert r.status_code == 201, r.text
    item = r.json()
    assert item["custodian_unit_id"] == unit_id and item["collected_by"] == item["custodian"]
    eid = item["id"]
    # Another unit's device: neither tasked to the incident nor holding the item.
    assert err(hand(client, eid, other_device, my.code)) == (403, "outside_field_scope")
    assert hand(client, eid, device, my.code, to_unit_id=my_unit).status_code == 200
    assert err(take(client, eid, device)) == (403, "not_receiver")
    r = take(client, eid, my_device)
    assert r.status_code == 200 and r.json()["custodian_unit_id"] == my_unit
    # A unit named that is not of the receiving agency is refused.
    assert hand(client, eid, my_device, th.code, to_unit_id=my_unit).status_code == 404


def test_bad_input_is_refused_with_a_reason(client, world, factory):
    th, my = world.agency("TH"), world.agency("MY")
    iid = incident(client, th)
    url = f"{API}/incidents/{iid}/evidence"
    cases = [
        {"kind": "clip", "description": "no hash"},
        {"kind": "seized_item", "description": "sack", "content_sha256": PHOTO_SHA},
        snapshot(quantity="3"),
        snapshot(content_sha256="abc"),
        snapshot(lat=None),
        snapshot(collected_at="2026-11-22T03:10:00"),
        snapshot(unknown=1),
    ]
    for body in cases:
        r = client.post(url, json={k: v for k, v in body.items() if v is not None}, headers=th.operator_h)
        assert r.status_code == 422 and r.json()["error"] == "invalid_input", (body, r.text)
    assert err(client.post(url, json=snapshot(collected_at="2099-01-01T00:00:00Z"), headers=th.operator_h)) == (
        422,
        "invalid_input",
    )
    # Another agency's incident it cannot see; a liaison may not register.
    assert err(client.post(url, json=snapshot(), headers=my.operator_h)) == (404, "incident_not_found")
    liaison = factory.headers(factory.user(th.code, role="liaison"))
    assert err(client.post(url, json=snapshot(), headers=liaison)) == (403, "role_not_allowed")
    eid = client.post(url, json=snapshot(), headers=th.operator_h).json()["id"]
    assert err(hand(client, eid, th.admin_h, th.code)) == (422, "invalid_input")
    assert err(hand(client, eid, th.admin_h, "ZZ-NOWHERE")) == (404, "not_found")
    assert err(client.post(f"{API}/evidence/{eid}/events", json={"kind": "released"}, headers=th.admin_h)) == (
        422,
        "invalid_input",
    )
    assert client.get(f"{API}/evidence/{eid}").status_code == 401
    assert client.get(f"{API}/evidence/0", headers=th.admin_h).status_code == 422
