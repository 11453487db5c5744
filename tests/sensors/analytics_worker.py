"""A real ingest worker process of its own for the analytics tests and the scenario suite: its
own topic root and share group (so no other worker takes its messages) and short timers; a
registered gateway publishes the tests' messages there."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from contextlib import ExitStack
from datetime import datetime

import orjson
from sqlalchemy.engine import Engine

from core import topics
from core.settings import REPO_ROOT, Settings
from tests.broker_roots import topic_root_on_broker
from tests.conftest import TestGateway, mqtt_client, unique, wait_for


def tag_block(at: datetime, sentence: str) -> str:
    """An NMEA 4 tag block carrying the receiver time, with its checksum, before a sentence."""
    body = f"c:{int(at.timestamp())}"
    checksum = 0
    for ch in body:
        checksum ^= ord(ch)
    return f"\\{body}*{checksum:02X}\\{sentence}"


class AnalyticsWorker:
    def __init__(self, settings: Settings, engine: Engine, publisher: TestGateway, **overrides: str) -> None:
        self.settings = settings
        self.root = f"borderwatch/an-{uuid.uuid4().hex[:6]}"
        self._broker = ExitStack()
        self._broker.enter_context(topic_root_on_broker(settings, engine, self.root, publisher.id))
        self.client_id = unique("bw-ingest-analytics")
        self.log_path = REPO_ROOT / ".run" / "test" / f"{self.client_id}.log"
        env = {
            **os.environ,
            "BW_MQTT_TOPIC_ROOT": self.root,
            "BW_INGEST_SHARE_GROUP": self.client_id,
            "BW_INGEST_CLIENT_ID": self.client_id,
        }
        env.update({f"BW_{k.upper()}": str(v) for k, v in overrides.items()})
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cli", "ingest"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.publisher = mqtt_client(settings, publisher.id, publisher.password)
        wait_for(lambda: b"connected to" in self.log_path.read_bytes() or self.proc.poll() is not None, timeout=30)
        assert self.proc.poll() is None, self.log_path.read_text()[-3000:]

    def publish(self, topic: str, payload: bytes | str | dict) -> None:
        if isinstance(payload, dict):
            payload = orjson.dumps(payload)
        if isinstance(payload, str):
            payload = payload.encode()
        self.publisher.publish(topic, payload, qos=1).wait_for_publish(10)

    def publish_many(self, items: list[tuple[str, bytes]]) -> None:
        infos = [self.publisher.publish(t, p, qos=1) for t, p in items]
        for info in infos:
            info.wait_for_publish(30)

    def detections_topic(self, gw, sensor: str) -> str:
        return topics.detections(self.root, gw.agency, gw.id, sensor)

    def ais_topic(self, gw, sensor: str) -> str:
        return topics.ais(self.root, gw.agency, gw.id, sensor)

    def status_topic(self, gw) -> str:
        return topics.gateway_status(self.root, gw.agency, gw.id)

    def stop(self) -> None:
        self.publisher.loop_stop()
        self.publisher.disconnect()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._broker.close()
