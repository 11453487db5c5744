"""Outbound webhooks: an agency's subscriptions and the log of every delivery."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ARRAY,
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
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

import alerts.models  # noqa: F401  (the alerts deliveries carry)
from core.models import Base

DELIVERY_STATUSES = ("pending", "delivered", "failed")


class WebhookSubscription(Base):
    """Where an agency's alerts are POSTed, signed with the subscription's secret."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    agency_code: Mapped[str] = mapped_column(String(32), ForeignKey("agencies.code"), nullable=False, index=True)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    # The HMAC key; shown once when the subscription is made, never returned again.
    secret: Mapped[str] = mapped_column(Text, nullable=False)
    kinds: Mapped[list[str]] = mapped_column(ARRAY(String(32)), nullable=False, server_default="{}")
    severities: Mapped[list[str]] = mapped_column(ARRAY(String(16)), nullable=False, server_default="{}")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    # Alerts up to this id have been considered for this subscription.
    last_alert_id: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class WebhookDelivery(Base):
    """One alert to one subscription: its attempts, last outcome and when to try again."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), nullable=False
    )
    alert_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("subscription_id", "alert_id", name="uq_webhook_delivery_alert"),
        CheckConstraint(f"status IN {DELIVERY_STATUSES!r}", name="webhook_delivery_status_known"),
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where="status = 'pending'"),
    )
