"""Faults under a 50,000-message QoS 1 stream: the ingest worker killed with SIGKILL every few
seconds, Mosquitto restarted, PostgreSQL restarted. Afterwards every published message is stored
exactly once and every expected alert exists exactly once.

These tests restart services, so they run on a throw-away PostgreSQL + Mosquitto instance of
their own (another BW_RUN_DIR), never on the instance the rest of the suite shares.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import unique, wait_for
from tests.sensors import faultkit

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

MESSAGES = 50_000
RATE = 4_000  # msg/s offered by the publisher: the stream lasts about 12 s


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    tmp_dir = tmp_path_factory.mktemp("faults-run")
    monkeypatch = pytest.MonkeyPatch()
    inst = None
    try:
        inst = faultkit.start_instance(tmp_dir, monkeypatch)
        yield inst
    finally:
        try:
            faultkit.stop_instance(inst, tmp_dir)
        finally:
            monkeypatch.undo()


def _stored(instance, gateway) -> int | None:
    return faultkit.count_or_none(
        instance.engine, "SELECT count(*) FROM detections WHERE sensor_id = ANY(:s)", s=gateway.sensors
    )


def _fault_worker_kills(instance, worker: faultkit.Worker, publisher, gateway, log: list[str]) -> None:
    """SIGKILL the worker every 2 s while the stream is published and most of it not yet stored,
    restarting it at once."""
    while True:
        time.sleep(2.0)
        stored = _stored(instance, gateway) or 0
        if not publisher.thread.is_alive() and stored >= 0.8 * MESSAGES:
            return
        worker.kill()
        log.append(f"ingest worker killed with SIGKILL at {stored} stored, {publisher.published} published")
        worker.mark()
        worker.start()


def _fault_restarts(restart, instance, publisher, gateway, log: list[str]) -> None:
    """Restart the service when a quarter and when two thirds of the stream are published."""
    for share in (0.25, 0.66):
        wait_for(lambda: publisher.published >= share * MESSAGES, timeout=60)
        stored, published = _stored(instance, gateway), publisher.published
        restart()
        log.append(f"{instance.events[-1]} at {stored} stored, {published} published")


@pytest.mark.parametrize("fault", ["worker-sigkill", "broker-restart", "database-restart"])
def test_stream_survives_fault_stored_once_alerted_once(instance, fault, capsys):
    gateway = instance.register_gateway(f"flt-{fault.split('-')[0]}")
    tag = unique("t")
    stream = faultkit.make_stream(gateway, instance.settings.mqtt_topic_root, MESSAGES, tag=tag)
    events = [event for _, _, event in stream]
    # Mosquitto 2.0 does not restore a $share subscription from its persistence file (it receives
    # nothing until the worker subscribes again), so across broker restarts the single worker
    # holds a plain persistent subscription (BW_INGEST_SHARE_GROUP empty).
    share = {"BW_INGEST_SHARE_GROUP": ""} if fault == "broker-restart" else {}
    worker = faultkit.Worker(unique(f"bw-faults-{fault}"), **share)
    worker.mark()
    worker.start()
    log: list[str] = []
    started = time.monotonic()
    publisher = faultkit.Publisher(instance.settings, gateway, stream, RATE).start()
    try:
        if fault == "worker-sigkill":
            _fault_worker_kills(instance, worker, publisher, gateway, log)
        elif fault == "broker-restart":
            _fault_restarts(instance.restart_broker, instance, publisher, gateway, log)
        else:
            _fault_restarts(instance.restart_database, instance, publisher, gateway, log)
        publisher.thread.join(timeout=120)
        wait_for(lambda: publisher.unacknowledged() == 0, timeout=60, interval=0.2)
        wait_for(lambda: _stored(instance, gateway) == MESSAGES, timeout=150, interval=0.25)
        time.sleep(1.5)  # anything still in flight would show up as a double now
        assert worker.alive(), "the worker must survive broker and database restarts"
        stored = faultkit.check_stored_once(instance.engine, gateway, events)
        alerts = faultkit.check_alerts(instance.engine, gateway, faultkit.crossing_tracks(gateway, MESSAGES, tag=tag))
        worker_connects = worker.log_path.read_bytes().count(b"connected to")
    finally:
        publisher.close()
        worker.stop()
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\n[faults: {fault}] {MESSAGES} QoS 1 messages at {RATE}/s offered, done in {elapsed:.1f} s")
        for line in log:
            print(f"  - {line}")
        print(
            f"  publisher: {publisher.acknowledged} acknowledged by the broker, {publisher.refused} refused, "
            f"{publisher.connects} connections; worker connections: {worker_connects}"
        )
        print(f"  detections: {stored}")
        print(f"  alerts: {alerts}")

    if fault == "worker-sigkill":
        assert len(log) >= 3, log
    else:
        assert len(log) == 2, log
    if fault == "broker-restart":
        # Two restarts close together can fall into one reconnection window of the publisher.
        assert publisher.connects >= 2, "the publisher reconnects after the broker restarts"
        assert worker_connects >= 3, "the worker reconnects after each broker restart"
    assert publisher.refused == 0
    assert stored == {"stored": MESSAGES, "distinct": MESSAGES, "published_found": MESSAGES, "dead": 0}
    assert alerts["crossing_expected"] == MESSAGES // faultkit.FIXES_PER_TRACK // 5
    assert alerts["crossing_found"] == alerts["crossing_expected"]
    assert alerts["crossing_doubled"] == alerts["crossing_wrong_direction"] == alerts["crossing_unexpected"] == 0
    assert alerts["zone_entries"] > 0
    assert alerts["zone_missing"] == alerts["zone_unexpected"] == alerts["zone_doubled"] == 0
