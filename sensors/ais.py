"""AIS over MQTT: raw NMEA sentences (``!AIVDM``/``!AIVDO``) decoded with pyais.

A gateway publishes one or more sentences per message on ``.../{sensor}/ais``, optionally with
an NMEA 4 tag block whose ``c:`` field (UNIX time) says when the receiver heard them; without
it the time of arrival is used. Multi-part messages are assembled within a batch and, when
their parts arrive in different batches, through the ``ais_fragments`` table (parts older than
``ais_fragment_ttl_s`` are dropped). Position reports (types 1, 2, 3, 18, 19) become detections
of class ``vessel`` with the MMSI as track id; static and voyage data (types 5, 19, 24) update
the ``vessels`` table. Sentences that do not decode become dead letters with the reason.
Other message types (base stations, aids to navigation, binary messages) are not used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import orjson
from pyais import decode
from pyais.exceptions import AISBaseException
from pyais.messages import AISSentence, NMEASentenceFactory
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.errors import InvalidPayload
from core.settings import Settings
from sensors.schemas import DetectionRow

POSITION_TYPES = {1, 2, 3, 18, 19}
STATIC_TYPES = {5, 19, 24}
KNOT_MPS = 0.514444
MAX_LINES = 64

# Maritime identification digits (first three digits of a ship's MMSI) of the region's flags.
MID_FLAGS = {
    "506": "MM",
    "508": "BN",
    "514": "KH",
    "515": "KH",
    "525": "ID",
    "531": "LA",
    "533": "MY",
    "548": "PH",
    "563": "SG",
    "564": "SG",
    "565": "SG",
    "566": "SG",
    "567": "TH",
    "574": "VN",
    "576": "VU",
    "412": "CN",
    "413": "CN",
    "414": "CN",
    "416": "TW",
    "431": "JP",
    "440": "KR",
    "477": "HK",
    "503": "AU",
    "419": "IN",
    "538": "MH",
    "636": "LR",
    "351": "PA",
    "352": "PA",
    "353": "PA",
    "354": "PA",
    "355": "PA",
    "356": "PA",
    "357": "PA",
    "370": "PA",
    "371": "PA",
    "372": "PA",
    "373": "PA",
    "374": "PA",
}


@dataclass
class Sentence:
    line: bytes
    topic: str
    sensor_id: str
    agency_code: str
    observed_at: datetime
    nmea: AISSentence


@dataclass
class AisBatch:
    """What the parse stage found in a batch's AIS messages."""

    rows: list[DetectionRow] = field(default_factory=list)
    statics: dict[int, dict] = field(default_factory=dict)
    dead: list[tuple[str, bytes, str]] = field(default_factory=list)
    # parts of multi-part messages whose other parts were not in this batch
    fragments: list[dict] = field(default_factory=list)
    sensors: set[str] = field(default_factory=set)
    # why a position report (sensor, lon, lat) is outside its receiver's coverage, None if within
    coverage: Callable[[str, float, float], str | None] | None = None
    _groups: dict[tuple, dict[int, Sentence]] = field(default_factory=dict)


def flag_of(mmsi: int) -> str | None:
    digits = str(mmsi)
    return MID_FLAGS.get(digits[:3]) if len(digits) == 9 else None


def _observed_at(nmea: AISSentence, now: datetime, settings: Settings) -> datetime:
    tag = nmea.tag_block
    if tag is None:
        return now
    tag.init()
    stamp = tag.receiver_timestamp
    if not stamp:
        return now
    try:
        seconds = float(stamp)
    except ValueError as exc:
        raise InvalidPayload(f"tag block time c:{stamp!r} is not a UNIX time") from exc
    if seconds > 1e11:  # some receivers give milliseconds
        seconds /= 1000
    at = datetime.fromtimestamp(seconds, tz=timezone.utc)
    if at > now + timedelta(seconds=settings.max_clock_skew_s):
        raise InvalidPayload(f"tag block time {at.isoformat()} is in the future")
    if at < now - timedelta(days=settings.max_detection_age_days):
        raise InvalidPayload(f"tag block time {at.isoformat()} is older than {settings.max_detection_age_days} days")
    return at


