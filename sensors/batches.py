"""Micro-batches of MQTT messages, from parse to commit (no broker I/O here).

``BatchProcessor.parse`` validates each payload against the contract and the registry (bad ones
become dead letters with their reason); ``stage`` inserts the batch's new detections on a connection
of its own (a resent event id is skipped); ``finish`` runs the alert rules (alerts/rules.py), writes
the dead letters and commits. Batches finish one at a time and in order, so each sees the track
positions the one before it committed.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from alerts import geofence
from alerts.rules import Rules
from core import topics
from core.db import session_scope
from core.errors import InvalidPayload
from core.settings import Settings
from sensors import ais, coverage, frigate, service
from sensors.schemas import DetectionPayload, DetectionRow, GatewayStatus

log = logging.getLogger("borderwatch.ingest")

_REGISTRY_TTL_S = 30.0
_TOPIC_CACHE_SIZE = 20_000
# sensors.last_seen_at (what the maps show) is written at most this often, not with every batch.
_SEEN_WRITE_S = 1.0


@dataclass(slots=True)
class Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int


@dataclass
class ParsedBatch:
    messages: list[Message]
    rows: list[DetectionRow] = field(default_factory=list)
    dead: list[tuple[str, bytes, str]] = field(default_factory=list)
    statuses: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    ais: ais.AisBatch = field(default_factory=ais.AisBatch)  # AIS sentences of the batch


@dataclass
class StagedBatch:
    """A parsed batch whose detections are inserted in a transaction still open on ``session``
    (``session`` is None while the batch is not staged)."""

    parsed: ParsedBatch
    session: Session | None = None
    stored: service.StoredBatch | None = None

    def unstage(self) -> None:
        """Roll the open transaction back; the batch must then be committed from scratch."""
        session, self.session, self.stored = self.session, None, None
        if session is not None:
            try:
                session.rollback()
            finally:
                session.close()


@dataclass(slots=True)
class Ahead:
    """A batch being stored ahead of the one that commits, and the events (sensor, event id) it carries."""

    future: Future[StagedBatch]
    keys: set[tuple[str, str]]


@dataclass
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    dead: int = 0
    alerts: list[dict] = field(default_factory=list)


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:4]:
        loc = ".".join(str(x) for x in err["loc"]) or "payload"
        parts.append(f"{loc}: {err['msg']}")
    return "invalid detection: " + "; ".join(parts)


class Registry:
    """A short-lived cache of the sensor registry, refreshed on a miss and every 30 s."""

    def __init__(self) -> None:
        self._sensors: dict[str, service.RegisteredSensor] = {}
        self._gateways: dict[str, str] = {}
        self._unknown: set[str] = set()
        self._loaded_at = 0.0

    def refresh(self, session) -> None:
        self._sensors = service.sensors_by_id(session=session)
        self._gateways = service.gateway_agencies(session=session)
        self._loaded_at = time.monotonic()

    def prepare(self, engine: Engine, sensor_ids: set[str], gateway_ids: set[str]) -> None:
        """Reload when stale, or when a batch names an id not seen since the last reload
        (an unknown id does not force a reload on every batch: it waits for the next one)."""
        now = time.monotonic()
        if now - self._loaded_at > _REGISTRY_TTL_S:
            self._unknown.clear()
        unseen = (sensor_ids - self._sensors.keys()) | {f"gw:{g}" for g in gateway_ids - self._gateways.keys()}
        if now - self._loaded_at > _REGISTRY_TTL_S or unseen - self._unknown:
            with session_scope(engine) as session:
                self.refresh(session)
            self._unknown |= unseen

    def sensor(self, sensor_id: str) -> service.RegisteredSensor | None:
        return self._sensors.get(sensor_id)

    def gateway_agency(self, gateway_id: str) -> str | None:
        return self._gateways.get(gateway_id)


class BatchProcessor:
    """Turns a list of MQTT messages into one committed transaction (no broker I/O here)."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.registry = Registry()
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self._topics: dict[str, topics.Topic | str] = {}  # topic -> its parts, or why it is refused
        self.rules = Rules(settings)  # geofence, track rules, watch-lists, sensor health
        self.frigate_zones = frigate.FrigateZones()
        # Each sensor's newest detection committed but not yet written to sensors.last_seen_at.
        self._seen: dict[str, datetime] = {}
        self._seen_written_at = 0.0

    def parse_ais(
        self, batch_ais: ais.AisBatch, *, topic: topics.Topic, message_topic: str, payload: bytes, now: datetime
    ) -> None:
        """Check an AIS message's topic against the registry and decode it into ``batch_ais``."""
        sensor = self.registry.sensor(topic.sensor)
        if sensor is None:
            raise InvalidPayload(f"sensor {topic.sensor!r} is not registered")
        if sensor.gateway_id != topic.gateway:
            raise InvalidPayload(
                f"sensor {topic.sensor!r} belongs to gateway {sensor.gateway_id!r}, not {topic.gateway!r}"
            )
        if sensor.agency_code != topic.agency:
            raise InvalidPayload(
                f"sensor {topic.sensor!r} belongs to agency {sensor.agency_code!r}, not {topic.agency!r}"
            )
        ais.add_message(
            batch_ais,
            topic=message_topic,
            payload=payload,
            sensor_id=sensor.id,
            agency_code=sensor.agency_code,
            now=now,
            settings=self.settings,
        )

    def parse_detection(self, topic: topics.Topic, payload: bytes, window: tuple[datetime, datetime]) -> DetectionRow:
        """One detection payload checked against the contract and the registry; ``window`` is the
        (oldest, newest) observation time accepted."""
        if len(payload) > self.settings.max_payload_bytes:
            raise InvalidPayload(
                f"payload of {len(payload)} bytes exceeds the limit of {self.settings.max_payload_bytes} bytes"
            )
        if b"\\u0000" in payload:
            raise InvalidPayload("payload contains a NUL character (\\u0000), which cannot be stored")
        try:
            raw = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidPayload(f"payload is not valid UTF-8: {exc.reason} at byte {exc.start}") from exc
        try:
            det = DetectionPayload.model_validate_json(raw)
        except ValidationError as exc:
            raise InvalidPayload(_reason(exc)) from exc
        if det.sensor_id != topic.sensor:
            raise InvalidPayload(f"payload sensor_id {det.sensor_id!r} does not match topic sensor {topic.sensor!r}")
        sensor = self.registry.sensor(topic.sensor)
        if sensor is None:
            raise InvalidPayload(f"sensor {topic.sensor!r} is not registered")
        if sensor.gateway_id != topic.gateway:
            raise InvalidPayload(
                f"sensor {topic.sensor!r} belongs to gateway {sensor.gateway_id!r}, not {topic.gateway!r}"
            )
        if sensor.agency_code != topic.agency:
            raise InvalidPayload(
                f"sensor {topic.sensor!r} belongs to agency {sensor.agency_code!r}, not {topic.agency!r}"
            )
        oldest, newest = window
        if det.observed_at > newest:
            raise InvalidPayload(f"observed_at {det.observed_at.isoformat()} is in the future")
        if det.observed_at < oldest:
            raise InvalidPayload(
                f"observed_at {det.observed_at.isoformat()} is older than {self.settings.max_detection_age_days} days"
            )
        return {
            "sensor_id": det.sensor_id,
            "agency_code": sensor.agency_code,
            "event_id": det.event_id,
            "observed_at": det.observed_at,
            "lon": det.lon,
            "lat": det.lat,
            "class": det.object_class,
            "confidence": det.confidence,
            "track_id": det.track_id,
            "track_key": det.track_key(),
            "speed_mps": det.speed_mps,
            "heading_deg": det.heading_deg,
            "identifiers": det.identifiers,
            "raw": raw,
        }

    def parse_frigate(
        self, topic: topics.Topic, payload: bytes, window: tuple[datetime, datetime]
    ) -> list[DetectionRow]:
        """A Frigate camera event relayed by the camera's gateway (sensors/frigate.py)."""
        sensor = self.registry.sensor(topic.sensor)
        if sensor is None or sensor.gateway_id != topic.gateway or sensor.agency_code != topic.agency:
            raise InvalidPayload(
                f"sensor {topic.sensor!r} is not registered to gateway {topic.gateway!r} of {topic.agency!r}"
            )
        self.frigate_zones.prepare(self.engine, {sensor.id})
        return frigate.parse_event(
            payload, sensor=sensor, zones=self.frigate_zones, window=window, max_bytes=self.settings.max_payload_bytes
        )

    def parse_status(self, topic: topics.Topic, payload: bytes) -> tuple[str, datetime]:
        if self.registry.gateway_agency(topic.gateway) != topic.agency:
            raise InvalidPayload(f"gateway {topic.gateway!r} is not registered for agency {topic.agency!r}")
        text_payload = payload.decode("utf-8", errors="replace").strip()
        if text_payload in ("online", "offline"):
            return text_payload, datetime.now(timezone.utc)
        try:
            status = GatewayStatus.model_validate_json(payload)
        except ValidationError as exc:
            raise InvalidPayload(_reason(exc).replace("detection", "status")) from exc
        return status.status, status.at or datetime.now(timezone.utc)

    def outside_coverage(self, sensor_id: str, lon: float | None, lat: float | None) -> str | None:
        """Why a position is further from the sensor than its range (sensors/coverage.py), or None."""
        sensor = self.registry.sensor(sensor_id)
        return None if sensor is None else coverage.outside(sensor, lon, lat, self.settings)

    def covered(self, rows: list[DetectionRow]) -> list[DetectionRow]:
        """A message's detections, refused whole if one of them lies outside its sensor's coverage."""
        for row in rows:
            why = self.outside_coverage(row["sensor_id"], row["lon"], row["lat"])
            if why:
                raise InvalidPayload(why)
        return rows

    def parse(self, messages: list[Message]) -> ParsedBatch:
        """Validate a batch against the contract and the registry (no transaction is opened)."""
        root = self.settings.mqtt_topic_root
        now = datetime.now(timezone.utc)
        window = (
            now - timedelta(days=self.settings.max_detection_age_days),
            now + timedelta(seconds=self.settings.max_clock_skew_s),
        )
        batch = ParsedBatch(messages)
        split: list[tuple[Message, topics.Topic | None, str | None]] = []
        known = self._topics
        if len(known) > _TOPIC_CACHE_SIZE:
            known.clear()
        for msg in messages:
            # A gateway publishes on the same few topics over and over: split each one once.
            parsed = known.get(msg.topic)
            if parsed is None:
                try:
                    parsed = topics.parse(root, msg.topic)
                except InvalidPayload as exc:
                    parsed = exc.message
                known[msg.topic] = parsed
            if isinstance(parsed, str):
                split.append((msg, None, parsed))
            else:
                split.append((msg, parsed, None))
        self.registry.prepare(
            self.engine,
            {t.sensor for _, t, _ in split if t and t.sensor},
            {t.gateway for _, t, _ in split if t},
        )
        batch.ais.coverage = self.outside_coverage
        for msg, topic, error in split:
            try:
                if error:
                    raise InvalidPayload(error)
                if topic.kind == "detections":
                    batch.rows += self.covered([self.parse_detection(topic, msg.payload, window)])
                elif topic.kind == "frigate":
                    batch.rows += self.covered(self.parse_frigate(topic, msg.payload, window))
                elif topic.kind == "ais":
                    self.parse_ais(batch.ais, topic=topic, message_topic=msg.topic, payload=msg.payload, now=now)
                else:
                    batch.statuses[topic.gateway] = self.parse_status(topic, msg.payload)
            except InvalidPayload as exc:
                batch.dead.append((msg.topic, msg.payload, exc.message))
        ais.finish(batch.ais)
        batch.rows += batch.ais.rows
        batch.dead += batch.ais.dead
        return batch

    def stage(self, batch: ParsedBatch) -> StagedBatch:
        """Open the batch's transaction and insert its detections; raises on database failure.

        Stored detections touch only rows of their own, so this may run while the batches before
        are still being stored, geofenced and committed on other connections (an event resent in
        two of them makes the later one wait for the earlier's commit, which comes first)."""
        session = self._sessions()
        try:
            stored = service.store_detections(session=session, rows=batch.rows)
        except BaseException:
            session.rollback()
            session.close()
            raise
        return StagedBatch(batch, session, stored)

    def try_stage(self, batch: ParsedBatch) -> StagedBatch:
        """``stage``, or the batch left unstaged if the database refused (the commit step retries it)."""
        try:
            return self.stage(batch)
        except (OperationalError, DBAPIError) as exc:
            log.debug("storing ahead failed (%s); the batch is retried in order", exc.__class__.__name__)
            return StagedBatch(batch)

    def finish(self, staged: StagedBatch) -> BatchResult:
        """Geofence, dead-letter and commit a staged batch; rolls back and raises on database failure.

        Batches finish one at a time and in order, so each sees the track positions the one
        before it committed."""
        batch, session = staged.parsed, staged.session
        assert session is not None and staged.stored is not None
        result = BatchResult()
        try:
            # Multi-part AIS messages completed by this batch, vessel static data: here, in order,
            # because the earlier parts are rows that the batch before committed.
            assembled = ais.store(session=session, batch=batch.ais, settings=self.settings)
            stored = staged.stored
            if assembled.rows:
                stored = service.store_detections(session=session, rows=assembled.rows, into=stored)
            rows, dead = batch.rows + assembled.rows, batch.dead + assembled.dead
            # Other workers of the share group may hold fixes of the same tracks: wait for their
            # batches to commit. A worker without a share group is the only one (its plain
            # subscription would give a second worker every message too), so it needs no locks.
            if self.settings.ingest_share_group:
                geofence.lock_tracks(
                    session=session,
                    track_keys=(f"{r['agency_code']}|{r['track_key']}" for r in rows if r["track_key"]),
                )
            # crossings and zone entries, watch-lists, dark vessels, AIS gaps, rendezvous, loitering,
            # sensor health
            result.alerts = self.rules.run(
                session=session,
                batch=stored.batch if stored.count else None,
                rows=rows,
                heard_sensors=batch.ais.sensors,
                statuses=batch.statuses,
            )
            seen = service.newest_per_sensor(rows, into=self._seen)
            seen_due = time.monotonic() - self._seen_written_at >= _SEEN_WRITE_S
            if seen_due:
                service.mark_sensors_seen(session=session, newest=seen)
            service.record_dead_letters(session=session, letters=dead)
            service.set_gateway_status(session=session, statuses=batch.statuses)
            session.commit()
        except BaseException:
            staged.unstage()
            raise
        if seen_due:
            self._seen, self._seen_written_at = {}, time.monotonic()
        else:
            self._seen = seen
        session.close()
        staged.session = None
        result.stored, result.duplicates = stored.count, len(rows) - stored.count
        result.dead = len(dead)
        return result

    def commit(self, batch: ParsedBatch) -> BatchResult:
        """Store, geofence and dead-letter a parsed batch in one transaction; raises on database failure."""
        return self.finish(self.stage(batch))

    def process(self, messages: list[Message]) -> BatchResult:
        return self.commit(self.parse(messages))

    def write_seen(self) -> None:
        """Write what ``finish`` held back of sensors.last_seen_at (when the stream pauses or stops)."""
        if self._seen:
            with session_scope(self.engine) as session:
                service.mark_sensors_seen(session=session, newest=self._seen)
            self._seen, self._seen_written_at = {}, time.monotonic()

    def ensure_partitions(self) -> None:
        with session_scope(self.engine) as session:
            session.execute(text("SELECT bw_ensure_detection_partitions(current_date - 40, 4)"))
