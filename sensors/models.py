"""Gateways, sensors, detections, track positions, alerts and dead letters."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    JSON,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, REAL
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base

SENSOR_KINDS = ("camera", "ground_sensor", "radar", "anpr", "ais_receiver", "other")
DETECTION_CLASSES = ("person", "vehicle", "boat", "vessel", "aircraft", "animal", "unknown")
ALERT_KINDS = (
    "crossing", "zone_entry",
    # maritime and track analytics
    "watchlist_hit", "dark_vessel", "ais_gap", "rendezvous", "loitering", "sensor_offline", "sensor_online",
)
SEVERITIES = ("info", "low", "medium", "high", "critical")


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
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"kind IN {SENSOR_KINDS!r}", name="sensor_kind_known"),
        CheckConstraint("id ~ '^[a-z0-9][a-z0-9_-]{1,63}$'", name="sensor_id_format"),
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


class TrackPosition(Base):
    """The last known position of each tracked object (rewritten by every fix: few indexes)."""

    __tablename__ = "track_positions"

    track_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    agency_code: Mapped[str] = mapped_column(String(32), nullable=False)
    sensor_id: Mapped[str] = mapped_column(String(64), nullable=False)
    detection_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    object_class: Mapped[str] = mapped_column("class", String(16), nullable=False)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    # the zones this position is in (a zone entry is a new position in a zone not listed here)
    zone_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer), nullable=False, server_default="{}")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        # the rendezvous rule searches vessels' positions; other tracks need no spatial index
        Index("ix_track_positions_vessel_geom", "geom", postgresql_using="gist",
              postgresql_where=text("class IN ('boat', 'vessel')")),
        {"postgresql_with": {"fillfactor": 70}},
    )


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    agency_code: Mapped[str] = mapped_column(String(32), nullable=False)
    kind: Mapped[str] = mapped_column(String(24), nullable=False)
    severity: Mapped[str] = mapped_column(String(8), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="open")
    title: Mapped[str] = mapped_column(Text, nullable=False)
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    sensor_id: Mapped[str] = mapped_column(String(64), nullable=False)
    track_key: Mapped[str | None] = mapped_column(String(200))
    object_class: Mapped[str] = mapped_column("class", String(16), nullable=False)
    # The detection that fired the rule, and for a crossing the one before it on the track.
    detection_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    detection_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), nullable=False)
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("border_segments.id", ondelete="SET NULL"))
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id", ondelete="SET NULL"))
    from_state: Mapped[str | None] = mapped_column(String(2))
    to_state: Mapped[str | None] = mapped_column(String(2))
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=True), nullable=False)
    details: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")

    __table_args__ = (
        CheckConstraint(f"kind IN {ALERT_KINDS!r}", name="alert_kind_known"),
        CheckConstraint(f"severity IN {SEVERITIES!r}", name="alert_severity_known"),
        Index("ix_alerts_agency_observed", "agency_code", "observed_at"),
        Index(
            "uq_alerts_rule_detection",
            "kind",
            "detection_id",
            func.coalesce(segment_id, 0),
            func.coalesce(zone_id, 0),
            unique=True,
            postgresql_where=detection_id > 0,
        ),
    )


class AlertCooldown(Base):
    """When a track last raised an alert on a segment or zone; guards against alert storms."""

    __tablename__ = "alert_cooldowns"

    # The agency, then the track (or the untracked sensor and class): "TH-RTP|cam-1:t7".
    track_key: Mapped[str] = mapped_column(Text, primary_key=True)
    target: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


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
