"""Evidence items on incidents and their custody events.

``evidence_items`` holds what an item is and where it is now (its custodian and status, kept up
to date by the service). ``custody_events`` is the item's history: append-only (a trigger refuses
UPDATE, DELETE and TRUNCATE), numbered 1, 2, ... per item, each event chained to the one before
by ``prev_hash`` (64 zeros for the first) and carrying ``hash``, the SHA-256 of its canonical
serialisation (:func:`patrols.evidence.chain.event_hash`). The first event, ``collected``,
carries the item's facts (kind, content hash, seal, ...), so the chain also vouches for them; the
item keeps the number and hash of its last event, so an event cut from the end shows too.
"""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    ARRAY,
    BigInteger,
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
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

import patrols.models  # noqa: F401  (the incidents and patrol units evidence refers to)
from core.models import Base

ITEM_KINDS = ("snapshot", "clip", "document", "seized_item", "other")
# Kinds whose content is bytes somewhere (a camera snapshot, a recording, a scanned document).
MEDIA_KINDS = ("snapshot", "clip", "document")
ITEM_STATUSES = ("in_custody", "in_transit", "released", "destroyed", "returned")
FINAL_STATUSES = ("released", "destroyed", "returned")
EVENT_KINDS = (
    "collected",
    "handover",
    "received",
    "handover_declined",
    "sealed",
    "unsealed",
    "examined",
    "released",
    "destroyed",
    "returned",
)
GENESIS = "0" * 64


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN {values!r}"


class EvidenceItem(Base):
    """A snapshot, clip, document or seized item attached to an incident, and where it is now."""

    __tablename__ = "evidence_items"
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="RESTRICT"), nullable=False)
    # The collecting agency (the owner of the record).
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False)
    content_uri: Mapped[str | None] = mapped_column(Text)
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    content_size: Mapped[int | None] = mapped_column(BigInteger)
    media_type: Mapped[str | None] = mapped_column(String(127))
    # When the bytes were uploaded and kept in the evidence store (settings.evidence_dir).
    content_stored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    quantity: Mapped[str | None] = mapped_column(String(64))
    seal_number: Mapped[str | None] = mapped_column(String(64))
    sealed: Mapped[bool] = mapped_column(nullable=False, default=False)
    collected_by: Mapped[str] = mapped_column(String(128), nullable=False)
    collected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    custodian_agency: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)
    custodian: Mapped[str] = mapped_column(String(128), nullable=False)
    custodian_unit_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_units.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="in_custody")
    # While in transit: the agency, custodian and unit it is being handed to.
    pending_agency: Mapped[str | None] = mapped_column(ForeignKey("agencies.code"))
    pending_custodian: Mapped[str | None] = mapped_column(String(128))
    pending_unit_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_units.id", ondelete="SET NULL"))
    # Every agency that has held the item or was asked to take it: they see it and its chain.
    agencies: Mapped[list[str]] = mapped_column(ARRAY(String(32)), nullable=False)
    head_seq: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    head_hash: Mapped[str] = mapped_column(String(64), nullable=False, default=GENESIS)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)

    __table_args__ = (
        CheckConstraint(_in("kind", ITEM_KINDS), name="evidence_kind_known"),
        CheckConstraint(_in("status", ITEM_STATUSES), name="evidence_status_known"),
        CheckConstraint("content_sha256 ~ '^[0-9a-f]{64}$'", name="evidence_sha256_hex"),
        CheckConstraint("content_size >= 0", name="evidence_size_positive"),
        CheckConstraint("(status = 'in_transit') = (pending_agency IS NOT NULL)", name="evidence_pending_in_transit"),
        Index("ix_evidence_items_incident", "incident_id", "id"),
        Index("ix_evidence_items_agencies", "agencies", postgresql_using="gin"),
    )


class CustodyEvent(Base):
    """One step in an item's chain of custody; never changed once written."""

    __tablename__ = "custody_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("evidence_items.id", ondelete="RESTRICT"), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    kind: Mapped[str] = mapped_column(String(24), nullable=False)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
    actor_agency: Mapped[str] = mapped_column(String(32), nullable=False)
    from_agency: Mapped[str | None] = mapped_column(String(32))
    from_custodian: Mapped[str | None] = mapped_column(String(128))
    to_agency: Mapped[str | None] = mapped_column(String(32))
    to_custodian: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSONB, nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)

    __table_args__ = (
        UniqueConstraint("item_id", "seq", name="custody_events_item_seq_key"),
        UniqueConstraint("hash", name="custody_events_hash_key"),
        CheckConstraint("seq >= 1", name="custody_seq_positive"),
        CheckConstraint(_in("kind", EVENT_KINDS), name="custody_kind_known"),
        CheckConstraint("hash ~ '^[0-9a-f]{64}$' AND prev_hash ~ '^[0-9a-f]{64}$'", name="custody_hash_hex"),
    )
