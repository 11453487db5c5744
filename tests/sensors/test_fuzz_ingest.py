"""Bad input over real MQTT: hypothesis generates more than 10,000 malformed, oversized, wrongly
encoded and hostile payloads and hostile topics, mixed with valid detections, published in bulk
to a real ingest worker. The worker survives, every bad message is in dead_letters (exact topic
and bytes) with a reason, and every good one is stored once."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import text

from core import topics
from sensors import coverage
from sensors.models import DETECTION_CLASSES
from tests.broker_roots import topic_root_on_broker
from tests.conftest import scalar, unique, wait_for
from tests.sensors import faultkit

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

BAD_EXAMPLES = 10_300
GOOD_EXAMPLES = 1_500
NOW = datetime.now(timezone.utc)

segment = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="+#/\x00"), max_size=40)
token = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)
ints = st.integers(-(2**63), 2**63 - 1)
not_token = st.one_of(
    st.just(""),
    st.text(min_size=129, max_size=200, alphabet="abc"),
    st.tuples(token, st.sampled_from([" ", "\t", "é", "\u202e", "\n"]), token).map("".join),
    ints,
    st.lists(ints, max_size=3),
    st.none(),
)
out_of_range = lambda lo, hi: st.one_of(  # noqa: E731
    st.floats(min_value=hi, exclude_min=True, allow_nan=False, allow_infinity=False),
    st.floats(max_value=lo, exclude_max=True, allow_nan=False, allow_infinity=False),
    st.just("NaN"),
    st.just("Infinity"),
    st.lists(st.floats(0, 1), max_size=2),
    st.dictionaries(token, token, max_size=2),
)


# The strategies are built once, not on every draw: hypothesis validates each new strategy object,
# which cost more than the drawing itself over 11,800 examples. The draws are the same.
EVENT_SUFFIX = st.text("abcdefXYZ-_:.", max_size=20)
AGE_S = st.integers(0, 3600)
# Half the positions near the camera of ``make_gateway`` (100.42, 6.63), half anywhere: those beyond
# the camera's range are dead letters (outside_coverage), the others are stored.
LON = st.one_of(st.floats(100.40, 100.44), st.floats(-180, 180))
LAT = st.one_of(st.floats(6.61, 6.65), st.floats(-90, 90))
UNIT = st.floats(0, 1)
CLASS = st.sampled_from(DETECTION_CLASSES)
IDENTIFIERS = st.dictionaries(
    st.from_regex(r"\A[a-z][a-z0-9_]{0,10}\Z"),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=20),
    max_size=3,
)


def valid(sensor: str, rnd: st.DrawFn) -> dict:
    body = {
        "event_id": uuid.uuid4().hex + rnd(EVENT_SUFFIX),
        "sensor_id": sensor,
        "observed_at": (NOW - timedelta(seconds=rnd(AGE_S))).isoformat(),
        "lon": rnd(LON),
        "lat": rnd(LAT),
        "class": rnd(CLASS),
        "confidence": rnd(UNIT),
    }
    if rnd(st.booleans()):
        body["track_id"] = rnd(token)
    if rnd(st.booleans()):
        body["identifiers"] = rnd(IDENTIFIERS)
    return body


FIELD_BREAKERS = {
    "event_id": not_token,
    "sensor_id": st.one_of(not_token, token.map(lambda t: "other-" + t[:50])),
    "observed_at": st.one_of(
        st.just((NOW + timedelta(days=1)).isoformat()),
        st.just((NOW - timedelta(days=45)).isoformat()),
        st.just(NOW.replace(tzinfo=None).isoformat()),
        st.text(max_size=30).filter(lambda s: not s[:1].isdigit()),
        ints,
        st.none(),
    ),
    "lon": out_of_range(-180, 180),
    "lat": out_of_range(-90, 90),
    "class": st.one_of(st.text(max_size=20).filter(lambda s: s not in DETECTION_CLASSES), ints, st.none()),
    "confidence": out_of_range(0, 1),
    "speed_mps": st.one_of(
        st.floats(min_value=400, exclude_min=True, allow_infinity=False),
        st.floats(max_value=-0.001, allow_infinity=False),
    ),
    "heading_deg": st.floats(min_value=360, exclude_min=True, allow_infinity=False),
    "track_id": st.one_of(st.just(""), st.just("a b"), st.text(min_size=129, max_size=140, alphabet="t")),
    "identifiers": st.one_of(
        st.just({"Bad Key": "x"}),
        st.just({"mmsi": "a\u0001b"}),
        st.just({"k": ""}),
        st.dictionaries(st.from_regex(r"\A[a-z]{1,8}\Z"), st.just("v"), min_size=17, max_size=20),
        st.just([1, 2]),
    ),
}


KIND = st.integers(0, 99)
BROKEN_FIELD = st.sampled_from(sorted(FIELD_BREAKERS))
REQUIRED_FIELD = st.sampled_from(["event_id", "sensor_id", "observed_at", "class", "confidence"])
NOT_A_DETECTION = st.one_of(
    st.binary(max_size=300).filter(lambda b: not b.strip().startswith(b"{")),
    st.sampled_from([b"", b"null", b"[]", b"42", b'"x"', b"{", b"{}", b'{"event_id":']),
)
ENCODING = st.sampled_from(["utf-16", "utf-32", "latin1-invalid", "nul", "bom"])
DEPTH = st.integers(300, 5000)
OVERSIZE = st.integers(66_000, 200_000)
SHORT_BINARY = st.binary(max_size=64)


def bad_message(root: str, gw, sensor: str) -> st.SearchStrategy[tuple[str, bytes, str]]:
    own = topics.detections(root, gw.agency, gw.id, sensor)
    hostile_topic = st.one_of(
        segment.map(lambda a: f"{root}/gw/{a}"),
        st.tuples(segment, segment, segment, segment).map(lambda p: f"{root}/gw/" + "/".join(p)),
        st.lists(segment, min_size=5, max_size=10).map(lambda p: f"{root}/gw/" + "/".join(p)),
        segment.filter(lambda s: s != sensor).map(lambda s: topics.detections(root, gw.agency, gw.id, s)),
        segment.filter(lambda a: a != gw.agency).map(lambda a: topics.detections(root, a, gw.id, sensor)),
        segment.filter(lambda g: g != gw.id).map(lambda g: topics.detections(root, gw.agency, g, sensor)),
        segment.filter(lambda g: g != gw.id).map(lambda g: topics.gateway_status(root, gw.agency, g)),
    )

    @st.composite
    def draw_one(draw) -> tuple[str, bytes, str]:
        kind = draw(KIND)
        if kind < 30:  # one field broken
            body = valid(sensor, draw)
            name = draw(BROKEN_FIELD)
            body[name] = draw(FIELD_BREAKERS[name])
            raw = orjson.dumps(body)
            if body[name] in ("NaN", "Infinity"):  # bare NaN / Infinity: not JSON, though many parsers take them
                raw = raw.replace(f'"{name}":"{body[name]}"'.encode(), f'"{name}":{body[name]}'.encode())
            return own, raw, f"field {name}"
        if kind < 38:  # a required field missing
            body = valid(sensor, draw)
            del body[draw(REQUIRED_FIELD)]
            return own, orjson.dumps(body), "missing field"
        if kind < 48:  # not a detection at all
            return own, draw(NOT_A_DETECTION), "not a detection"
        if kind < 56:  # wrongly encoded
            body = orjson.dumps(valid(sensor, draw))
            enc = draw(ENCODING)
            if enc == "latin1-invalid":
                return own, body[:-1] + b',"note":"caf\xe9"}', enc
            if enc == "nul":
                return own, body[:-1] + b',"identifiers":{"a":"x\\u0000y"}}', enc
            if enc == "bom":
                return own, b"\xef\xbb\xbf" + body.replace(b'"sensor_id"', b'"sensor_id\\u0000"'), enc
            return own, body.decode().encode(enc), enc
        if kind < 60:  # hostile structure: deep nesting, huge arrays
            depth = draw(DEPTH)
            return (
                own,
                draw(st.sampled_from([b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth])),
                "nesting",
            )
        if kind < 61:  # oversized: beyond BW_MAX_PAYLOAD_BYTES (64 KiB), below the broker's packet limit
            body = valid(sensor, draw)
            body["note"] = "x" * draw(OVERSIZE)
            return own, orjson.dumps(body), "oversized"
        # hostile topics (with a valid payload or not)
        payload = orjson.dumps(valid(sensor, draw)) if draw(st.booleans()) else draw(SHORT_BINARY)
        return draw(hostile_topic), payload, "topic"

    return draw_one()


def _collect(strategy, n: int) -> list:
    out: list = []

    # derandomize: the same inputs on every run, so a red run can be replayed and the suite is stable
    @hsettings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def gather(example):
        out.append(example)

    gather()
    return out


def _digest(topic: str, payload: bytes) -> tuple[str, str]:
    return topic, hashlib.sha256(payload).hexdigest()


def test_hostile_input_ends_in_dead_letters_and_good_input_is_stored(settings, engine, make_gateway, capsys):
    gw = make_gateway()
    sensor = next(iter(gw.sensors))
    root = f"borderwatch/fuzz-{uuid.uuid4().hex[:6]}"
    bad = _collect(bad_message(root, gw, sensor), BAD_EXAMPLES)
    good = _collect(st.composite(lambda draw: valid(sensor, draw))(), GOOD_EXAMPLES)
    # Found by this test: values too small for PostgreSQL's `real` made the database refuse valid detections.
    base = {"sensor_id": sensor, "observed_at": NOW.isoformat(), "lon": 100.42, "lat": 6.63, "class": "person"}
    good += [
        {**base, "event_id": uuid.uuid4().hex, **edge}
        for edge in ({"confidence": 5e-324}, {"confidence": 1e-300, "speed_mps": 1e-310, "heading_deg": 2e-45})
    ]
    assert len(bad) >= 10_000
    # valid, but further from the camera than its range
    lon0, lat0 = gw.sensors[sensor]
    far = [b for b in good if coverage.distance_m(lon0, lat0, b["lon"], b["lat"]) > settings.sensor_range_camera_m]
    good = [b for b in good if b not in far]
    bad += [(topics.detections(root, gw.agency, gw.id, sensor), orjson.dumps(b), "outside_coverage") for b in far]
    assert len(far) >= 100 and len(good) >= 100
    stream = [(t, p, k) for t, p, k in bad] + [
        (topics.detections(root, gw.agency, gw.id, sensor), orjson.dumps(b), "good") for b in good
    ]
    # Interleave good and bad so they share batches.
    stream.sort(key=lambda m: hashlib.md5(m[1] + m[0].encode()).digest())
    gateway = faultkit.Gateway(gw.id, gw.agency, gw.password, [sensor])
    # Every hostile message is kept whole here (past a gateway's daily quota only a sample would be).
    worker = faultkit.Worker(
        unique("bw-fuzz"),
        BW_MQTT_TOPIC_ROOT=root,
        BW_INGEST_SHARE_GROUP=unique("bw-fuzz"),
        BW_DEAD_LETTER_GATEWAY_QUOTA=str(10 * BAD_EXAMPLES),
    )
    dead = lambda: scalar(engine, "SELECT count(*) FROM dead_letters WHERE starts_with(topic, :r)", r=root + "/")  # noqa: E731
    stored = lambda: scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = :s", s=sensor)  # noqa: E731
    with topic_root_on_broker(settings, engine, root, gw.id):
        publisher = None
        try:
            worker.mark()
            worker.start()
            publisher = faultkit.Publisher(settings, gateway, [(t, p, "") for t, p, _ in stream], 20_000).start()
            publisher.thread.join(120)
            wait_for(lambda: publisher.unacknowledged() == 0, timeout=60, interval=0.2)
            wait_for(lambda: dead() == len(bad) and stored() == len(good), timeout=120, interval=0.5)
            alive = worker.alive()
        finally:
            if publisher:
                publisher.close()
            worker.stop()
    with engine.connect() as conn:
        letters = conn.execute(
            text("SELECT topic, payload, reason FROM dead_letters WHERE starts_with(topic, :r)"), {"r": root + "/"}
        ).all()
        reasons = conn.execute(
            text(
                "SELECT split_part(reason, ':', 1) AS r, count(*) FROM dead_letters WHERE starts_with(topic, :r) "
                "GROUP BY 1 ORDER BY 2 DESC LIMIT 8"
            ),
            {"r": root + "/"},
        ).all()
    kinds = Counter(k for _, _, k in bad)
    with capsys.disabled():
        print(f"\n[fuzz] {len(bad)} bad + {len(good)} good messages; bad by kind: {dict(kinds)}")
        print(f"  dead letters: {len(letters)}, stored: {stored()}, worker alive: {alive}, totals: {worker.totals()}")
        print("  top reasons: " + "; ".join(f"{r} ({n})" for r, n in reasons))
    assert alive, "the worker must survive every payload"
    assert publisher.refused == 0
    assert Counter(_digest(t, bytes(p)) for t, p, _ in letters) == Counter(_digest(t, p) for t, p, _ in bad)
    assert all(r and r.strip() for _, _, r in letters)
    assert scalar(engine, "SELECT count(DISTINCT event_id) FROM detections WHERE sensor_id = :s", s=sensor) == len(good)
    assert "Traceback" not in worker.log_path.read_text().split("--- start")[-1]
