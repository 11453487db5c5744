"""Taskings pushed to the unit over MQTT, on the unit's own topic (its ACL lets only it read there).

Published after the tasking's transaction has committed, QoS 1; a unit with a persistent
session receives it when it comes back online. The HTTP API stays the source of truth: a unit
that missed a push catches up with ``GET /units/{id}/taskings?since=``.
"""

from __future__ import annotations

import logging
import threading
import uuid

import orjson

from core import topics
from core.settings import Settings, get_settings
from patrols.schemas import TaskingOut

log = logging.getLogger("borderwatch.patrols.push")

_lock = threading.Lock()
_client = None


def _connected_client(settings: Settings):
    global _client
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    with _lock:
        if _client is not None and _client.is_connected():
            return _client
        if _client is not None:
            _client.loop_stop()
            _client.disconnect()
            _client = None
        host, port, user, password = settings.mqtt_parts(settings.mqtt_api_url)
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"bw-api-push-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if user:
            client.username_pw_set(user, password)
        client.connect(host, port, keepalive=30)
        client.loop_start()
        _client = client
        return client


def publish_tasking(tasking: TaskingOut, *, settings: Settings | None = None, timeout_s: float = 5.0) -> bool:
    """Publish the tasking to its unit; False (and a log line) if the broker cannot be reached."""
    settings = settings or get_settings()
    if not settings.mqtt_api_url:
        log.warning("BW_MQTT_API_URL is not set: tasking %s not pushed", tasking.id)
        return False
    topic = topics.taskings(settings.mqtt_topic_root, tasking.unit_agency_code, tasking.unit_id)
    payload = orjson.dumps(tasking.model_dump(mode="json"))
    try:
        info = _connected_client(settings).publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=timeout_s)
        return info.is_published()
    except (OSError, RuntimeError, ValueError) as exc:
        log.error("tasking %s not pushed to %s: %s", tasking.id, topic, exc)
        return False


def publish_json(topic: str, body: dict, *, settings: Settings | None = None, timeout_s: float = 5.0) -> bool:
    """Publish one JSON object (QoS 1) with the API's broker user; False (and a log line) if it cannot."""
    settings = settings or get_settings()
    if not settings.mqtt_api_url:
        log.warning("BW_MQTT_API_URL is not set: nothing published on %s", topic)
        return False
    try:
        info = _connected_client(settings).publish(topic, orjson.dumps(body), qos=1)
        info.wait_for_publish(timeout=timeout_s)
        return info.is_published()
    except (OSError, RuntimeError, ValueError) as exc:
        log.error("not published on %s: %s", topic, exc)
        return False
