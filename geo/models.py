"""Border segments, zones and the states' areas, stored in EPSG:4326 with GiST indexes."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import ARRAY, CheckConstraint, DateTime, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base

IMPACT_LEVELS = ("low", "medium", "high")
SEGMENT_KINDS = ("land", "maritime")
ZONE_KINDS = ("border_buffer", "territorial_sea", "joint_patrol_sector", "restricted_area", "crossing_point", "port")


class State(Base):
    """A member state's land area (for the basemap and for which side a point lies on)."""

    __tablename__ = "states"

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False)


class BorderSegment(Base):
    """A stretch of land or maritime boundary with the state on each side of its direction."""

    __tablename__ = "border_segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    left_state: Mapped[str] = mapped_column(String(2), nullable=False)
    right_state: Mapped[str] = mapped_column(String(2), nullable=False)
    impact_level: Mapped[str] = mapped_column(String(8), nullable=False, server_default="medium")
    source: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    geom = mapped_column(Geometry("LINESTRING", srid=4326, spatial_index=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"kind IN {SEGMENT_KINDS!r}", name="segment_kind_known"),
        CheckConstraint(f"impact_level IN {IMPACT_LEVELS!r}", name="segment_impact_known"),
        CheckConstraint("left_state <> right_state", name="segment_two_states"),
    )


class Zone(Base):
    """An area used by rules: buffer strip, territorial sea, joint sector, restricted area, crossing point."""

    __tablename__ = "zones"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(24), nullable=False)
    state: Mapped[str | None] = mapped_column(String(2))
    owner_agency: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False, index=True)
    # Agencies whose agreement covers the zone (a joint sector has several; others just the owner).
    member_agencies: Mapped[list[str]] = mapped_column(ARRAY(String(32)), nullable=False)
    impact_level: Mapped[str] = mapped_column(String(8), nullable=False, server_default="medium")
    entry_alert: Mapped[bool] = mapped_column(nullable=False, server_default="false")
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("border_segments.id", ondelete="CASCADE"))
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"kind IN {ZONE_KINDS!r}", name="zone_kind_known"),
        CheckConstraint(f"impact_level IN {IMPACT_LEVELS!r}", name="zone_impact_known"),
        Index("ix_zones_member_agencies", "member_agencies", postgresql_using="gin"),
    )


class ZoneCell(Base):
    """A zone within one cell of the geofencing grid (0.02 degrees; kept by a trigger on zones):
    ``inside`` when the cell lies wholly in the zone, otherwise ``geom`` is the zone's piece in it."""

    __tablename__ = "zone_cells"

    id: Mapped[int] = mapped_column(primary_key=True)
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"), nullable=False, index=True)
    i: Mapped[int] = mapped_column(nullable=False)
    j: Mapped[int] = mapped_column(nullable=False)
    inside: Mapped[bool] = mapped_column(nullable=False)
    geom = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=False))

    __table_args__ = (Index("ix_zone_cells_cell", "i", "j", "zone_id"),)


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
