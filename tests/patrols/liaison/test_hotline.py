"""The liaison hotline: one alert or incident pushed to a named partner, with who, when and why;
the partner reads exactly that item and nothing else of the sender; pushes and reads are audited;
the push reaches the partner's alert topic on the real broker."""

from __future__ import annotations

import queue
from datetime import timedelta

import orjson
from sqlalchemy import text

from tests.conftest import mqtt_client, wait_for
from tests.factories import TH_LAND, now

API = "/api/v1"


def incident(client, agency, title="boat landing") -> dict:
    r = client.post(
        f"{API}/incidents",
        json={
            "lon": TH_LAND[0],
            "lat": TH_LAND[1],
            "title": title,
            "category": "people_smuggling",
            "priority": "critical",
        },
        headers=agency.operator_h,
    )
    assert r.status_code == 201, r.text
    return r.json()


def push(client, agency, item_type, item_id, to, reason="group heading for your side at Padang Besar"):
    return client.post(
        f"{API}/liaison/pushes",
        json={"item_type": item_type, "item_id": item_id, "to_agency": to, "reason": reason},
        headers=agency.operator_h,
    )


def audit_rows(db, action: str, entity_id) -> list:
    return db.execute(
        text("SELECT * FROM audit_log WHERE action = :a AND entity_id = :i ORDER BY seq"),
        {"a": action, "i": str(entity_id)},
    ).all()


def test_partner_reads_exactly_what_was_pushed(client, world, factory, db):
    th, my, idn = world.agency("TH"), world.agency("MY"), world.agency("ID")
    liaison = factory.headers(factory.user(my.code, role="liaison"))
    stranger = factory.headers(factory.user(idn.code, role="liaison"))
    world.settle()
    shared, kept = incident(client, th), incident(client, th, "kept at home")
    r = push(client, th, "incident", shared["id"], my.code)
    assert r.status_code == 201, r.text
    pushed = r.json()
    assert (pushed["from_agency"], pushed["to_agency"], pushed["pushed_by"]) == (th.code, my.code, th.operator)
    assert pushed["reason"] == "group heading for your side at Padang Besar" and pushed["pushed_at"]
    assert pushed["item"]["id"] == shared["id"] and pushed["item"]["category"] == "people_smuggling"
    assert [pushed["item"]["lon"], pushed["item"]["lat"]] == list(TH_LAND)

    inbox = client.get(f"{API}/liaison/inbox", headers=liaison).json()
    assert [p["id"] for p in inbox["items"]] == [pushed["id"]]
    assert client.get(f"{API}/liaison/inbox/{pushed['id']}", headers=liaison).json() == pushed
    assert client.get(f"{API}/liaison/inbox", headers=my.operator_h).json()["items"][0]["id"] == pushed["id"]
    # Nothing else of the sender: neither the pushed incident's live record nor the other one.
    for iid in (shared["id"], kept["id"]):
        assert client.get(f"{API}/incidents/{iid}", headers=my.operator_h).status_code == 404
        assert client.get(f"{API}/incidents/{iid}/timeline", headers=my.operator_h).status_code == 404
    # A third agency sees nothing of it.
    assert client.get(f"{API}/liaison/inbox", headers=stranger).json()["items"] == []
    assert client.get(f"{API}/liaison/inbox/{pushed['id']}", headers=stranger).status_code == 404
    # The sender lists what it pushed; the receiver's inbox is not the sender's.
    assert [p["id"] for p in client.get(f"{API}/liaison/outbox", headers=th.operator_h).json()["items"]] == [
        pushed["id"]
    ]
    assert client.get(f"{API}/liaison/inbox", headers=th.operator_h).json()["items"] == []

    # Audited: the push (who, to whom, why) and each read of the pushed item.
    (entry,) = audit_rows(db, "incident.push", shared["id"])
    assert entry.actor == th.operator and sorted(entry.agencies) == sorted([th.code, my.code])
    assert entry.details == {"push_id": pushed["id"], "to_agency": my.code, "reason": pushed["reason"]}
    reads = db.execute(
        text(
            "SELECT actor, details FROM audit_log WHERE action = 'partner_push.read' "
            "AND agencies @> ARRAY[CAST(:a AS varchar)] ORDER BY seq"
        ),
        {"a": my.code},
    ).all()
    assert len(reads) == 3 and all(r.details["push_ids"] == [pushed["id"]] for r in reads)


