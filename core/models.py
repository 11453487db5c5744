"""Tables every domain shares: the declarative base, agencies and users."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Integer, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.permissions import ROLES


class Base(DeclarativeBase):
    pass


class Agency(Base):
    """One organisation of one member state, e.g. ``TH-RTP``; every record has one owner."""

    __tablename__ = "agencies"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    country: Mapped[str] = mapped_column(String(2), nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("country ~ '^[A-Z]{2}$'", name="agency_country_iso2"),
        CheckConstraint("code ~ '^[A-Z]{2}-[A-Z0-9]{2,24}$'", name="agency_code_format"),
    )


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False, index=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    active: Mapped[bool] = mapped_column(default=True, nullable=False)
    # Tokens carry the generation they were issued under; moving it on revokes every older token.
    token_generation: Mapped[int] = mapped_column(default=0, server_default="0", nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint(f"role IN {ROLES!r}", name="user_role_known"),)


class LoginThrottle(Base):
    """Recent failed sign-ins of one account (``account:<username>``) or one client address
    (``address:<ip>``), and until when further attempts are refused. Shared by every API process."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False)
    first_failure_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
