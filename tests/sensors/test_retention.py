"""Retention: monthly detection partitions older than the policy are detached CONCURRENTLY and
dropped, and their detection keys deleted, while the real ingest worker keeps storing the
current stream. A plain DETACH would queue an ACCESS EXCLUSIVE lock behind the open
transaction below and block every insert after it; here the worker's inserts go through while
the detach waits."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from datetime import date, datetime, timezone

import orjson
import pytest
from sqlalchemy import text

from core import topics
from core.db import session_scope
from sensors import retention, service
from sensors.schemas import DetectionRow
from tests.conftest import REPO_ROOT, detection, mqtt_client, scalar, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _old_rows(sensor: str, months: list[date], per_month: int) -> list[DetectionRow]:
    return [
        DetectionRow(
            sensor_id=sensor,
            agency_code="TH-RTP",
            event_id=uuid.uuid4().hex,
            observed_at=datetime(m.year, m.month, 1 + i % 27, 12, tzinfo=timezone.utc),
            lon=100.42,
            lat=6.63,
            confidence=0.9,
            track_id=None,
            track_key=None,
            speed_mps=None,
            heading_deg=None,
            identifiers={},
            raw="{}",
            **{"class": "person"},
        )
        for m in months
        for i in range(per_month)
    ]


def test_old_partitions_are_dropped_while_the_worker_keeps_ingesting(settings, engine, ingest, make_gateway, capsys):
    gw = make_gateway()
    sensor = next(iter(gw.sensors))
    year = datetime.now(timezone.utc).year - 3
    months = [date(year, m, 1) for m in (1, 2, 3)]
    names = [f"detections_{m:%Y_%m}" for m in months]
    with session_scope(engine) as s:
        s.execute(text("SELECT bw_ensure_detection_partitions(:m, 3)"), {"m": months[0]})
        service.store_detections(session=s, rows=_old_rows(sensor, months, 100))
    stored = lambda: scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = :s", s=sensor)  # noqa: E731
    recent = lambda: scalar(  # noqa: E731
        engine,
        "SELECT count(*) FROM detections WHERE sensor_id = :s AND observed_at > now() - interval '1 day'",
        s=sensor,
    )
    assert stored() == 300

    # --dry-run through the real command: shows the plan, drops nothing.
    dry = subprocess.run(
        [sys.executable, "-m", "cli", "retention", "--keep-days", "365", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert dry.returncode == 0, dry.stderr
    assert all(name in dry.stderr for name in names) and "nothing dropped" in dry.stderr
    assert all(scalar(engine, "SELECT to_regclass(:n) IS NOT NULL", n=n) for n in names)

    todo = retention.plan(engine, keep_days=365)
    assert [p.name for p in todo.partitions] == names  # nothing of the last year is touched
    assert todo.keys >= 300

    client = mqtt_client(settings, gw.id, gw.password)
    topic = topics.detections(settings.mqtt_topic_root, gw.agency, gw.id, sensor)

    def publish(n: int) -> None:
        infos = [client.publish(topic, orjson.dumps(detection(sensor, 100.42, 6.63)), qos=1) for _ in range(n)]
        for info in infos:
            info.wait_for_publish(10)

    # A reader holds the partitioned table open; DETACH ... CONCURRENTLY waits for it.
    reader = engine.connect()
    reader.begin()
    reader.execute(text("SELECT count(*) FROM detections WHERE sensor_id = :s"), {"s": sensor})
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.update(report=retention.apply(engine, todo, chunk=100)))
    try:
        worker.start()
        wait_for(
            lambda: (
                scalar(
                    engine,
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'ALTER TABLE detections DETACH PARTITION%' "
                    "AND wait_event_type = 'Lock'",
                )
                == 1
            ),
            timeout=20,
        )
        publish(500)
        wait_for(lambda: recent() == 500, timeout=30)  # the worker stores while the detach waits
        detaching = worker.is_alive()
    finally:
        reader.rollback()
        reader.close()
    worker.join(60)
    publish(500)
    wait_for(lambda: recent() == 1000, timeout=30)
    client.loop_stop()
    client.disconnect()

    report = outcome["report"]
    with capsys.disabled():
        print(
            f"\n[retention] dropped {report.partitions_dropped} ({report.rows_dropped} rows), "
            f"{report.keys_deleted} keys deleted; 1000 recent detections stored meanwhile"
        )
    assert detaching, "the detach was still waiting for the reader while the worker stored 500 detections"
    assert report.partitions_dropped == names and report.rows_dropped == 300
    assert report.keys_deleted == todo.keys
    assert not any(scalar(engine, "SELECT to_regclass(:n) IS NOT NULL", n=n) for n in names)
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM detection_keys WHERE sensor_id = :s AND observed_at < :t",
            s=sensor,
            t=datetime(year + 1, 1, 1, tzinfo=timezone.utc),
        )
        == 0
    )
    assert stored() == 1000  # the 300 old ones are gone with their partitions
    assert scalar(engine, "SELECT count(DISTINCT event_id) FROM detections WHERE sensor_id = :s", s=sensor) == 1000
    assert scalar(engine, "SELECT count(*) FROM detection_keys WHERE sensor_id = :s", s=sensor) == 1000
    assert retention.plan(engine, keep_days=365).partitions == []


def test_a_policy_shorter_than_the_accepted_detection_age_is_refused(settings):
    run = subprocess.run(
        [sys.executable, "-m", "cli", "retention", "--keep-days", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert run.returncode == 1
    assert f"keep at least {settings.max_detection_age_days} days" in " ".join(run.stderr.split())


def test_a_worker_applies_the_policy_on_its_timer(engine, make_gateway):
    from tests.sensors.faultkit import Worker

    gw = make_gateway()
    sensor = next(iter(gw.sensors))
    month = date(datetime.now(timezone.utc).year - 4, 6, 1)
    name = f"detections_{month:%Y_%m}"
    with session_scope(engine) as s:
        s.execute(text("SELECT bw_ensure_detection_partitions(:m, 1)"), {"m": month})
        service.store_detections(session=s, rows=_old_rows(sensor, [month], 10))
    worker = Worker(
        f"bw-retention-{uuid.uuid4().hex[:6]}",
        BW_RETENTION_INTERVAL_S="0.5",
        BW_MQTT_TOPIC_ROOT=f"borderwatch/ret-{uuid.uuid4().hex[:6]}",
    )
    worker.mark()
    worker.start()
    try:
        wait_for(lambda: not scalar(engine, "SELECT to_regclass(:n) IS NOT NULL", n=name), timeout=30)
    finally:
        worker.stop()
    assert scalar(engine, "SELECT count(*) FROM detection_keys WHERE sensor_id = :s", s=sensor) == 0
    assert f"retention dropped {name}" in worker.log_path.read_text()
