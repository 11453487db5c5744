"""The ingest worker's MQTT client (sensors/mqtt_client.py) against the real Mosquitto: the lean
path hands over exactly what paho would, leaves everything else to paho, and its batched
acknowledgements really settle the messages in the broker's session."""

from __future__ import annotations

import os
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from core import topics
from sensors.mqtt_client import IngestClient
from tests.conftest import mqtt_client, unique, wait_for

pytestmark = pytest.mark.e2e


class Receiver:
    """An IngestClient on a persistent session, recording what reaches it and by which path."""

    def __init__(self, settings, client_id: str, topic_filter: str) -> None:
        self.settings, self.client_id, self.topic_filter = settings, client_id, topic_filter
        self.lean: list[tuple[str, bytes, int, int]] = []
        self.paho: list[mqtt.MQTTMessage] = []
        self.client: IngestClient | None = None

    def connect(self, *, clean: bool) -> None:
        host, port, user, password = self.settings.mqtt_parts()
        client = IngestClient(
            deliver=lambda *m: self.lean.append(m),
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        client.username_pw_set(user, password)
        client.on_message = lambda c, u, msg: self.paho.append(msg)
        subscribed = threading.Event()
        client.on_subscribe = lambda *a: subscribed.set()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 300
        client.connect(host, port, clean_start=clean, properties=props)
        client.loop_start()
        client.subscribe(self.topic_filter, qos=1)
        assert subscribed.wait(10)
        self.client = client

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _publisher(settings, gw):
    return mqtt_client(settings, gw.id, gw.password)


def _topic(settings, gw) -> str:
    return topics.detections(settings.mqtt_topic_root, gw.agency, gw.id, next(iter(gw.sensors)))


def test_lean_path_carries_plain_qos1_and_leaves_the_rest_to_paho(settings, make_gateway):
    gw = make_gateway()
    topic = _topic(settings, gw)
    receiver = Receiver(settings, unique("lean"), f"{settings.mqtt_topic_root}/gw/{gw.agency}/{gw.id}/#")
    receiver.connect(clean=True)
    pub = _publisher(settings, gw)
    plain = [os.urandom(40) + f"-{i}".encode() for i in range(50)]
    # payloads around and above the 64 KiB socket read, so packets span reads
    large = [os.urandom(size) for size in (65_530, 65_536, 200_000)]
    with_props = [f"props-{i}".encode() for i in range(5)]
    qos0 = [f"qos0-{i}".encode() for i in range(5)]
    for payload in plain + large:
        pub.publish(topic, payload, qos=1).wait_for_publish(10)
    for payload in with_props:
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = ("gateway-firmware", "4.2")
        pub.publish(topic, payload, qos=1, properties=props).wait_for_publish(10)
    for payload in qos0:
        pub.publish(topic, payload, qos=0)
    wait_for(lambda: len(receiver.lean) + len(receiver.paho) >= 63)
    time.sleep(0.3)  # nothing more arrives
    pub.loop_stop()
    pub.disconnect()
    receiver.disconnect()

    assert [p for _, p, _, _ in receiver.lean] == plain + large
    assert {(t, q) for t, _, _, q in receiver.lean} == {(topic, 1)}
    assert len({mid for _, _, mid, _ in receiver.lean}) == len(plain + large)
    assert all(mid > 0 for _, _, mid, _ in receiver.lean)
    # paho's own path: what carries properties, and QoS 0
    assert sorted(m.payload for m in receiver.paho) == sorted(with_props + qos0)
    by_payload = {m.payload: m for m in receiver.paho}
    for payload in with_props:
        assert by_payload[payload].properties.UserProperty == [("gateway-firmware", "4.2")]
        assert by_payload[payload].qos == 1
    assert {by_payload[p].qos for p in qos0} == {0}


@pytest.mark.parametrize("acknowledge", [True, False], ids=["acked", "not-acked"])
def test_batched_acknowledgements_settle_the_session(settings, make_gateway, acknowledge):
    """ack_many's single write must really acknowledge every message: after a reconnect to the
    same session nothing comes again; without it, everything does (the test can fail)."""
    gw = make_gateway()
    topic = _topic(settings, gw)
    receiver = Receiver(settings, unique("acks"), f"{settings.mqtt_topic_root}/gw/{gw.agency}/{gw.id}/#")
    receiver.connect(clean=True)
    pub = _publisher(settings, gw)
    payloads = [f"m-{i}".encode() for i in range(300)]
    for payload in payloads:
        pub.publish(topic, payload, qos=1)
    wait_for(lambda: len(receiver.lean) == len(payloads))
    pub.loop_stop()
    pub.disconnect()
    if acknowledge:
        receiver.client.ack_many(mid for _, _, mid, _ in receiver.lean)
        time.sleep(0.3)  # the network thread writes the PUBACKs
    receiver.disconnect()

    receiver.lean.clear()
    receiver.connect(clean=False)
    if acknowledge:
        time.sleep(1.0)
        assert receiver.lean == [] and receiver.paho == []
    else:
        wait_for(lambda: len(receiver.lean) == len(payloads))
        assert sorted(p for _, p, _, _ in receiver.lean) == sorted(payloads)
    receiver.disconnect()
