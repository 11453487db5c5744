"""Watch-lists: number plates and vessel identifiers an agency looks out for."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, Text, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base

WATCHLIST_KINDS = ("plate", "mmsi", "imo", "vessel_name")
WATCHLIST_SEVERITIES = ("high", "critical")


class WatchlistEntry(Base):
    """One identifier on an agency's watch-list; ``value`` is its normal form (bw_watchlist_value)."""

    __tablename__ = "watchlist_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    value: Mapped[str] = mapped_column(Text, nullable=False)
    display_value: Mapped[str] = mapped_column(Text, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    severity: Mapped[str] = mapped_column(String(8), nullable=False, server_default="high")
    active: Mapped[bool] = mapped_column(nullable=False, server_default=text("true"))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)

    __table_args__ = (
        CheckConstraint(f"kind IN {WATCHLIST_KINDS!r}", name="watchlist_kind_known"),
        CheckConstraint(f"severity IN {WATCHLIST_SEVERITIES!r}", name="watchlist_severity_known"),
        CheckConstraint("value <> ''", name="watchlist_value_not_empty"),
        UniqueConstraint("agency_code", "kind", "value", name="uq_watchlist_agency_kind_value"),
        Index("ix_watchlist_kind_value", "kind", "value"),
    )
