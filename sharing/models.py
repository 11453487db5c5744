"""Sharing agreements: what one agency releases to another (or to the members of a joint sector)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

import geo.models  # noqa: F401  (the joint sectors agreements name)
from core.models import Base


class SharingAgreement(Base):
    __tablename__ = "sharing_agreements"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    from_agency: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)
    # Exactly one recipient: one agency, or every member agency of a joint patrol sector (as the
    # sector's member list stands at the time of each read).
    to_agency: Mapped[str | None] = mapped_column(ForeignKey("agencies.code"))
    to_sector_zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"))
    alert_kinds: Mapped[list[str]] = mapped_column(ARRAY(String(24)), nullable=False, server_default="{}")
    incident_categories: Mapped[list[str]] = mapped_column(ARRAY(String(32)), nullable=False, server_default="{}")
    # Where: empty both = anywhere.
    zone_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer), nullable=False, server_default="{}")
    segment_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer), nullable=False, server_default="{}")
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    personal_data: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    purpose: Mapped[str] = mapped_column(Text, nullable=False)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    withdrawn_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint("(to_agency IS NULL) <> (to_sector_zone_id IS NULL)", name="sharing_one_recipient"),
        CheckConstraint("to_agency IS NULL OR to_agency <> from_agency", name="sharing_to_a_partner"),
        CheckConstraint("valid_until IS NULL OR valid_until > valid_from", name="sharing_window_ordered"),
        CheckConstraint("(withdrawn_at IS NULL) = (withdrawn_by IS NULL)", name="sharing_withdrawn_by_whom"),
        Index("ix_sharing_agreements_from", "from_agency", "id"),
        Index("ix_sharing_agreements_to", "to_agency"),
        Index("ix_sharing_agreements_sector", "to_sector_zone_id"),
    )
