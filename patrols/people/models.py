"""Persons involved in an incident: no names or documents, only what analysis disaggregates by."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Identity, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

import patrols.models  # noqa: F401  (the incidents persons are recorded on)
from core.models import Base

PERSON_ROLES = ("victim", "suspect", "witness")
SEXES = ("female", "male", "other", "unknown")
AGE_GROUPS = ("0-11", "12-17", "18-29", "30-49", "50+", "unknown")


class IncidentPerson(Base):
    __tablename__ = "incident_persons"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False)
    agency_code: Mapped[str] = mapped_column(String(32), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    sex: Mapped[str] = mapped_column(String(16), nullable=False)
    age_group: Mapped[str] = mapped_column(String(16), nullable=False)
    # ISO 3166-1 alpha-2, or null when not known.
    nationality: Mapped[str | None] = mapped_column(String(2))
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)

    __table_args__ = (
        CheckConstraint(f"role IN {PERSON_ROLES!r}", name="person_role_known"),
        CheckConstraint(f"sex IN {SEXES!r}", name="person_sex_known"),
        CheckConstraint(f"age_group IN {AGE_GROUPS!r}", name="person_age_group_known"),
        CheckConstraint("nationality ~ '^[A-Z]{2}$'", name="person_nationality_iso2"),
        Index("ix_incident_persons_incident", "incident_id"),
        Index("ix_incident_persons_agency", "agency_code"),
    )
