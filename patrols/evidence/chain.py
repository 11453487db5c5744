"""The chain of custody: each event of an item hashed (SHA-256) over its canonical form and the
hash of the event before it; appending the next event, reading an item's events, and the check
that says where a chain breaks. docs/evidence-chain.md describes the chain for checking it outside
Borderwatch."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from audit import service as audit
from core.security import Principal
from patrols.evidence.models import GENESIS, CustodyEvent, EvidenceItem

# How far from its place a moved event is looked for (only for events whose hash does not match).
MOVE_WINDOW = 64
# The item's facts as its first (collected) event recorded them; the item row must still agree.
FACTS = (
    "incident_id",
    "kind",
    "description",
    "content_uri",
    "content_sha256",
    "content_size",
    "media_type",
    "quantity",
    "collected_by",
    "collected_at",
    "location",
)


def canonical(event: dict) -> bytes:
    """The bytes an event's hash is taken over: its fields and ``prev_hash`` as sorted, compact JSON."""
    return audit.canonical_json(
        {
            "item_id": event["item_id"],
            "seq": event["seq"],
            "at": audit.timestamp_text(event["at"]),
            "kind": event["kind"],
            "actor": event["actor"],
            "actor_agency": event["actor_agency"],
            "from_agency": event["from_agency"],
            "from_custodian": event["from_custodian"],
            "to_agency": event["to_agency"],
            "to_custodian": event["to_custodian"],
            "note": event["note"],
            "details": event["details"],
            "prev_hash": event["prev_hash"],
        }
    )


def event_hash(event: dict) -> str:
    """SHA-256 (hex) of :func:`canonical`."""
    return hashlib.sha256(canonical(event)).hexdigest()


def append(
    session: Session,
    item: EvidenceItem,
    principal: Principal,
    kind: str,
    *,
    from_agency: str | None = None,
    from_custodian: str | None = None,
    to_agency: str | None = None,
    to_custodian: str | None = None,
    note: str | None = None,
    details: dict | None = None,
) -> dict:
    """Write the item's next custody event, chained to its last one (the item's row is locked)."""
    head = session.execute(
        text("SELECT clock_timestamp() AS now, CAST(CAST(:details AS jsonb) AS text) AS details"),
        # Through jsonb once before hashing: what is hashed is what jsonb gives back.
        {"details": json.dumps(details or {}, default=str)},
    ).one()
    event = {
        "item_id": item.id,
        "seq": item.head_seq + 1,
        "at": head.now,
        "kind": kind,
        "actor": principal.username,
        "actor_agency": principal.agency_code,
        "from_agency": from_agency,
        "from_custodian": from_custodian,
        "to_agency": to_agency,
        "to_custodian": to_custodian,
        "note": note,
        "details": json.loads(head.details),
        "prev_hash": item.head_hash,
    }
    event["hash"] = event_hash(event)
    session.add(CustodyEvent(**event))
    item.head_seq, item.head_hash, item.updated_at = event["seq"], event["hash"], head.now
    session.flush()
    return event


@dataclass
class Problem:
    """Where an item's chain breaks (the event number) and how."""

    kind: str  # altered, removed, reordered, item_altered
    seq: int
    message: str


def _moved_from(event: dict, last_seq: int) -> int | None:
    for written_at in range(max(1, event["seq"] - MOVE_WINDOW), max(last_seq, event["seq"]) + MOVE_WINDOW + 1):
        if written_at != event["seq"] and event_hash({**event, "seq": written_at}) == event["hash"]:
            return written_at
    return None


def fact_text(value) -> object:
    """A fact as the collected event records it (times as the audit trail writes them)."""
    return audit.timestamp_text(value) if isinstance(value, datetime) else value


