"""Tables of the maritime rules on the sensor side: vessel static data from AIS, multi-part AIS
fragments waiting for their other parts, and each sensor's health (online/offline)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, PrimaryKeyConstraint, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base


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
