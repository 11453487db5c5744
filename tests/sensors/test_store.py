"""Storing a batch (sensors.service.store_detections): every column arrives as sent, a resent
event is stored once, and the new rows wait in ``new_detections`` under their batch's number for
the geofence and track rules of the same transaction (``bw_new_detections(batch)``), and are gone
when it ends."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.db import session_scope
from sensors import service
from sensors.schemas import DetectionRow, GatewayCreate, SensorCreate

# Inside the Thai border buffer strip near Sadao, a few kilometres north of the line.
INSIDE = (100.40, 6.55)


def _row(sensor: str, **values) -> DetectionRow:
    row = {
        "sensor_id": sensor,
        "agency_code": "TH-RTP",
        "event_id": uuid.uuid4().hex,
        "observed_at": datetime(2026, 11, 22, 3, 4, 5, 678901, tzinfo=timezone.utc),
        "lon": INSIDE[0],
        "lat": INSIDE[1],
        "class": "person",
        "confidence": 0.9,
        "track_id": None,
        "track_key": None,
        "speed_mps": None,
        "heading_deg": None,
        "identifiers": {},
        "raw": '{"a": 1}',
    }
    row.update(values)
    return row  # type: ignore[return-value]


def _new_rows(session, batch: int) -> list[dict]:
    return [
        dict(r)
        for r in session.execute(
            text("SELECT * FROM bw_new_detections(:b) ORDER BY id"),
            {"b": batch},
        ).mappings()
    ]


def test_every_column_is_stored_as_sent(session, sensor):
    now = datetime.now(timezone.utc).replace(microsecond=123456)
    rows = [
        # whole numbers where floats are expected (JSON has no difference), identifiers, a raw payload
        # with escapes and non-ASCII text
        _row(
            sensor,
            observed_at=now,
            lon=100,
            lat=7,
            confidence=1,
            speed_mps=3,
            heading_deg=270,
            track_id="t1",
            track_key=f"{sensor}:t1",
            identifiers={"plate": "กข 1234"},
            raw='{"note": "a \\"quoted\\" word, a tab\\t and ไทย", "n": 1.50}',
            **{"class": "vehicle"},
        ),
        # no position: the sensor's own location
        _row(sensor, lon=None, lat=None),
    ]
    stored = service.store_detections(session=session, rows=rows)
    assert stored.count == 2
    got = (
        session.execute(
            text(
                "SELECT event_id, observed_at, ST_X(geom) AS lon, ST_Y(geom) AS lat, located_by, class, confidence, "
                "track_id, track_key, speed_mps, heading_deg, identifiers, raw::text AS raw "
                "FROM detections WHERE sensor_id = :s ORDER BY located_by"
            ),
            {"s": sensor},
        )
        .mappings()
        .all()
    )
    assert [dict(g) for g in got] == [
        {
            "event_id": rows[0]["event_id"],
            "observed_at": now,
            "lon": 100.0,
            "lat": 7.0,
            "located_by": "payload",
            "class": "vehicle",
            "confidence": 1.0,
            "track_id": "t1",
            "track_key": f"{sensor}:t1",
            "speed_mps": 3.0,
            "heading_deg": 270.0,
            "identifiers": {"plate": "กข 1234"},
            "raw": rows[0]["raw"],
        },
        {
            "event_id": rows[1]["event_id"],
            "observed_at": rows[1]["observed_at"],
            "lon": 100.42,
            "lat": 6.6,
            "located_by": "sensor",
            "class": "person",
            "confidence": pytest.approx(0.9),
            "track_id": None,
            "track_key": None,
            "speed_mps": None,
            "heading_deg": None,
            "identifiers": {},
            "raw": '{"a": 1}',
        },
    ]


def test_a_raw_payload_that_is_not_json_is_refused(session, sensor):
    with pytest.raises(Exception, match="invalid input syntax for type json"):
        service.store_detections(session=session, rows=[_row(sensor, raw="{not json")])


def test_new_rows_wait_under_their_batch_number_with_their_placement(session, sensor):
    first = service.store_detections(session=session, rows=[_row(sensor), _row(sensor, lon=100.42, lat=6.0)])
    again = _row(sensor)
    second = service.store_detections(session=session, rows=[again, dict(again)])  # the same event twice
    resent = service.store_detections(session=session, rows=[dict(again)])  # and once more, later
    assert (first.count, second.count, resent.count) == (2, 1, 0)
    assert len({first.batch, second.batch, resent.batch}) == 3

    placed = _new_rows(session, first.batch)
    assert len(placed) == 2
    buffer_strip = (
        session.execute(
            text(
                "SELECT id FROM zones WHERE kind = 'border_buffer' AND ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326))"
            ),
            {"x": INSIDE[0], "y": INSIDE[1]},
        )
        .scalars()
        .all()
    )
    assert buffer_strip, "the shipped borders put a buffer strip here"
    near, far = sorted(placed, key=lambda r: -r["lat"])
    assert set(buffer_strip) <= set(near["zone_ids"])
    assert not set(buffer_strip) & set(far["zone_ids"])
    assert len(_new_rows(session, second.batch)) == 1 and _new_rows(session, resent.batch) == []
    # rows stored later in the transaction can join a batch (multi-part AIS messages completed then)
    joined = service.store_detections(session=session, rows=[_row(sensor), dict(again)], into=second)
    assert (joined.batch, joined.count) == (second.batch, 2)
    assert len(_new_rows(session, second.batch)) == 2


def test_new_rows_are_gone_when_the_transaction_ends(engine):
    with session_scope(engine) as s:
        gw = f"gw-{uuid.uuid4().hex[:8]}"
        sensor = f"cam-{uuid.uuid4().hex[:8]}"
        service.create_gateway(session=s, gateway_in=GatewayCreate(id=gw, agency_code="TH-RTP"))
        service.create_sensor(
            session=s, sensor_in=SensorCreate(id=sensor, gateway_id=gw, kind="camera", lon=100.42, lat=6.6)
        )
    try:
        with engine.connect() as conn:
            with Session(bind=conn) as s:
                stored = service.store_detections(session=s, rows=[_row(sensor)])
                assert len(_new_rows(s, stored.batch)) == 1
                s.commit()
                assert _new_rows(s, stored.batch) == []
                stored = service.store_detections(session=s, rows=[_row(sensor)])
                s.rollback()
                # the table itself may have gone with the rollback; the next batch makes it again
                stored = service.store_detections(session=s, rows=[_row(sensor)])
                assert len(_new_rows(s, stored.batch)) == 1
                s.commit()
    finally:
        with session_scope(engine) as s:
            s.execute(text("DELETE FROM detections WHERE sensor_id = :s"), {"s": sensor})
            s.execute(text("DELETE FROM detection_keys WHERE sensor_id = :s"), {"s": sensor})
            s.execute(text("DELETE FROM sensors WHERE id = :s"), {"s": sensor})
            s.execute(text("DELETE FROM gateways WHERE id = :g"), {"g": gw})
