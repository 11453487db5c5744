"""What the audit trail does: append entries chained by hash, list an agency's entries, verify
the whole chain. Callers own the transaction: an entry is appended in the transaction of the
change it records, so both commit or neither does.

Appends are serialised by a transaction-scoped advisory lock: the chain head is read after the
lock is granted (a new statement, hence a fresh snapshot under READ COMMITTED), so two
transactions never build on the same head. The primary key on ``seq`` and the unique ``hash``
would refuse a fork even if a caller ran under a snapshot taken before the lock. The lock is held
until the caller's transaction ends; services append after their other work, as late as they can.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from audit import schemas
from audit.models import AuditEntry
from core.errors import InvalidInput, NotAuthorised
from core.paging import decode_cursor, encode_cursor
from core.permissions import AUDIT_READERS
from core.security import Principal

GENESIS = "0" * 64
# pg_advisory_xact_lock key of the chain head ('BWAUDIT' in ASCII, fits a bigint).
CHAIN_LOCK_KEY = 0x4257415544495400
DEFAULT_PAGE = 100
MAX_PAGE = 500
VERIFY_BATCH = 5000
MAX_REPORTED = 50
# How far from its place a moved entry is looked for (only for entries whose hash does not match).
MOVE_WINDOW = 64
FIELDS = ("seq", "at", "agencies", "actor", "action", "entity_type", "entity_id", "details", "prev_hash")


class AuditReadNotAllowed(NotAuthorised):
    code = "audit_read_not_allowed"


@dataclass(frozen=True)
class Change:
    """One thing to record: who did what to which record, for which agencies."""

    actor: str
    action: str
    entity_type: str
    entity_id: str | int
    agencies: Iterable[str | None]
    details: dict | None = None


# -- the chain -----------------------------------------------------------------------------
def timestamp_text(at: datetime) -> str:
    """A timestamp as hashed: UTC, microseconds, ``Z``."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(body: dict) -> bytes:
    """Sorted, compact JSON (UTF-8): the bytes a chained record's hash is taken over."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def canonical(entry: dict) -> bytes:
    """The bytes an entry's hash is taken over: its fields and ``prev_hash`` as sorted, compact JSON (UTF-8)."""
    return canonical_json(
        {
            "seq": entry["seq"],
            "at": timestamp_text(entry["at"]),
            "agencies": list(entry["agencies"]),
            "actor": entry["actor"],
            "action": entry["action"],
            "entity_type": entry["entity_type"],
            "entity_id": entry["entity_id"],
            "details": entry["details"],
            "prev_hash": entry["prev_hash"],
        }
    )


def entry_hash(entry: dict) -> str:
    """SHA-256 (hex) of :func:`canonical`."""
    return hashlib.sha256(canonical(entry)).hexdigest()


def actor_of(principal: Principal) -> str:
    return principal.username


def record(
    *,
    session: Session,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str | int,
    agencies: Iterable[str | None],
    details: dict | None = None,
) -> int:
    """Append one entry in the caller's transaction; returns its sequence number.

    The same function records reads (``action="...read"``) as well as changes.
    """
    return record_many(session=session, changes=[Change(actor, action, entity_type, entity_id, agencies, details)])[0]


def record_many(*, session: Session, changes: Sequence[Change]) -> list[int]:
    """Append several entries, in order, with one lock, one head read and one INSERT."""
    if not changes:
        return []
    for c in changes:
        if not c.actor or not c.action or not c.entity_type or c.entity_id in (None, ""):
            raise ValueError(f"an audit entry needs an actor, an action and an entity: {c!r}")
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY})
    # A statement after the lock was granted: its snapshot holds every entry committed before.
    head = session.execute(
        text("""SELECT clock_timestamp() AS now,
                       (SELECT seq FROM audit_log ORDER BY seq DESC LIMIT 1) AS seq,
                       (SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1) AS hash,
                       CAST(CAST(:details AS jsonb) AS text) AS details"""),
        # Details go through jsonb once before hashing, so that what is hashed is what jsonb gives back.
        {"details": json.dumps([c.details or {} for c in changes], default=str)},
    ).one()
    seq, prev = (head.seq or 0), (head.hash or GENESIS)
    rows = []
    for change, details in zip(changes, json.loads(head.details), strict=True):
        seq += 1
        row = {
            "seq": seq,
            "at": head.now,
            "agencies": sorted({a for a in change.agencies if a}),
            "actor": str(change.actor)[:96],
            "action": change.action,
            "entity_type": change.entity_type,
            "entity_id": str(change.entity_id),
            "details": details,
            "prev_hash": prev,
        }
        row["hash"] = prev = entry_hash(row)
        rows.append(row)
    session.execute(insert(AuditEntry), rows)
    return [r["seq"] for r in rows]


# -- reading -------------------------------------------------------------------------------
def list_entries(
    *,
    session: Session,
    principal: Principal,
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE,
    entity_type: str | None = None,
    entity_id: str | None = None,
    action: str | None = None,
) -> schemas.AuditPage:
    """The entries that concern the caller's agency, newest first (supervisors and admins only)."""
    if principal.role not in AUDIT_READERS:
        raise AuditReadNotAllowed(
            f"role {principal.role} may not read the audit trail (needs one of {', '.join(AUDIT_READERS)})"
        )
    before = decode_cursor(cursor, kind="seq")
    rows = session.execute(
        text(
            """SELECT seq, at, agencies, actor, action, entity_type, entity_id, CAST(details AS text) AS details,
                  prev_hash, hash
           FROM audit_log
           WHERE agencies @> ARRAY[CAST(:agency AS varchar)]
             AND (CAST(:before AS bigint) IS NULL OR seq < :before)
             AND (CAST(:entity_type AS text) IS NULL OR entity_type = :entity_type)
             AND (CAST(:entity_id AS text) IS NULL OR entity_id = :entity_id)
             AND (CAST(:action AS text) IS NULL OR action = :action)
           ORDER BY seq DESC LIMIT :limit"""
        ),
        {
            "agency": principal.agency_code,
            "before": before,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "action": action,
            "limit": limit + 1,
        },
    ).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].seq, kind="seq")
    items = [schemas.AuditEntryOut(**{**r._mapping, "details": json.loads(r.details)}) for r in rows]
    return schemas.AuditPage(items=items, next_cursor=next_cursor)


