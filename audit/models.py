"""The audit log: one row per recorded change (or read), chained by hash.

``seq`` numbers the entries without gaps; ``prev_hash`` is the hash of entry ``seq - 1``
(64 zeros for the first) and ``hash`` the SHA-256 of the entry's canonical serialisation
including ``prev_hash`` (:func:`audit.service.entry_hash`). There is no foreign key: an
entry outlives the record it speaks of.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ARRAY, BigInteger, CheckConstraint, DateTime, Identity, Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base


class AuditEntry(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # The agencies the entry concerns (the record's owner and the acting user's agency).
    agencies: Mapped[list[str]] = mapped_column(ARRAY(String(32)), nullable=False)
    actor: Mapped[str] = mapped_column(String(96), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    entity_type: Mapped[str] = mapped_column(String(32), nullable=False)
    entity_id: Mapped[str] = mapped_column(String(96), nullable=False)
    details: Mapped[dict] = mapped_column(JSONB, nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)

    __table_args__ = (
        CheckConstraint("seq >= 1", name="audit_seq_positive"),
        CheckConstraint("hash ~ '^[0-9a-f]{64}$' AND prev_hash ~ '^[0-9a-f]{64}$'", name="audit_hash_hex"),
        Index("ix_audit_log_agencies", "agencies", postgresql_using="gin"),
        Index("ix_audit_log_entity", "entity_type", "entity_id"),
    )


class AuditCheckpoint(Base):
    """A head of the chain (``seq``, ``hash``) signed with Ed25519 by ``node`` with key ``key_id``
    (audit/checkpoints.py); exported copies kept outside the database reveal a rewritten chain."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    node: Mapped[str] = mapped_column(String(128), nullable=False)
    key_id: Mapped[str] = mapped_column(String(32), nullable=False)
    signature: Mapped[str] = mapped_column(String(128), nullable=False)

    __table_args__ = (
        CheckConstraint("seq >= 1", name="audit_checkpoint_seq_positive"),
        CheckConstraint("hash ~ '^[0-9a-f]{64}$'", name="audit_checkpoint_hash_hex"),
    )
