"""Out-of-order fixes (another worker, a publisher resending after a reconnect) are judged between
their stored neighbours: no second or reversed crossing, no repeated zone entry, and a crossing
that only late fixes show is still reported. The per-track advisory locks serialise two
transactions on the same track."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import text
from sqlalchemy.orm import Session

from alerts import geofence
from sensors import service
from sensors.schemas import DetectionRow

# Either side of the Thai-Malaysian land border near Sadao / Bukit Kayu Hitam.
NORTH = [(100.4190, 6.6200), (100.4192, 6.6100), (100.4194, 6.6000)]
SOUTH = [(100.4205, 6.5060), (100.4207, 6.4960), (100.4209, 6.4860)]


def _fixes(sensor: str, track: str, points: list[tuple[float, float]]) -> list[DetectionRow]:
    t0 = datetime.now(timezone.utc) - timedelta(minutes=10)
    return [
        DetectionRow(
            sensor_id=sensor,
            agency_code="TH-RTP",
            event_id=uuid.uuid4().hex,
            observed_at=t0 + timedelta(seconds=30 * i),
            lon=lon,
            lat=lat,
            confidence=0.9,
            track_id=track,
            track_key=f"{sensor}:{track}",
            speed_mps=None,
            heading_deg=None,
            identifiers={},
            raw="{}",
            **{"class": "person"},
        )
        for i, (lon, lat) in enumerate(points)
    ]


def _batch(session, rows: list[DetectionRow], cooldown_s: int = 0) -> list[dict]:
    geofence.lock_tracks(session=session, track_keys={r["track_key"] for r in rows})
    stored = service.store_detections(session=session, rows=rows)
    return geofence.raise_alerts(session=session, batch=stored.batch, cooldown_s=cooldown_s, max_gap_s=3600)


def test_late_fixes_across_an_alerted_crossing_raise_nothing(session, sensor):
    """N1 N2 N3 S1 S2 S3 observed in that order; N1, N2 and S2, S3 arrive first, N3 and S1 late.
    The late leg N3 -> S1 crosses the line again, even with no cooldown it raises nothing."""
    n1, n2, n3, s1, s2, s3 = _fixes(sensor, "late", NORTH + SOUTH)
    first = _batch(session, [n1, n2]) + _batch(session, [s2, s3])
    late = _batch(session, [n3, s1])
    crossings = [a for a in first if a["kind"] == "crossing"]
    assert [(a["from_state"], a["to_state"]) for a in crossings] == [("TH", "MY")]
    assert late == []


def test_a_late_fix_on_the_other_side_raises_no_reversed_crossing(session, sensor):
    """The track crossed north -> south; a late northern fix arrives with a new southern one."""
    n1, n2, n3, s1, s2, s3 = _fixes(sensor, "reverse", NORTH + SOUTH)
    first = _batch(session, [n1, s1, s2])
    late = _batch(session, [n2, n3, s3])
    assert [(a["from_state"], a["to_state"]) for a in first if a["kind"] == "crossing"] == [("TH", "MY")]
    assert [a for a in late if a["kind"] == "crossing"] == []
    assert [a for a in late if a["kind"] == "zone_entry"] == []


def test_a_late_fix_is_judged_between_its_neighbours(session, sensor):
    """The first fixes of a crossing track arrive after the last ones (a publisher resending after a
    reconnect): the crossing is reported once, north -> south, on the leg to the stored fix."""
    n1, n2, n3, s1, s2, s3 = _fixes(sensor, "resent", NORTH + SOUTH)
    first = _batch(session, [s1, s2, s3])
    late = _batch(session, [n1, n2, n3])
    again = _batch(session, [n2])  # a second delivery of the same position with another event id
    assert [a for a in first if a["kind"] == "crossing"] == []
    crossings = [a for a in late if a["kind"] == "crossing"]
    assert [(a["from_state"], a["to_state"], a["detection_ids"]) for a in crossings] == [
        ("TH", "MY", [late_id(session, n3), late_id(session, s1)])
    ]
    assert [a for a in again if a["kind"] == "crossing"] == []


def late_id(session, row) -> int:
    return session.execute(text("SELECT id FROM detections WHERE event_id = :e"), {"e": row["event_id"]}).scalar_one()


def test_a_late_fix_inside_a_zone_enters_it_once(session, sensor):
    """out -> in -> out where the inside fix arrives last: one entry; an earlier late inside fix adds none."""
    outside, inside = (100.4190, 6.6500), (100.4195, 6.5300)
    a, b0, b, c = _fixes(sensor, "zone", [outside, inside, inside, outside])
    _batch(session, [a, c])
    entries = [x for x in _batch(session, [b]) if x["kind"] == "zone_entry"]
    assert len(entries) == 1 and entries[0]["detection_id"] == late_id(session, b)
    assert [x for x in _batch(session, [b0]) if x["kind"] == "zone_entry"] == []


def test_track_locks_serialise_two_transactions_on_one_track(engine):
    """While one transaction holds a track, another that needs it waits; other tracks do not wait."""
    track = f"lock-test:{uuid.uuid4().hex}"
    holder = Session(bind=engine)
    geofence.lock_tracks(session=holder, track_keys=[track, "another-track"])
    acquired = threading.Event()

    def contender():
        with Session(bind=engine) as s:
            geofence.lock_tracks(session=s, track_keys=[f"{track}-other", track])
            acquired.set()
            s.rollback()

    thread = threading.Thread(target=contender)
    thread.start()
    try:
        assert not acquired.wait(1.0), "the second transaction must wait for the track"
        with Session(bind=engine) as free:
            geofence.lock_tracks(session=free, track_keys=[f"{track}-free"])
            assert free.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar() >= 3
            free.rollback()
    finally:
        holder.rollback()
        holder.close()
    assert acquired.wait(10.0)
    thread.join(10)