# -- verification --------------------------------------------------------------------------
@dataclass
class Problem:
    kind: str  # altered, removed, reordered, truncated
    seq: int
    message: str


@dataclass
class Verification:
    checked: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    problems: list[Problem] = field(default_factory=list)
    more_problems: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, kind: str, seq: int, message: str) -> None:
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(Problem(kind, seq, message))
        else:
            self.more_problems += 1


def count_entries(*, session: Session) -> int:
    return session.execute(text("SELECT count(*) FROM audit_log")).scalar_one()


def _row_dict(row) -> dict:
    return {**row._mapping, "details": json.loads(row.details)}


def _moved_from(session: Session, entry: dict) -> int | None:
    """The position an intact entry was written at, if it now sits at another one.

    Candidates: one after the entry it is chained to (where that one sits now), and the
    positions near its current one.
    """
    candidates = [entry["seq"] + d for d in range(-MOVE_WINDOW, MOVE_WINDOW + 1) if d and entry["seq"] + d >= 1]
    if entry["prev_hash"] == GENESIS:
        candidates.insert(0, 1)
    else:
        before = session.execute(
            text("SELECT seq FROM audit_log WHERE hash = :h"), {"h": entry["prev_hash"]}
        ).scalar_one_or_none()
        if before is not None:
            candidates.insert(0, before + 1)
    for written_at in candidates:
        if written_at != entry["seq"] and entry_hash({**entry, "seq": written_at}) == entry["hash"]:
            return written_at
    return None


def verify(
    *,
    session: Session,
    anchor: tuple[int, str] | None = None,
    progress: Callable[[int], None] | None = None,
    batch: int = VERIFY_BATCH,
) -> Verification:
    """Walk the whole chain in order and report where it breaks.

    Each entry's hash is recomputed from its fields; each entry must follow the one before it
    (``seq`` without gaps, ``prev_hash`` equal to that entry's hash). ``anchor`` (a sequence
    number and the hash recorded for it elsewhere earlier) also catches entries cut from the end
    of the chain and a chain rewritten from that point on. ``progress`` is called with the
    number of entries checked after each batch.
    """
    result = Verification()
    expected_seq, expected_prev = 1, GENESIS
    anchor_seen = False
    previous_intact = True
    after = 0
    while True:
        rows = session.execute(
            text(
                """SELECT seq, at, agencies, actor, action, entity_type, entity_id, CAST(details AS text) AS details,
                      prev_hash, hash
               FROM audit_log WHERE seq > :after ORDER BY seq LIMIT :n"""
            ),
            {"after": after, "n": batch},
        ).all()
        if not rows:
            break
        for row in rows:
            entry = _row_dict(row)
            seq = entry["seq"]
            gap = seq != expected_seq
            if gap:
                missing = (
                    f"entry {expected_seq} is"
                    if seq == expected_seq + 1
                    else f"entries {expected_seq} to {seq - 1} are"
                )
                result.add("removed", expected_seq, f"{missing} missing: removed from the chain")
            intact = entry_hash(entry) == entry["hash"]
            if not intact:
                moved = _moved_from(session, entry)
                if moved is not None:
                    result.add("reordered", seq, f"entry {seq} is the entry written as {moved}: entries were reordered")
                else:
                    result.add("altered", seq, f"entry {seq} was altered: its fields do not match its hash")
            elif not gap and previous_intact and entry["prev_hash"] != expected_prev:
                # Intact in itself, but the entry before it is not the one it was chained to.
                result.add(
                    "altered",
                    seq - 1,
                    f"entry {seq - 1} was rewritten: entry {seq} was chained to "
                    f"another entry {seq - 1} (hash {entry['prev_hash'][:12]}…)",
                )
            if anchor is not None and seq == anchor[0]:
                anchor_seen = True
                if entry["hash"] != anchor[1]:
                    result.add("altered", seq, f"entry {seq} does not have the anchored hash {anchor[1][:12]}…")
            expected_seq, expected_prev, previous_intact = seq + 1, entry["hash"], intact
            result.checked += 1
        after = rows[-1].seq
        result.head_seq, result.head_hash = after, rows[-1].hash
        if progress is not None:
            progress(result.checked)
    if anchor is not None and not anchor_seen:
        result.add(
            "truncated",
            anchor[0],
            f"anchored entry {anchor[0]} is missing: the chain ends at "
            f"{result.head_seq}; entries were removed from its end",
        )
    return result


def parse_anchor(value: str) -> tuple[int, str]:
    """``SEQ:HASH`` as printed by ``borderwatch audit verify``."""
    match = re.fullmatch(r"([1-9][0-9]{0,17}):([0-9a-f]{64})", (value or "").strip())
    if not match:
        raise InvalidInput(
            "anchor must be SEQ:HASH (a sequence number and a 64-digit lower-case hex SHA-256)", field="anchor"
        )
    return int(match.group(1)), match.group(2)