def read_sentence(
    line: bytes, *, topic: str, sensor_id: str, agency_code: str, now: datetime, settings: Settings
) -> Sentence:
    """One NMEA line, checked (format, checksum, time); raises ``InvalidPayload`` with the reason."""
    try:
        nmea = NMEASentenceFactory.produce(line)
    except AISBaseException as exc:
        raise InvalidPayload(f"undecodable NMEA sentence: {exc.__class__.__name__}: {str(exc)[:200]}") from exc
    except (ValueError, IndexError, TypeError) as exc:
        raise InvalidPayload(f"undecodable NMEA sentence: {exc}") from exc
    if not isinstance(nmea, AISSentence):
        raise InvalidPayload("not an AIS sentence (expected !AIVDM or !AIVDO)")
    if not nmea.is_valid:
        raise InvalidPayload(f"NMEA checksum mismatch (sentence says {nmea.checksum:02X})")
    return Sentence(line, topic, sensor_id, agency_code, _observed_at(nmea, now, settings), nmea)


def add_message(
    batch: AisBatch, *, topic: str, payload: bytes, sensor_id: str, agency_code: str, now: datetime, settings: Settings
) -> None:
    """Split one MQTT message into sentences: single-part ones are decoded at once, parts of
    multi-part messages wait for ``finish``. Bad lines become dead letters one by one."""
    if len(payload) > settings.max_payload_bytes:
        batch.dead.append(
            (topic, payload, f"payload of {len(payload)} bytes exceeds the limit of {settings.max_payload_bytes} bytes")
        )
        return
    lines = [ln.strip() for ln in payload.splitlines() if ln.strip()]
    if not lines:
        batch.dead.append((topic, payload, "empty AIS message: expected NMEA sentences"))
        return
    if len(lines) > MAX_LINES:
        batch.dead.append((topic, payload, f"{len(lines)} sentences in one message (at most {MAX_LINES})"))
        return
    batch.sensors.add(sensor_id)
    for line in lines:
        try:
            sentence = read_sentence(
                line, topic=topic, sensor_id=sensor_id, agency_code=agency_code, now=now, settings=settings
            )
        except InvalidPayload as exc:
            batch.dead.append((topic, line, exc.message))
            continue
        nmea = sentence.nmea
        if nmea.frag_cnt == 1:
            _decode_into(batch, [sentence])
        else:
            key = (sensor_id, nmea.channel or "", nmea.seq_id if nmea.seq_id is not None else -1, nmea.frag_cnt)
            batch._groups.setdefault(key, {})[nmea.frag_num] = sentence


def finish(batch: AisBatch) -> None:
    """Decode the multi-part messages complete within the batch; keep the rest as fragments."""
    for (sensor_id, channel, seq_id, frag_cnt), parts in batch._groups.items():
        if len(parts) == frag_cnt:
            _decode_into(batch, [parts[i] for i in sorted(parts)])
            continue
        for num, s in parts.items():
            batch.fragments.append(
                {
                    "sensor_id": sensor_id,
                    "channel": channel,
                    "seq_id": seq_id,
                    "frag_cnt": frag_cnt,
                    "frag_num": num,
                    "sentence": s.line.decode("ascii"),
                    "observed_at": s.observed_at,
                    "topic": s.topic,
                    "agency_code": s.agency_code,
                }
            )
    batch._groups.clear()


def _decode_into(batch: AisBatch, parts: list[Sentence]) -> None:
    first = parts[0]
    lines = [p.line for p in parts]
    try:
        msg = decode(*lines)
    except (AISBaseException, ValueError, IndexError, TypeError, KeyError) as exc:
        batch.dead.append(
            (first.topic, b"\n".join(lines), f"undecodable AIS message: {exc.__class__.__name__}: {str(exc)[:200]}")
        )
        return
    fields = msg.asdict(enum_as_int=True)
    msg_type = fields.get("msg_type")
    mmsi = fields.get("mmsi")
    if not isinstance(mmsi, int) or not 0 < mmsi < 1_000_000_000:
        batch.dead.append((first.topic, b"\n".join(lines), f"AIS message without a valid MMSI ({mmsi!r})"))
        return
    if msg_type in STATIC_TYPES:
        _merge_static(batch, mmsi, msg_type, fields)
    if msg_type in POSITION_TYPES:
        row = _position_row(first, lines, mmsi, fields)
        why = row and batch.coverage and batch.coverage(row["sensor_id"], row["lon"], row["lat"])
        if why:
            batch.dead.append((first.topic, b"\n".join(lines), why))
        elif row is not None:
            batch.rows.append(row)


