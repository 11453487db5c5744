"""Batches stored ahead of the one that commits (sensors.ingest), each on a connection of its own:
a batch that carries an event of a batch still being stored (a redelivery) is not stored beside it,
and a batch that must be committed from scratch (its store failed while the database was away)
rolls back the batches ahead that share an event with it, and only those; each event is stored once."""

from __future__ import annotations

import threading
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import orjson

from core import topics
from sensors.batches import Ahead, Message, StagedBatch
from sensors.ingest import IngestWorker
from tests.conftest import detection, scalar


def _messages(settings, gateway, bodies: list[dict]) -> list[Message]:
    sensor = next(iter(gateway.sensors))
    topic = topics.detections(settings.mqtt_topic_root, gateway.agency, gateway.id, sensor)
    return [Message(topic, orjson.dumps(b), mid, 1, 0) for mid, b in enumerate(bodies, 1)]


def _ahead(staged: StagedBatch, bodies: list[dict]) -> Ahead:
    future: Future[StagedBatch] = Future()
    future.set_result(staged)
    return Ahead(future, {(b["sensor_id"], b["event_id"]) for b in bodies})


def test_a_batch_sharing_an_event_with_one_still_being_stored_waits_for_its_turn(settings, engine, make_gateway):
    gateway = make_gateway()
    sensor = next(iter(gateway.sensors))
    lon, lat = gateway.sensors[sensor]
    shared = detection(sensor, lon, lat)
    worker = IngestWorker(settings, engine, client_id=f"test-{uuid.uuid4().hex[:8]}")
    processor = worker.processor
    storing: Future[StagedBatch] = Future()  # not done: its store is still running
    pending = deque([Ahead(storing, {(sensor, shared["event_id"])})])
    with ThreadPoolExecutor(max_workers=1) as storer:
        redelivery = worker._stage_ahead(storer, processor.parse(_messages(settings, gateway, [dict(shared)])), pending)
        unrelated = worker._stage_ahead(
            storer, processor.parse(_messages(settings, gateway, [detection(sensor, lon, lat)])), pending
        )
        staged = unrelated.future.result()
    assert redelivery.future.done() and redelivery.future.result().session is None  # stored in its turn
    assert staged.session is not None and staged.stored.count == 1  # stored ahead at once
    staged.unstage()


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
    other_bodies = [detection(sensor, lon, lat) for _ in range(3)]
    other = processor.stage(processor.parse(_messages(settings, gateway, other_bodies)))  # shares nothing
    unstaged = StagedBatch(processor.parse(_messages(settings, gateway, first)))  # its store had failed

    done = threading.Thread(
        target=worker._handle,
        args=(_ahead(unstaged, first), deque([_ahead(ahead, later), _ahead(other, other_bodies)])),
        daemon=True,
    )
    done.start()
    done.join(timeout=10)
    alive = done.is_alive()
    if alive:  # let the test end: release the key the waiting insert is stuck on
        ahead.unstage()
        done.join(timeout=30)
    assert not alive, "the batch committed from scratch waited on a batch stored ahead of it"
    assert ahead.session is None, "the batch stored ahead was rolled back, to be stored again in its turn"
    assert other.session is not None, "a batch stored ahead that shares no event with it stays stored"
    assert processor.finish(other).stored == 3
    assert worker.totals["stored"] == 4 and worker.totals["messages"] == 4

    again = processor.commit(ahead.parsed)  # its turn: only its three new events are new
    assert (again.stored, again.duplicates) == (3, 1)
    assert scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = :s", s=sensor) == 10
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM detections WHERE sensor_id = :s AND event_id = :e",
            s=sensor,
            e=shared["event_id"],
        )
        == 1
    )
