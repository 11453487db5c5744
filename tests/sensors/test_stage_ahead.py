"""Batches stored ahead of the one that commits (sensors.ingest): a batch that must be committed
from scratch (its store failed while the database was away) goes first, even when a batch stored
ahead of it holds an event it carries too (a redelivery), and each event is stored once."""

from __future__ import annotations

import threading
import uuid
from collections import deque
from concurrent.futures import Future

import orjson

from sensors import topics
from sensors.ingest import IngestWorker, Message, StagedBatch
from tests.conftest import detection, scalar


def _messages(settings, gateway, bodies: list[dict]) -> list[Message]:
    sensor = next(iter(gateway.sensors))
    topic = topics.detections(settings.mqtt_topic_root, gateway.agency, gateway.id, sensor)
    return [Message(topic, orjson.dumps(b), mid, 1, 0) for mid, b in enumerate(bodies, 1)]


def test_a_batch_committed_from_scratch_goes_before_those_stored_ahead(settings, engine, make_gateway):
    gateway = make_gateway()
    sensor = next(iter(gateway.sensors))
    lon, lat = gateway.sensors[sensor]
    shared = detection(sensor, lon, lat)  # in both batches: the later one is a redelivery
    first = [shared] + [detection(sensor, lon, lat) for _ in range(3)]
    later = [dict(shared)] + [detection(sensor, lon, lat) for _ in range(3)]
    worker = IngestWorker(settings, engine, client_id=f"test-{uuid.uuid4().hex[:8]}")
    processor = worker.processor

    ahead = processor.stage(processor.parse(_messages(settings, gateway, later)))  # holds the shared key
    stored_ahead: Future[StagedBatch] = Future()
    stored_ahead.set_result(ahead)
    unstaged = StagedBatch(processor.parse(_messages(settings, gateway, first)))  # its store had failed

    done = threading.Thread(target=worker._handle, args=(unstaged, deque([stored_ahead])), daemon=True)
    done.start()
    done.join(timeout=10)
    alive = done.is_alive()
    if alive:  # let the test end: release the key the waiting insert is stuck on
        ahead.unstage()
        done.join(timeout=30)
    assert not alive, "the batch committed from scratch waited on a batch stored ahead of it"
    assert ahead.session is None, "the batch stored ahead was rolled back, to be stored again in its turn"
    assert worker.totals["stored"] == 4 and worker.totals["messages"] == 4

    again = processor.commit(ahead.parsed)  # its turn: only its three new events are new
    assert (again.stored, again.duplicates) == (3, 1)
    assert scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = :s", s=sensor) == 7
    assert scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = :s AND event_id = :e",
                  s=sensor, e=shared["event_id"]) == 1