def _clean(value) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.replace("@", " ").strip()
    return value or None


def _merge_static(batch: AisBatch, mmsi: int, msg_type: int, fields: dict) -> None:
    record = batch.statics.setdefault(mmsi, {"mmsi": mmsi, "flag": flag_of(mmsi)})
    name = _clean(fields.get("shipname"))
    if name:
        record["name"] = name
    call_sign = _clean(fields.get("callsign"))
    if call_sign:
        record["call_sign"] = call_sign
    imo = fields.get("imo")
    if isinstance(imo, int) and 1_000_000 <= imo <= 9_999_999:
        record["imo"] = imo
    ship_type = fields.get("ship_type")
    if isinstance(ship_type, int) and ship_type > 0:
        record["ship_type"] = ship_type
        try:
            from pyais.constants import ShipType

            record["ship_type_name"] = ShipType(ship_type).name
        except ValueError:
            pass
    destination = _clean(fields.get("destination"))
    if destination:
        record["destination"] = destination


def _position_row(first: Sentence, lines: list[bytes], mmsi: int, fields: dict) -> DetectionRow | None:
    lon, lat = fields.get("lon"), fields.get("lat")
    # 181 / 91 mean "not available": such a report carries no position to store.
    if lon is None or lat is None or not (-180 <= lon <= 180 and -90 <= lat <= 90):
        return None
    speed = fields.get("speed")
    course = fields.get("course")
    raw_lines = [ln.decode("ascii") for ln in lines]
    body = {"nmea": raw_lines, "ais": {k: v for k, v in fields.items() if isinstance(v, (int, float, str, bool))}}
    return {
        "sensor_id": first.sensor_id,
        "agency_code": first.agency_code,
        # The sentences themselves identify the report: a redelivered message is stored once.
        "event_id": "ais-" + hashlib.sha1(b"\n".join(lines)).hexdigest()[:32],
        "observed_at": first.observed_at,
        "lon": float(lon),
        "lat": float(lat),
        "class": "vessel",
        "confidence": 1.0,
        "track_id": str(mmsi),
        "track_key": f"mmsi:{mmsi}",
        "speed_mps": round(speed * KNOT_MPS, 3) if isinstance(speed, (int, float)) and speed < 102.2 else None,
        "heading_deg": float(course) if isinstance(course, (int, float)) and 0 <= course < 360 else None,
        "identifiers": {"mmsi": str(mmsi), "ais_type": str(fields.get("msg_type"))},
        "raw": orjson.dumps(body).decode(),
    }


# -- the commit stage ------------------------------------------------------------------------

_STORE_FRAGMENTS = text(
    """
    WITH expired AS (
        DELETE FROM ais_fragments WHERE received_at < now() - make_interval(secs => :ttl_s)
    )
    INSERT INTO ais_fragments (sensor_id, channel, seq_id, frag_cnt, frag_num, sentence, observed_at, topic)
    SELECT sensor_id, channel, seq_id, frag_cnt, frag_num, sentence, observed_at, topic
    FROM json_to_recordset(CAST(:fragments AS json)) AS f(
        sensor_id text, channel text, seq_id int, frag_cnt int, frag_num int, sentence text,
        observed_at timestamptz, topic text)
    ON CONFLICT (sensor_id, channel, seq_id, frag_cnt, frag_num) DO UPDATE
        SET sentence = EXCLUDED.sentence, observed_at = EXCLUDED.observed_at, topic = EXCLUDED.topic,
            received_at = now()
    """
)

