"""The alerts raised for a stream of fixes do not depend on how its messages are grouped into
batches: one by one, in one burst, in arbitrary pieces (a backlog after an outage, a replayed
buffer) or across a worker restart, the same fixes give the same crossings and zone entries
(kind, target, direction, observed time). Cooldowns count in observed time, within a batch as
across batches.

Runs the real ingest path (``sensors.batches.BatchProcessor``: parse, store, geofence, rules,
commit) on the test PostGIS; each run uses a track of its own."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import text

from core import topics
from sensors.batches import BatchProcessor, Message
from tests.conftest import detection

# Near 100.72 E, 6.53 N, each about 600 m or more from every border line and zone edge
# (checked by ``places``): inside the Thai buffer strip of Thailand–Malaysia 1, outside it
# (further into Thailand), in Thailand near the line (inside the strip) and in Malaysia.
PLACES = {"IN": (100.72, 6.53), "OUT": (100.72, 6.555), "TH": (100.72, 6.4987), "MY": (100.72, 6.4877)}
T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=20)


@pytest.fixture(scope="module")
def places(engine):
    """The places are where the scenarios say (states, buffer strip), clear of every edge."""
    with engine.connect() as conn:
        for name, (lon, lat) in PLACES.items():
            zones, edge_m, state = conn.execute(
                text(
                    """
                WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:x, :y), 4326) AS g)
                SELECT (SELECT coalesce(array_agg(z.name ORDER BY z.name), '{}') FROM zones z, p
                        WHERE z.entry_alert AND z.owner_agency = 'TH-RTP' AND ST_Intersects(z.geom, p.g)),
                       (SELECT min(ST_Distance(f.geom::geography, p.g::geography)) FROM fence_edges f, p),
                       (SELECT s.code FROM states s, p WHERE ST_Contains(s.geom, p.g))
                FROM p
                """
                ),
                {"x": lon, "y": lat},
            ).one()
            assert edge_m > 550, name
            assert state == ("MY" if name == "MY" else "TH"), name
            assert zones == (["Thailand–Malaysia 1 buffer TH"] if name in ("IN", "TH") else []), name
    return PLACES


@pytest.fixture(scope="module")
def gateway(make_gateway):
    return make_gateway(agency="TH-RTP", sensors={f"cam-{uuid.uuid4().hex[:8]}": (100.72, 6.52)})


def _messages(settings, gateway, track: str, fixes: list[tuple[int, str]]) -> list[Message]:
    sensor = next(iter(gateway.sensors))
    topic = topics.detections(settings.mqtt_topic_root, gateway.agency, gateway.id, sensor)
    out = []
    for i, (at_s, place) in enumerate(fixes):
        lon, lat = PLACES[place]
        body = detection(
            sensor,
            lon,
            lat,
            object_class="person",
            confidence=0.9,
            track_id=track,
            observed_at=(T0 + timedelta(seconds=at_s)).isoformat(),
            event_id=f"{track}-{i}",
        )
        out.append(Message(topic, orjson.dumps(body), i + 1, 1, 0))
    return out


def _alerts(engine, gateway, track: str) -> list[tuple]:
    sensor = next(iter(gateway.sensors))
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT kind, segment_id, zone_id, from_state, to_state, observed_at FROM alerts "
                "WHERE track_key = :t AND kind IN ('crossing', 'zone_entry') ORDER BY observed_at, kind, id"
            ),
            {"t": f"{sensor}:{track}"},
        ).all()
    return [(k, seg, zone, f, t, int((at - T0).total_seconds())) for k, seg, zone, f, t, at in rows]


def _run(settings, engine, gateway, fixes, cuts=(), restart: int | None = None, replay: bool = False) -> list[tuple]:
    """Send ``fixes`` in batches split at ``cuts``; at batch ``restart`` a new worker takes over, and the
    batch cut there is first stored and rolled back (the old worker died before committing it) and,
    with ``replay``, the batch before it comes again (committed, never acknowledged)."""
    track = uuid.uuid4().hex[:10]
    messages = _messages(settings, gateway, track, fixes)
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(messages))), len(messages)]
    batches = [messages[a:b] for a, b in zip(bounds, bounds[1:])]
    processor = BatchProcessor(settings, engine)
    for i, batch in enumerate(batches):
        if restart is not None and i == restart:
            processor.stage(processor.parse(batch)).unstage()
            processor = BatchProcessor(settings, engine)
            if replay and i > 0:
                assert processor.process(batches[i - 1]).stored == 0
        processor.process(batch)
    return _alerts(engine, gateway, track)


def _one_by_one(settings, engine, gateway, fixes) -> list[tuple]:
    return _run(settings, engine, gateway, fixes, cuts=range(1, len(fixes)))


def _segment_and_zone(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(text("SELECT id FROM border_segments WHERE name = 'Thailand–Malaysia 1'")).scalar(),
            conn.execute(text("SELECT id FROM zones WHERE name = 'Thailand–Malaysia 1 buffer TH'")).scalar(),
        )


def test_a_second_zone_entry_in_the_same_batch_is_raised(settings, engine, gateway, places):
    """OUT, OUT, IN (+120 s), IN, OUT (+300 s), OUT, IN (+900 s), IN: two entries 780 s apart,
    beyond the 10-minute cooldown, however the fixes arrive."""
    fixes = [(0, "OUT"), (60, "OUT"), (120, "IN"), (180, "IN"), (300, "OUT"), (360, "OUT"), (900, "IN"), (960, "IN")]
    _, zone = _segment_and_zone(engine)
    expected = [("zone_entry", None, zone, None, "TH", 120), ("zone_entry", None, zone, None, "TH", 900)]
    assert _one_by_one(settings, engine, gateway, fixes) == expected
    assert _run(settings, engine, gateway, fixes) == expected  # one burst
    assert _run(settings, engine, gateway, fixes, cuts=[5]) == expected  # a backlog of the rest


def test_a_crossing_back_in_the_same_batch_is_raised(settings, engine, gateway, places):
    """TH, TH, MY (+120 s), MY, TH (+900 s), TH: TH->MY then MY->TH, however the fixes arrive."""
    fixes = [(0, "TH"), (60, "TH"), (120, "MY"), (180, "MY"), (900, "TH"), (960, "TH")]
    segment, _ = _segment_and_zone(engine)
    crossings = [("crossing", segment, None, "TH", "MY", 120), ("crossing", segment, None, "MY", "TH", 900)]

    def only_crossings(alerts):
        return [a for a in alerts if a[0] == "crossing"]

    assert only_crossings(_one_by_one(settings, engine, gateway, fixes)) == crossings
    assert only_crossings(_run(settings, engine, gateway, fixes)) == crossings


def test_the_cooldown_holds_within_a_batch_as_across_batches(settings, engine, gateway, places):
    """Back and forth across the line every 2 minutes: within 10 minutes of a crossing, a crossing
    of the same segment raises nothing, in a burst as one by one."""
    fixes = [(120 * i, "TH" if i % 2 == 0 else "MY") for i in range(12)]
    segment, _ = _segment_and_zone(engine)
    one_by_one = [a for a in _one_by_one(settings, engine, gateway, fixes) if a[0] == "crossing"]
    # 120 s TH->MY, then the first crossing at least 600 s later (720 s, MY->TH), and so on
    assert one_by_one == [
        ("crossing", segment, None, "TH", "MY", 120),
        ("crossing", segment, None, "MY", "TH", 720),
        ("crossing", segment, None, "TH", "MY", 1320),
    ]
    assert [a for a in _run(settings, engine, gateway, fixes) if a[0] == "crossing"] == one_by_one


def test_dark_vessel_spells_in_one_burst_are_raised_as_one_by_one(settings, engine, make_gateway):
    """A boat only radar sees, 7 hours apart (beyond the 6-hour repeat): two dark-vessel alerts, in a
    burst as one by one."""
    sea = (101.7799, 2.2755)  # the Malaysian territorial sea of the Malacca Strait
    radar = make_gateway(agency="MY-MMEA", sensors={f"radar-{uuid.uuid4().hex[:8]}": sea}, kind="radar")
    sensor = next(iter(radar.sensors))
    topic = topics.detections(settings.mqtt_topic_root, radar.agency, radar.id, sensor)
    repeat = settings.dark_vessel_repeat_s

    def run(one_by_one: bool) -> list[int]:
        track = uuid.uuid4().hex[:10]
        times = [0, 60, repeat + 3600, repeat + 3660]
        messages = [
            Message(
                topic,
                orjson.dumps(
                    detection(
                        sensor,
                        *sea,
                        object_class="boat",
                        track_id=track,
                        event_id=f"{track}-{i}",
                        observed_at=(T0 + timedelta(seconds=at)).isoformat(),
                    )
                ),
                i + 1,
                1,
                0,
            )
            for i, at in enumerate(times)
        ]
        processor = BatchProcessor(settings, engine)
        for batch in [[m] for m in messages] if one_by_one else [messages]:
            processor.process(batch)
        with engine.connect() as conn:
            return [
                int((at - T0).total_seconds())
                for (at,) in conn.execute(
                    text(
                        "SELECT observed_at FROM alerts WHERE kind = 'dark_vessel' AND track_key = :t ORDER BY observed_at"
                    ),
                    {"t": f"{sensor}:{track}"},
                )
            ]

    assert run(one_by_one=True) == run(one_by_one=False) == [0, repeat + 3600]


# -- property: any split of a stream gives the alerts of the same fixes sent one by one -----------

_step = st.tuples(st.integers(20, 900), st.sampled_from(sorted(PLACES)))


@st.composite
def _streams(draw):
    steps = draw(st.lists(_step, min_size=3, max_size=14))
    fixes, at = [], 0
    for gap, place in steps:
        fixes.append((at, place))
        at += gap
    cuts = draw(st.lists(st.integers(1, len(fixes) - 1), max_size=4))
    restart = draw(st.one_of(st.none(), st.integers(0, len(cuts))))
    replay = draw(st.booleans())
    return fixes, cuts, restart, replay


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=_streams())
def test_any_split_of_a_stream_raises_the_alerts_of_the_fixes_sent_one_by_one(
    settings, engine, gateway, places, stream
):
    fixes, cuts, restart, replay = stream
    expected = _one_by_one(settings, engine, gateway, fixes)
    assert _run(settings, engine, gateway, fixes, cuts, restart, replay) == expected
