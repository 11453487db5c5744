"""Gateways, sensors and their health, detections, vessels' AIS static data and fragments, dead letters."""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, REAL
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base

SENSOR_KINDS = ("camera", "ground_sensor", "radar", "anpr", "ais_receiver", "other")
DETECTION_CLASSES = ("person", "vehicle", "boat", "vessel", "aircraft", "animal", "unknown")


class Gateway(Base):
    """A sensor gateway: one MQTT identity that publishes for its sensors."""

    __tablename__ = "gateways"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    # Mosquitto password-file hash ($7$: PBKDF2-SHA512); the clear password is shown once.
    mqtt_password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="unknown")
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint("id ~ '^[a-z0-9][a-z0-9_-]{1,63}$'", name="gateway_id_format"),)


class Sensor(Base):
    __tablename__ = "sensors"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False, index=True)
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=True), nullable=False)
    coverage = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True))
    # How far from ``location`` it sees, in metres (None: ``BW_SENSOR_RANGE_<KIND>_M``); a detection
    # placed further away is refused (dead letter ``outside_coverage``).
    range_m: Mapped[float | None] = mapped_column(Float)
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"kind IN {SENSOR_KINDS!r}", name="sensor_kind_known"),
        CheckConstraint("id ~ '^[a-z0-9][a-z0-9_-]{1,63}$'", name="sensor_id_format"),
        CheckConstraint("range_m > 0", name="sensor_range_positive"),
    )


class Detection(Base):
    """One observation by one sensor; the table is partitioned by month of ``observed_at``."""

    __tablename__ = "detections"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False))
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    sensor_id: Mapped[str] = mapped_column(String(64), nullable=False)
    agency_code: Mapped[str] = mapped_column(String(32), nullable=False)
    event_id: Mapped[str] = mapped_column(String(128), nullable=False)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    # "payload" when the gateway gave a position, "sensor" when the sensor's own location was used.
    located_by: Mapped[str] = mapped_column(String(8), nullable=False)
    object_class: Mapped[str] = mapped_column("class", String(16), nullable=False)
    confidence: Mapped[float] = mapped_column(REAL, nullable=False)
    track_id: Mapped[str | None] = mapped_column(String(128))
    track_key: Mapped[str | None] = mapped_column(String(200))
    speed_mps: Mapped[float | None] = mapped_column(REAL)
    heading_deg: Mapped[float | None] = mapped_column(REAL)
    identifiers: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
    # The payload exactly as received (json keeps its text; jsonb would rebuild it).
    raw: Mapped[dict] = mapped_column(JSON, nullable=False)

    __table_args__ = (
        PrimaryKeyConstraint("id", "observed_at"),
        Index("ix_detections_geom", "geom", postgresql_using="gist"),
        Index("ix_detections_observed_brin", "observed_at", postgresql_using="brin"),
        Index("ix_detections_sensor_observed", "sensor_id", "observed_at"),
        Index("ix_detections_agency_observed", "agency_code", "observed_at"),
        Index("ix_detections_track_observed", "track_key", "observed_at"),
        {"postgresql_partition_by": "RANGE (observed_at)"},
    )


class DetectionKey(Base):
    """Makes (sensor, event id) unique across all partitions: a resent event is stored once."""

    __tablename__ = "detection_keys"

    sensor_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)


class IngestSubscription(Base):
    """A topic filter an ingest worker's persistent broker session holds (see sensors.ingest)."""

    __tablename__ = "ingest_subscriptions"

    client_id: Mapped[str] = mapped_column(Text, primary_key=True)
    topic_filter: Mapped[str] = mapped_column(Text, primary_key=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class DeadLetter(Base):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    topic: Mapped[str] = mapped_column(Text, nullable=False)
    payload: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    payload_size: Mapped[int] = mapped_column(nullable=False)

    __table_args__ = (Index("ix_dead_letters_received_at", "received_at"),)


class DeadLetterCount(Base):
    """Every dead letter of a gateway on one day (UTC), kept whole or not (``record_dead_letters``)."""

    __tablename__ = "dead_letter_counts"

    gateway_id: Mapped[str] = mapped_column(Text, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    received: Mapped[int] = mapped_column(BigInteger, nullable=False)
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Vessel(Base):
    """Static and voyage data a vessel broadcasts (AIS types 5, 19 and 24), keyed by MMSI."""

    __tablename__ = "vessels"

    mmsi: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    imo: Mapped[int | None] = mapped_column(BigInteger, index=True)
    name: Mapped[str | None] = mapped_column(Text)
    call_sign: Mapped[str | None] = mapped_column(Text)
    ship_type: Mapped[int | None] = mapped_column(Integer)
    ship_type_name: Mapped[str | None] = mapped_column(Text)
    # ISO 3166 alpha-2 from the MMSI's maritime identification digits, where known.
    flag: Mapped[str | None] = mapped_column(String(2))
    destination: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AisFragment(Base):
    """One part of a multi-part AIS message whose other parts have not arrived yet."""

    __tablename__ = "ais_fragments"

    sensor_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(2))
    seq_id: Mapped[int] = mapped_column(Integer)
    frag_cnt: Mapped[int] = mapped_column(Integer)
    frag_num: Mapped[int] = mapped_column(Integer)
    sentence: Mapped[str] = mapped_column(Text, nullable=False)
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    topic: Mapped[str] = mapped_column(Text, nullable=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)

    __table_args__ = (
        PrimaryKeyConstraint("sensor_id", "channel", "seq_id", "frag_cnt", "frag_num"),
        Index("ix_ais_fragments_received_at", "received_at"),
    )


class SensorHealth(Base):
    """Whether a sensor is heard of, and since when; an alert is raised on each change only."""

    __tablename__ = "sensor_health"

    sensor_id: Mapped[str] = mapped_column(ForeignKey("sensors.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(8), nullable=False)
    last_heard_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (CheckConstraint("state IN ('online', 'offline')", name="sensor_health_state_known"),)
