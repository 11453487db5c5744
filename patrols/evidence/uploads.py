"""The bytes of an evidence item: an upload kept only if its SHA-256 (and size) is the one the
item's chain recorded, and the stored bytes hashed again on demand. Where the bytes live on disk is
``content``'s business; who may act and what is audited is the same as for the rest of the item
(``service``). Callers own the transaction."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.orm import Session

from audit import service as audit
from core.permissions import EVIDENCE_REGISTRARS, require_role
from core.security import Principal
from patrols.evidence import schemas
from patrols.evidence.content import ContentSpool, content_path, sha256_of
from patrols.evidence.models import EvidenceItem
from patrols.evidence.service import (
    ContentMismatch,
    NoContent,
    audit_read,
    ensure_custodian,
    item_for_update,
    reload_item,
    visible_row,
)


def check_upload(*, session: Session, principal: Principal, item_id: int) -> None:
    """Refuse an upload before any of its bytes is read or written: the item must be visible to the
    caller, held by the caller's agency, have recorded content, and the caller's role must register
    evidence. ``store_content`` checks again, under the item's lock, once the bytes are in."""
    visible_row(session, principal, item_id)
    item = session.get(EvidenceItem, item_id)
    ensure_custodian(item, principal, "upload its content")
    require_role(principal, EVIDENCE_REGISTRARS, "upload evidence content")
    if item.content_sha256 is None:
        raise NoContent(f"evidence {item.id} is a {item.kind} without recorded content")


def store_content(
    *, session: Session, principal: Principal, item_id: int, spool: ContentSpool, directory: str | Path
) -> schemas.EvidenceOut:
    """Keep the uploaded bytes of a media item if their SHA-256 (and size, if declared) is the one recorded.

    The bytes are written before the transaction commits; if it rolls back they stay, named by
    their hash, unreferenced (the next upload of the same bytes reuses them).
    """
    try:
        actual = spool.finish()
        item, row = item_for_update(session, principal, item_id)
        ensure_custodian(item, principal, "upload its content")
        require_role(principal, EVIDENCE_REGISTRARS, "upload evidence content")
        if item.content_sha256 is None:
            raise NoContent(f"evidence {item.id} is a {item.kind} without recorded content")
        if actual != item.content_sha256 or (item.content_size is not None and spool.size != item.content_size):
            raise ContentMismatch(
                f"the uploaded bytes do not match evidence {item.id}: SHA-256 {actual} ({spool.size} bytes), "
                f"recorded {item.content_sha256} ({item.content_size if item.content_size is not None else '?'} "
                "bytes)",
                recorded_sha256=item.content_sha256,
                actual_sha256=actual,
                size=spool.size,
            )
        target = content_path(directory, actual)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(spool.path, target)
    finally:
        spool.discard()
    first = item.content_stored_at is None
    item.content_stored_at = item.content_stored_at or datetime.now(timezone.utc)
    session.flush()
    if first:
        audit.record(
            session=session,
            actor=principal.username,
            action="evidence.content_store",
            entity_type="evidence",
            entity_id=item.id,
            agencies=[item.agency_code, row.incident_agency, principal.agency_code],
            details={"content_sha256": actual, "size": spool.size},
        )
    return reload_item(session, principal, item.id)


def check_content(
    *, session: Session, principal: Principal, item_id: int, directory: str | Path
) -> schemas.ContentCheck:
    """Hash the stored bytes again and compare with the recorded SHA-256."""
    row = visible_row(session, principal, item_id)
    path = content_path(directory, row.content_sha256) if row.content_sha256 else None
    if row.content_stored_at is None or path is None:
        return schemas.ContentCheck(
            item_id=item_id,
            stored=False,
            recorded_sha256=row.content_sha256,
            actual_sha256=None,
            size=None,
            matches=False,
        )
    try:
        actual, size = sha256_of(path)
    except FileNotFoundError:
        actual, size = None, None
    audit_read(session, principal, row, "content_check")
    return schemas.ContentCheck(
        item_id=item_id,
        stored=actual is not None,
        recorded_sha256=row.content_sha256,
        actual_sha256=actual,
        size=size,
        matches=actual == row.content_sha256,
    )
