"""The alerts and the state the rules keep between batches: each track's last position, cooldowns,
AIS gaps, encounters between vessels, loitering and zone presence (dwell)."""

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
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

import geo.models  # noqa: F401  (the border segments and zones alerts refer to)
from core.models import Base
from core.vocabulary import ALERT_KINDS, SEVERITIES


class TrackPosition(Base):
    """The last known position of each tracked object, per agency (one agency's detections never move
    another agency's track); rewritten by every fix: few indexes."""

    __tablename__ = "track_positions"

    agency_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    track_key: Mapped[str] = mapped_column(String(200), primary_key=True)
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
        Index(
            "ix_track_positions_vessel_geom",
            "geom",
            postgresql_using="gist",
            postgresql_where=text("class IN ('boat', 'vessel')"),
        ),
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


class AisGap(Base):
    """A vessel that stopped transmitting: where and when it fell silent, and where it reappeared."""

    __tablename__ = "ais_gaps"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    agency_code: Mapped[str] = mapped_column(String(32), nullable=False)
    track_key: Mapped[str] = mapped_column(String(200), nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    start_detection_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    start_geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_detection_id: Mapped[int | None] = mapped_column(BigInteger)
    end_geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    alert_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("agency_code", "track_key", "started_at", name="uq_ais_gaps_track_start"),
        Index("ix_ais_gaps_open", "agency_code", "track_key", postgresql_where=text("ended_at IS NULL")),
    )


class Encounter(Base):
    """Two vessel tracks close together, from when until when last seen so (a rendezvous candidate)."""

    __tablename__ = "encounters"

    agency_code: Mapped[str] = mapped_column(String(32))
    track_a: Mapped[str] = mapped_column(String(200))
    track_b: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    alert_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        PrimaryKeyConstraint("agency_code", "track_a", "track_b"),
        CheckConstraint("track_a < track_b", name="encounter_pair_ordered"),
    )


class LoiterState(Base):
    """A track slow inside a zone since ``since``; ``alerted`` once the loitering alert went out."""

    __tablename__ = "loiter_states"

    agency_code: Mapped[str] = mapped_column(String(32))
    track_key: Mapped[str] = mapped_column(String(200))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    alerted: Mapped[bool] = mapped_column(nullable=False, server_default=text("false"))

    __table_args__ = (PrimaryKeyConstraint("agency_code", "track_key", "zone_id"),)


class ZonePresence(Base):
    """A track inside an entry-alert zone since ``since``, for entries that need a dwell time."""

    __tablename__ = "zone_presence"

    # as alert_cooldowns.track_key: the agency, then the track
    cooldown_key: Mapped[str] = mapped_column(Text)
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    alerted: Mapped[bool] = mapped_column(nullable=False, server_default=text("false"))

    __table_args__ = (PrimaryKeyConstraint("cooldown_key", "zone_id"),)
