"""Scale-out: two ingest workers (different client ids, one $share group) split a stream of
tracks. Both get a share, no message is handled twice, and every border crossing raises exactly
one alert with the right direction although fixes of one track reach both workers at once
(per-track advisory locks serialise them; late fixes raise nothing)."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.broker_roots import topic_root_on_broker
from tests.conftest import scalar, unique, wait_for
from tests.sensors import faultkit

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MESSAGES = 20_000


def test_two_workers_split_one_stream_and_alert_each_crossing_once(settings, engine, make_gateway, capsys):
    gw = make_gateway(
        sensors={unique("cam"): (100.40 + i * 0.002, 6.53) for i in range(faultkit.SENSORS_PER_GATEWAY)},
        range_m=faultkit.STREAM_RANGE_M,
    )
    gateway = faultkit.Gateway(gw.id, gw.agency, gw.password, list(gw.sensors))
    # A topic root and share group of its own: the suite's shared worker takes none of this stream.
    root = f"borderwatch/scale-{uuid.uuid4().hex[:6]}"
    group = unique("bw-scale")
    tag = unique("s")
    stream = faultkit.make_stream(gateway, root, MESSAGES, tag=tag)
    workers = [
        faultkit.Worker(unique(f"bw-scale-{i}"), BW_MQTT_TOPIC_ROOT=root, BW_INGEST_SHARE_GROUP=group) for i in range(2)
    ]
    count = lambda: scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = ANY(:s)", s=gateway.sensors)  # noqa: E731
    with topic_root_on_broker(settings, engine, root, gw.id):
        publisher = None
        try:
            for worker in workers:
                worker.mark()
                worker.start()
            publisher = faultkit.Publisher(settings, gateway, stream, 4000).start()
            publisher.thread.join(60)
            wait_for(lambda: publisher.unacknowledged() == 0, timeout=60, interval=0.2)
            wait_for(lambda: count() == MESSAGES, timeout=120, interval=0.25)
        finally:
            if publisher:
                publisher.close()
            for worker in workers:
                worker.stop()
    totals = [worker.totals() for worker in workers]
    stored = faultkit.check_stored_once(engine, gateway, [e for _, _, e in stream])
    alerts = faultkit.check_alerts(engine, gateway, faultkit.crossing_tracks(gateway, MESSAGES, tag=tag))
    with capsys.disabled():
        print(f"\n[scale-out] {MESSAGES} messages over 2 workers in group {group}")
        for worker, t in zip(workers, totals):
            print(f"  - {worker.client_id}: {t}")
        print(f"  detections: {stored}")
        print(f"  alerts: {alerts}")

    assert all(t["messages"] > 0 for t in totals), "each worker handles a share"
    assert sum(t["messages"] for t in totals) == MESSAGES, "no message is delivered twice"
    assert sum(t["stored"] for t in totals) == MESSAGES
    assert sum(t["duplicates"] for t in totals) == 0
    assert stored == {"stored": MESSAGES, "distinct": MESSAGES, "published_found": MESSAGES, "dead": 0}
    assert alerts["crossing_found"] == alerts["crossing_expected"] == MESSAGES // faultkit.FIXES_PER_TRACK // 5
    assert alerts["crossing_doubled"] == alerts["crossing_wrong_direction"] == alerts["crossing_unexpected"] == 0
    assert alerts["zone_doubled"] == alerts["zone_unexpected"] == 0


def test_a_worker_that_leaves_its_share_group_gets_each_message_once(settings, engine, make_gateway):
    """The broker session outlives the worker, subscriptions included: a worker that comes back
    without its share group unsubscribes the group's filter, or it would get everything twice."""
    gw = make_gateway(
        sensors={unique("cam"): (100.40 + i * 0.002, 6.53) for i in range(faultkit.SENSORS_PER_GATEWAY)},
        range_m=faultkit.STREAM_RANGE_M,
    )
    gateway = faultkit.Gateway(gw.id, gw.agency, gw.password, list(gw.sensors))
    root = f"borderwatch/switch-{uuid.uuid4().hex[:6]}"
    client_id = unique("bw-switch")
    n = 200
    stream = faultkit.make_stream(gateway, root, n, tag=unique("w"))
    count = lambda: scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = ANY(:s)", s=gateway.sensors)  # noqa: E731
    with topic_root_on_broker(settings, engine, root, gw.id):
        shared = faultkit.Worker(client_id, BW_MQTT_TOPIC_ROOT=root, BW_INGEST_SHARE_GROUP=unique("bw-group"))
        shared.mark()
        shared.start()
        shared.stop()
        plain = faultkit.Worker(client_id, BW_MQTT_TOPIC_ROOT=root, BW_INGEST_SHARE_GROUP="")
        publisher = None
        try:
            plain.mark()
            plain.start()
            # Both filters were held by the session until the worker's unsubscription was confirmed.
            wait_for(
                lambda: (
                    scalar(engine, "SELECT count(*) FROM ingest_subscriptions WHERE client_id = :c", c=client_id) == 1
                ),
                timeout=30,
                interval=0.1,
            )
            publisher = faultkit.Publisher(settings, gateway, stream, 1000).start()
            publisher.thread.join(60)
            wait_for(lambda: count() == n, timeout=60, interval=0.2)
            time.sleep(1.0)
        finally:
            if publisher:
                publisher.close()
            plain.stop()
    totals = plain.totals()
    assert totals["messages"] == n and totals["duplicates"] == 0, totals
    assert (
        scalar(engine, "SELECT topic_filter FROM ingest_subscriptions WHERE client_id = :c", c=client_id)
        == f"{root}/gw/#"
    )
