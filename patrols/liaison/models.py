"""Pushes to partner agencies: what was pushed (a copy of the item as it was), to whom, by whom, when, why."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Identity, Index, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base

ITEM_TYPES = ("alert", "incident")


class PartnerPush(Base):
    __tablename__ = "partner_pushes"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    from_agency: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)
    to_agency: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)
    item_type: Mapped[str] = mapped_column(String(16), nullable=False)
    item_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    pushed_by: Mapped[str] = mapped_column(String(64), nullable=False)
    pushed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    # The item as it was when pushed: the partner reads this copy, never the sender's live record.
    item: Mapped[dict] = mapped_column(JSONB, nullable=False)

    __table_args__ = (
        CheckConstraint(f"item_type IN {ITEM_TYPES!r}", name="partner_push_item_type_known"),
        CheckConstraint("from_agency <> to_agency", name="partner_push_to_a_partner"),
        Index("ix_partner_pushes_to", "to_agency", "id"),
        Index("ix_partner_pushes_from", "from_agency", "id"),
    )
