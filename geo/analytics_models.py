"""State the track rules keep between batches: AIS gaps, encounters between vessels, loitering,
and the fence edges (border lines and entry-zone outlines) that crossing hysteresis measures from."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Identity, Index, PrimaryKeyConstraint, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base


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
        Index("ix_ais_gaps_open", "track_key", postgresql_where=text("ended_at IS NULL")),
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


class FenceEdge(Base):
    """A piece (at most 32 vertices) of a border segment or of the outline of a zone that alerts on
    entry (kept by database triggers)."""

    __tablename__ = "fence_edges"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(8), nullable=False)
    ref_id: Mapped[int] = mapped_column(nullable=False)
    geom = mapped_column(Geometry("MULTILINESTRING", srid=4326, spatial_index=False), nullable=False)

    __table_args__ = (
        Index("ix_fence_edges_geom", "geom", postgresql_using="gist"),
        Index("ix_fence_edges_ref", "source", "ref_id"),
    )


class FenceCell(Base):
    """The pieces of a fence edge within 0.01 degrees of one cell of the geofencing grid (kept by a
    trigger on fence_edges): the hysteresis test of a point reads its own cell's pieces only."""

    __tablename__ = "fence_cells"

    id: Mapped[int] = mapped_column(primary_key=True)
    edge_id: Mapped[int] = mapped_column(ForeignKey("fence_edges.id", ondelete="CASCADE"), nullable=False, index=True)
    i: Mapped[int] = mapped_column(nullable=False)
    j: Mapped[int] = mapped_column(nullable=False)
    geom = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False)

    __table_args__ = (Index("ix_fence_cells_cell", "i", "j"),)
