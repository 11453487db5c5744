"""Publication of written alerts on MQTT: one topic per agency (``core.topics.alerts``), QoS 1,
the alert as JSON in the shape every rule returns (``alerts.statements.alert_columns``)."""

from __future__ import annotations

from collections.abc import Iterable

import orjson
import paho.mqtt.client as mqtt

from core import topics


def publish_alerts(client: mqtt.Client, *, root: str, alerts: Iterable[dict]) -> None:
    """Queue each alert on its agency's topic; the client sends them in order."""
    for alert in alerts:
        client.publish(topics.alerts(root, alert["agency_code"]), orjson.dumps(alert), qos=1)
