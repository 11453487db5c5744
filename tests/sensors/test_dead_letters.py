"""Dead letters: every rejected message is counted per gateway and day; past the gateway's daily
quota only a sample is kept whole; letters older than the retention are deleted by `borderwatch
retention` (and the worker's timer)."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import text

from core.db import session_scope
from core.settings import REPO_ROOT
from sensors import retention
from sensors import service as sensors
from tests.conftest import mosquitto_pub, scalar, unique, wait_for


def _letters(gateway: str, n: int) -> list[tuple[str, bytes, str]]:
    return [(f"borderwatch/v1/gw/TH-RTP/{gateway}/detections", f"bad {i}".encode(), "not JSON") for i in range(n)]


def _kept(session, gateway: str) -> list[bytes]:
    return [
        bytes(p)
        for p in session.scalars(
            text("SELECT payload FROM dead_letters WHERE topic LIKE :t ORDER BY id"), {"t": f"%/{gateway}/%"}
        )
    ]


def _received(session, gateway: str) -> int:
    return session.execute(
        text("SELECT sum(received) FROM dead_letter_counts WHERE gateway_id = :g"), {"g": gateway}
    ).scalar()


def test_past_the_quota_a_gateway_keeps_a_sample_and_a_count(session):
    loud, quiet = unique("gw"), unique("gw")
    # One batch mixing both gateways, then a second one: numbering goes on across batches.
    sensors.record_dead_letters(session=session, letters=_letters(loud, 12) + _letters(quiet, 2), quota=3, sample=5)
    sensors.record_dead_letters(session=session, letters=_letters(loud, 8), quota=3, sample=5)
    # Kept: letters 1-3 of the day, then the 8th, 13th and 18th (one in five past the quota).
    assert _kept(session, loud) == [b"bad 0", b"bad 1", b"bad 2", b"bad 7", b"bad 0", b"bad 5"]
    assert _received(session, loud) == 20
    assert _kept(session, quiet) == [b"bad 0", b"bad 1"] and _received(session, quiet) == 2


def test_the_ingest_worker_counts_what_it_rejects(settings, engine, ingest, make_gateway):
    gw = make_gateway()
    topic = f"{settings.mqtt_topic_root}/gw/{gw.agency}/{gw.id}/detections"
    assert mosquitto_pub(settings, gw, topic, b"{not json").returncode == 0
    wait_for(lambda: scalar(engine, "SELECT received FROM dead_letter_counts WHERE gateway_id = :g", g=gw.id))
    assert scalar(engine, "SELECT count(*) FROM dead_letters WHERE topic = :t", t=topic) == 1


def _old_and_new(engine, gateway: str) -> None:
    with session_scope(engine) as s:
        sensors.record_dead_letters(session=s, letters=_letters(gateway, 3))
        s.execute(
            text(
                "UPDATE dead_letters SET received_at = now() - interval '40 days' WHERE topic LIKE :t AND payload <> 'bad 2'"
            ),
            {"t": f"%/{gateway}/%"},
        )
        s.execute(text("UPDATE dead_letter_counts SET day = day - 40 WHERE gateway_id = :g"), {"g": gateway})


def test_retention_deletes_old_dead_letters(engine):
    gateway = unique("gw")
    _old_and_new(engine, gateway)
    report = retention.run_once(engine, keep_days=3650, min_days=30, dead_letter_days=30)
    assert report is not None and report.dead_letters_deleted >= 2
    with session_scope(engine) as s:
        assert _kept(s, gateway) == [b"bad 2"]
        assert _received(s, gateway) is None


def test_the_retention_command_deletes_old_dead_letters(engine):
    gateway = unique("gw")
    _old_and_new(engine, gateway)
    r = subprocess.run(
        [sys.executable, "-m", "cli", "retention", "--keep-days", "3650", "--dead-letter-days", "30"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert r.returncode == 0, r.stderr
    assert "deleted 2 dead letters older than 30 days" in r.stdout + r.stderr
    with session_scope(engine) as s:
        assert _kept(s, gateway) == [b"bad 2"]
