"""Taskings pushed over MQTT to the unit's own topic on the real broker; the ACL keeps others out."""

from __future__ import annotations

import queue
import time

import orjson

from tests.conftest import mqtt_client, wait_for, wait_for_broker_login
from tests.factories import TH_LAND

API = "/api/v1"


def subscribe(settings, credential: dict, topic: str) -> tuple[object, queue.Queue, dict]:
    inbox: queue.Queue = queue.Queue()
    granted: dict = {}
    client = mqtt_client(settings, credential["mqtt_username"], credential["mqtt_password"])
    client.on_message = lambda c, u, msg: inbox.put(msg)
    client.on_subscribe = lambda c, u, mid, codes, props: granted.update(codes=[int(x.value) for x in codes])
    wait_for(client.is_connected, timeout=10)
    client.subscribe(topic, qos=1)
    wait_for(lambda: granted, timeout=10)
    return client, inbox, granted


def test_tasking_reaches_only_its_unit(client, world, settings):
    a = world.agency()
    unit_id, device = world.unit(a, TH_LAND, device=True)
    other_id, _ = world.unit(a, TH_LAND)
    credential = client.put(f"{API}/units/{unit_id}/credentials", headers=a.admin_h)
    assert credential.status_code == 200, credential.text
    mine = credential.json()
    assert mine["mqtt_username"] == f"unit.{unit_id}"
    assert mine["taskings_topic"] == f"{settings.mqtt_topic_root}/units/{a.code}/{unit_id}/taskings"
    theirs = client.put(f"{API}/units/{other_id}/credentials", headers=a.admin_h).json()
    for credential in (mine, theirs):  # the broker re-reads its password file and ACL on SIGHUP
        wait_for_broker_login(settings, credential["mqtt_username"], credential["mqtt_password"])

    unit_client, inbox, _ = subscribe(settings, mine, mine["taskings_topic"])
    spy, spy_inbox, _ = subscribe(settings, theirs, mine["taskings_topic"])
    try:
        incident = client.post(
            f"{API}/incidents", json={"title": "contact", "lon": TH_LAND[0], "lat": TH_LAND[1]}, headers=a.operator_h
        ).json()
        tasking = client.post(
            f"{API}/incidents/{incident['id']}/taskings", json={"unit_id": unit_id}, headers=a.operator_h
        ).json()
        message = inbox.get(timeout=10)
        body = orjson.loads(message.payload)
        assert message.topic == mine["taskings_topic"] and message.qos == 1
        assert (body["id"], body["unit_id"], body["status"]) == (tasking["id"], unit_id, "assigned")
        assert body["incident"]["geometry"]["coordinates"] == list(TH_LAND)
        # Mosquitto grants the subscription but its ACL withholds every message from the other unit.
        time.sleep(0.5)
        assert spy_inbox.empty()
    finally:
        for c in (unit_client, spy):
            c.loop_stop()
            c.disconnect()


def test_a_wrong_password_is_refused_by_the_broker(client, world, settings):
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    a = world.agency()
    unit_id, _ = world.unit(a, TH_LAND)
    credential = client.put(f"{API}/units/{unit_id}/credentials", headers=a.admin_h).json()
    # The unit's user exists on the broker: only the password is wrong below.
    wait_for_broker_login(settings, credential["mqtt_username"], credential["mqtt_password"])
    host, port, _, _ = settings.mqtt_parts()
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.username_pw_set(f"unit.{unit_id}", "not-the-password")
    result = {}
    c.on_connect = lambda cl, u, flags, reason, props: result.update(reason=reason)
    c.connect(host, port)
    c.loop_start()
    try:
        wait_for(lambda: result, timeout=10)
        assert result["reason"].is_failure
    finally:
        c.loop_stop()
        c.disconnect()