def test_a_pushed_alert_is_a_copy_without_internal_details(client, world, factory):
    th, my = world.agency("TH"), world.agency("MY")
    sensor = factory.sensor(th.code, *TH_LAND)
    alert = factory.alert(sensor, th.code, TH_LAND[0], TH_LAND[1], now() - timedelta(minutes=2), title="crossing")
    world.settle()
    r = push(client, th, "alert", alert, my.code)
    assert r.status_code == 201, r.text
    item = r.json()["item"]
    assert (item["id"], item["kind"], item["title"], item["from_state"], item["to_state"]) == (
        alert,
        "crossing",
        "crossing",
        "MY",
        "TH",
    )
    assert not {"details", "track_key", "sensor_id", "detection_ids"} & set(item)
    assert client.get(f"{API}/alerts", headers=my.operator_h).json()["features"] == []


def test_pushes_that_are_refused(client, world, factory):
    th, my = world.agency("TH"), world.agency("MY")
    liaison = factory.headers(factory.user(th.code, role="liaison"))
    world.settle()
    theirs, mine = incident(client, my), incident(client, th)
    r = push(client, th, "incident", theirs["id"], my.code)
    assert r.status_code == 404 and "is not" in r.json()["message"]
    assert push(client, th, "incident", mine["id"], th.code).status_code == 422
    assert push(client, th, "incident", mine["id"], "ZZ-NOBODY").status_code == 404
    assert push(client, th, "incident", mine["id"], my.code, reason="  ").status_code == 422
    assert (
        client.post(
            f"{API}/liaison/pushes",
            json={"item_type": "unit", "item_id": 1, "to_agency": my.code, "reason": "because"},
            headers=th.operator_h,
        ).status_code
        == 422
    )
    r = client.post(
        f"{API}/liaison/pushes",
        json={"item_type": "incident", "item_id": mine["id"], "to_agency": my.code, "reason": "because"},
        headers=liaison,
    )
    assert r.status_code == 403
    assert client.get(f"{API}/liaison/inbox").status_code == 401
    assert client.get(f"{API}/liaison/outbox", headers=my.operator_h).json()["items"] == []


def test_a_push_reaches_the_partners_alert_topic(client, world, settings):
    th, my, idn = world.agency("TH"), world.agency("MY"), world.agency("ID")
    # The API's broker user may read the alert topics it writes (the ingest worker's may not).
    _, _, user, password = settings.mqtt_parts(settings.mqtt_api_url)
    inbox: queue.Queue = queue.Queue()
    subscribed: dict = {}
    listener = mqtt_client(settings, user, password)
    listener.on_message = lambda c, u, msg: inbox.put(msg)
    listener.on_subscribe = lambda c, u, mid, codes, props: subscribed.update(codes=codes)
    try:
        wait_for(listener.is_connected, timeout=10)
        root = settings.mqtt_topic_root
        listener.subscribe([(f"{root}/alerts/{my.code}", 1), (f"{root}/alerts/{idn.code}", 1)])
        wait_for(lambda: subscribed, timeout=10)
        item = incident(client, th)
        pushed = push(client, th, "incident", item["id"], my.code).json()
        message = inbox.get(timeout=10)
        body = orjson.loads(message.payload)
        assert message.topic == f"{root}/alerts/{my.code}" and message.qos == 1
        assert body["kind"] == "partner_push" and body["id"] == pushed["id"]
        assert body["item"]["id"] == item["id"] and body["reason"] == pushed["reason"]
        assert inbox.empty()  # nothing on the third agency's topic
    finally:
        listener.loop_stop()
        listener.disconnect()