def check_chain(item: dict, events: Sequence[dict], audited: dict[int, str] | None = None) -> list[Problem]:
    """Where one item's chain breaks: events altered (their fields do not match their hash, or the
    next event was chained to another one), removed (a gap, or events cut from the end: the item
    keeps the number and hash of its last event), reordered (an intact event at another place),
    and an item record that no longer says what its collected event recorded.

    ``audited`` (event number → hash, as the audit trail recorded them when the events were
    written) also catches a chain recomputed from some event on, which no chain reveals alone."""
    problems: list[Problem] = []
    expected_seq, expected_prev, previous_intact = 1, GENESIS, True
    last_seq = events[-1]["seq"] if events else 0
    for event in events:
        seq = event["seq"]
        gap = seq != expected_seq
        if gap:
            missing = (
                f"event {expected_seq} is" if seq == expected_seq + 1 else f"events {expected_seq} to {seq - 1} are"
            )
            problems.append(Problem("removed", expected_seq, f"{missing} missing: removed from the chain"))
        intact = event_hash(event) == event["hash"]
        if not intact:
            moved = _moved_from(event, last_seq)
            if moved is not None:
                problems.append(
                    Problem("reordered", seq, f"event {seq} is the event written as {moved}: events were reordered")
                )
            else:
                problems.append(Problem("altered", seq, f"event {seq} was altered: its fields do not match its hash"))
        elif not gap and previous_intact and event["prev_hash"] != expected_prev:
            problems.append(
                Problem(
                    "altered",
                    seq - 1,
                    f"event {seq - 1} was rewritten: event {seq} was chained "
                    f"to another event {seq - 1} (hash "
                    f"{event['prev_hash'][:12]}…)",
                )
            )
        expected_seq, expected_prev, previous_intact = seq + 1, event["hash"], intact
    head_seq, head_hash = item["head_seq"], item["head_hash"]
    if head_seq > last_seq:
        missing = f"event {head_seq} is" if head_seq == last_seq + 1 else f"events {last_seq + 1} to {head_seq} are"
        problems.append(Problem("removed", last_seq + 1, f"{missing} missing: cut from the end of the chain"))
    elif events and previous_intact and head_seq == last_seq and head_hash != expected_prev:
        problems.append(
            Problem(
                "altered",
                last_seq,
                f"event {last_seq} was rewritten: the item recorded another last event (hash {head_hash[:12]}…)",
            )
        )
    flagged = {p.seq for p in problems}
    held = {e["seq"]: e["hash"] for e in events}
    for seq, recorded in sorted((audited or {}).items()):
        if seq in flagged:
            continue
        if seq not in held:
            problems.append(
                Problem("removed", seq, f"event {seq} is missing: the audit trail recorded it (hash {recorded[:12]}…)")
            )
        elif held[seq] != recorded:
            problems.append(
                Problem(
                    "altered",
                    seq,
                    f"event {seq} was rewritten: the audit trail recorded it with another hash ({recorded[:12]}…)",
                )
            )
    first = events[0] if events else None
    if first is not None and first["seq"] == 1 and first["kind"] == "collected" and event_hash(first) == first["hash"]:
        recorded = first["details"]
        differ = [f for f in FACTS if fact_text(item.get(f)) != recorded.get(f)]
        if differ:
            problems.append(
                Problem(
                    "item_altered",
                    1,
                    f"the item's record does not match its collected event (event 1): {', '.join(differ)} changed",
                )
            )
    return problems


def event_rows(session: Session, item_ids: Sequence[int]) -> dict[int, list[dict]]:
    rows = session.execute(
        text(
            """SELECT item_id, seq, at, kind, actor, actor_agency, from_agency, from_custodian, to_agency, to_custodian,
                  note, CAST(details AS text) AS details, prev_hash, hash
           FROM custody_events WHERE item_id = ANY(CAST(:ids AS bigint[])) ORDER BY item_id, seq"""
        ),
        {"ids": list(item_ids)},
    ).all()
    events: dict[int, list[dict]] = {i: [] for i in item_ids}
    for r in rows:
        events[r.item_id].append({**r._mapping, "details": json.loads(r.details)})
    return events


def audited_hashes(session: Session, item_ids: Sequence[int]) -> dict[int, dict[int, str]]:
    """For each item, the hash of each custody event as the audit trail recorded it when it was written."""
    rows = session.execute(
        text(
            """SELECT CAST(entity_id AS bigint) AS item_id, CAST(details->>'event_seq' AS int) AS seq,
                  details->>'event_hash' AS hash
           FROM audit_log WHERE entity_type = 'evidence' AND entity_id = ANY(CAST(:ids AS text[]))
             AND details ? 'event_hash'"""
        ),
        {"ids": [str(i) for i in item_ids]},
    ).all()
    audited: dict[int, dict[int, str]] = {i: {} for i in item_ids}
    for r in rows:
        audited[r.item_id][r.seq] = r.hash
    return audited
