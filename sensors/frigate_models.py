"""Where a Frigate camera's zones lie on the ground: one polygon per Frigate zone of a camera sensor."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import DateTime, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

import sensors.models  # noqa: F401  (the cameras zones belong to)
from core.models import Base


class FrigateZone(Base):
    """A zone of the Frigate configuration of ``sensor_id``'s camera (named as in Frigate), on the map."""

    __tablename__ = "frigate_zones"

    sensor_id: Mapped[str] = mapped_column(String(64), ForeignKey("sensors.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    geom = mapped_column(Geometry("POLYGON", srid=4326, spatial_index=False), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
