"""The check of every chain of custody (``borderwatch evidence verify``): items a batch per query,
each chain walked by ``chain.check_chain`` against its item and the audit trail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

from patrols.evidence.chain import Problem, audited_hashes, check_chain, event_rows
from patrols.evidence.service import ITEM_SELECT, EvidenceNotFound, item_for_check

VERIFY_BATCH = 500


@dataclass
class Verification:
    items: int = 0
    events: int = 0
    broken: dict[int, list[Problem]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.broken


def count_items(*, session: Session, item_id: int | None = None) -> int:
    return session.execute(
        text("SELECT count(*) FROM evidence_items WHERE CAST(:id AS bigint) IS NULL OR id = :id"), {"id": item_id}
    ).scalar_one()


def verify(
    *,
    session: Session,
    item_id: int | None = None,
    progress: Callable[[int], None] | None = None,
    batch: int = VERIFY_BATCH,
) -> Verification:
    """Check the chain of every item (or of one), a batch of items per query; ``progress`` gets the
    number of items checked after each batch."""
    result = Verification()
    after = 0
    while True:
        rows = session.execute(
            text(
                f"""{ITEM_SELECT} WHERE e.id > :after AND (CAST(:id AS bigint) IS NULL OR e.id = :id)
                ORDER BY e.id LIMIT :n"""
            ),
            {"after": after, "id": item_id, "n": batch},
        ).all()
        if not rows:
            break
        ids = [r.id for r in rows]
        events, audited = event_rows(session, ids), audited_hashes(session, ids)
        for row in rows:
            problems = check_chain(item_for_check(row), events[row.id], audited[row.id])
            if problems:
                result.broken[row.id] = problems
            result.items += 1
            result.events += len(events[row.id])
        after = rows[-1].id
        if progress is not None:
            progress(result.items)
    if item_id is not None and not result.items:
        raise EvidenceNotFound(f"evidence {item_id} does not exist")
    return result