_TAKE_COMPLETE = text(
    """
    DELETE FROM ais_fragments f
    USING (
        SELECT a.sensor_id, a.channel, a.seq_id, a.frag_cnt
        FROM ais_fragments a
        JOIN (SELECT DISTINCT sensor_id, channel, seq_id, frag_cnt
              FROM json_to_recordset(CAST(:fragments AS json))
                   AS k(sensor_id text, channel text, seq_id int, frag_cnt int)) k
          USING (sensor_id, channel, seq_id, frag_cnt)
        GROUP BY a.sensor_id, a.channel, a.seq_id, a.frag_cnt
        HAVING count(DISTINCT a.frag_num) = a.frag_cnt
    ) g
    WHERE f.sensor_id = g.sensor_id AND f.channel = g.channel AND f.seq_id = g.seq_id AND f.frag_cnt = g.frag_cnt
    RETURNING f.sensor_id, f.channel, f.seq_id, f.frag_cnt, f.frag_num, f.sentence, f.observed_at, f.topic
    """
)

_UPSERT_VESSELS = text(
    """
    INSERT INTO vessels (mmsi, imo, name, call_sign, ship_type, ship_type_name, flag, destination, updated_at)
    SELECT mmsi, imo, name, call_sign, ship_type, ship_type_name, flag, destination, now()
    FROM json_to_recordset(CAST(:vessels AS json)) AS v(
        mmsi bigint, imo bigint, name text, call_sign text, ship_type int, ship_type_name text, flag text,
        destination text)
    ON CONFLICT (mmsi) DO UPDATE SET
        imo = coalesce(EXCLUDED.imo, vessels.imo),
        name = coalesce(EXCLUDED.name, vessels.name),
        call_sign = coalesce(EXCLUDED.call_sign, vessels.call_sign),
        ship_type = coalesce(EXCLUDED.ship_type, vessels.ship_type),
        ship_type_name = coalesce(EXCLUDED.ship_type_name, vessels.ship_type_name),
        flag = coalesce(EXCLUDED.flag, vessels.flag),
        destination = coalesce(EXCLUDED.destination, vessels.destination),
        updated_at = now()
    """
)


def expire_fragments(*, session: Session, settings: Settings) -> int:
    """Drop parts of multi-part messages whose other parts did not come within the TTL."""
    return session.execute(
        text("DELETE FROM ais_fragments WHERE received_at < now() - make_interval(secs => :ttl_s)"),
        {"ttl_s": settings.ais_fragment_ttl_s},
    ).rowcount


@dataclass
class Assembled:
    """Detections, vessel data and dead letters from fragments completed in this transaction."""

    rows: list[DetectionRow] = field(default_factory=list)
    dead: list[tuple[str, bytes, str]] = field(default_factory=list)


def store(*, session: Session, batch: AisBatch, settings: Settings) -> Assembled:
    """Keep the batch's waiting fragments, take the multi-part messages they complete (with
    parts from earlier batches), decode those, and write all vessel static data of the batch."""
    out = AisBatch(coverage=batch.coverage)
    if batch.fragments:
        fragments_json = orjson.dumps(batch.fragments).decode()
        session.execute(_STORE_FRAGMENTS, {"fragments": fragments_json, "ttl_s": settings.ais_fragment_ttl_s})
        agencies = {(f["sensor_id"]): f["agency_code"] for f in batch.fragments}
        groups: dict[tuple, list] = {}
        for r in session.execute(_TAKE_COMPLETE, {"fragments": fragments_json}).mappings():
            groups.setdefault((r["sensor_id"], r["channel"], r["seq_id"], r["frag_cnt"]), []).append(r)
        for (sensor_id, _, _, _), parts in groups.items():
            parts.sort(key=lambda r: r["frag_num"])
            sentences = []
            for r in parts:
                line = r["sentence"].encode("ascii")
                sentences.append(
                    Sentence(
                        line,
                        r["topic"],
                        sensor_id,
                        agencies[sensor_id],
                        r["observed_at"],
                        NMEASentenceFactory.produce(line),
                    )
                )
            _decode_into(out, sentences)
    statics = dict(batch.statics)
    for mmsi, record in out.statics.items():
        statics[mmsi] = {**statics.get(mmsi, {}), **record}
    if statics:
        session.execute(_UPSERT_VESSELS, {"vessels": orjson.dumps(list(statics.values())).decode()})
    return Assembled(out.rows, out.dead)
