"""The broker service users with the real broker: each may use only the topics its service needs.

A stolen ``bw-api`` or ``bw-ingest`` password must not let anyone publish detections or a status
in a gateway's name: the broker refuses the publish (MQTT v5 PUBACK reason code 0x87, "not
authorized") and the ingest worker never sees it. What each service does publish and subscribe
still works (the end-to-end tests of ingest, taskings and the liaison hotline rely on it).
"""

from __future__ import annotations

import threading
import uuid

import orjson
import pytest

from core import topics
from tests.conftest import detection, mqtt_client, scalar, wait_for

pytestmark = pytest.mark.e2e

NOT_AUTHORIZED = 0x87


def granted(rc: int) -> bool:
    """A success reason code: 0, or 0x10 "no matching subscribers"."""
    return rc < 0x80


def _service(settings, which: str) -> tuple[str, str]:
    _, _, user, password = settings.mqtt_parts(settings.mqtt_api_url if which == "api" else settings.mqtt_url)
    return user, password


def _puback(settings, user: str, password: str, topic: str, payload: bytes) -> int:
    """Publish once at QoS 1 over MQTT v5; the reason code of the broker's PUBACK."""
    answer: dict[str, int] = {}
    acked = threading.Event()

    def on_publish(client, userdata, mid, reason_code, properties):
        answer["rc"] = reason_code.value
        acked.set()

    client = mqtt_client(settings, user, password)
    client.on_publish = on_publish
    try:
        wait_for(client.is_connected, timeout=10)
        client.publish(topic, payload, qos=1)
        assert acked.wait(10), "no PUBACK"
    finally:
        client.loop_stop()
        client.disconnect()
    return answer["rc"]


def _hears(settings, user: str, password: str, topic_filter: str, publish) -> bool:
    """Whether ``user``, subscribed to ``topic_filter``, receives what ``publish()`` sends there.
    (Mosquitto grants the subscription itself; the ACL's ``read`` decides what is delivered.)"""
    heard, subscribed = threading.Event(), threading.Event()
    client = mqtt_client(settings, user, password)
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_message = lambda *args: heard.set()
    try:
        wait_for(client.is_connected, timeout=10)
        client.subscribe(topic_filter, qos=1)
        assert subscribed.wait(10), "no SUBACK"
        publish()
        return heard.wait(2)
    finally:
        client.loop_stop()
        client.disconnect()


@pytest.mark.parametrize("which", ["api", "ingest"])
def test_a_service_user_cannot_publish_in_a_gateways_name(settings, engine, ingest, make_gateway, which):
    gw = make_gateway()
    sensor = next(iter(gw.sensors))
    root = settings.mqtt_topic_root
    user, password = _service(settings, which)
    forged = uuid.uuid4().hex
    body = orjson.dumps(detection(sensor, *gw.sensors[sensor], event_id=forged))
    assert _puback(settings, user, password, topics.detections(root, gw.agency, gw.id, sensor), body) == NOT_AUTHORIZED
    status = topics.gateway_status(root, gw.agency, gw.id)
    assert _puback(settings, user, password, status, b'{"status":"offline"}') == NOT_AUTHORIZED
    # The gateway itself is heard, after the forged message: that one never reached the worker.
    genuine = uuid.uuid4().hex
    body = orjson.dumps(detection(sensor, *gw.sensors[sensor], event_id=genuine))
    assert granted(_puback(settings, gw.id, gw.password, topics.detections(root, gw.agency, gw.id, sensor), body))
    wait_for(lambda: scalar(engine, "SELECT count(*) FROM detections WHERE event_id = :e", e=genuine) == 1)
    assert scalar(engine, "SELECT count(*) FROM detections WHERE event_id = :e", e=forged) == 0
    assert (
        scalar(
            engine, "SELECT count(*) FROM dead_letters WHERE position(convert_to(:e, 'UTF8') in payload) > 0", e=forged
        )
        == 0
    )
    assert scalar(engine, "SELECT status FROM gateways WHERE id = :g", g=gw.id) != "offline"


def test_each_service_user_has_the_topics_its_service_uses_and_no_more(settings, make_gateway):
    root = settings.mqtt_topic_root
    api, ingest_user = _service(settings, "api"), _service(settings, "ingest")
    gw = make_gateway()
    sensor = next(iter(gw.sensors))
    alert = topics.alerts(root, "TH-RTP")
    tasking = topics.taskings(root, "TH-RTP", 1)
    own_status = topics.worker_status(root, "bw-ingest-acl")
    # The API: partner pushes on the alert topics, taskings on the units' topics; nothing of the gateways'.
    assert granted(_puback(settings, *api, alert, b"{}"))
    assert granted(_puback(settings, *api, tasking, b"{}"))
    assert _puback(settings, *api, own_status, b"{}") == NOT_AUTHORIZED
    body = orjson.dumps(detection(sensor, *gw.sensors[sensor]))
    detections = topics.detections(root, gw.agency, gw.id, sensor)

    def gateway_publishes() -> int:
        return _puback(settings, gw.id, gw.password, detections, body)

    assert not _hears(settings, *api, f"{root}/gw/#", gateway_publishes)
    # The ingest worker: reads the gateways' topics, writes alerts and its own status; no taskings.
    assert granted(_puback(settings, *ingest_user, alert, b"{}"))
    assert granted(_puback(settings, *ingest_user, own_status, b"{}"))
    assert _puback(settings, *ingest_user, tasking, b"{}") == NOT_AUTHORIZED
    assert not _hears(settings, *ingest_user, tasking, lambda: _puback(settings, *api, tasking, b"{}"))
    # Nothing outside the topic layout, for either.
    for user in (api, ingest_user):
        assert _puback(settings, *user, f"{root}/elsewhere", b"{}") == NOT_AUTHORIZED
