"""The hash chain: entries are appended in the transaction of the change, numbered without gaps,
each chained to the one before; verify finds altered, removed and reordered entries and says where."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from audit import service as audit
from audit.service import GENESIS, Change


def append(db, n: int, agency: str = "TH-AUDITTEST") -> list[int]:
    return audit.record_many(
        session=db,
        changes=[
            Change("tester", "test.append", "test_entry", 1000 + i, [agency], {"note": f"entry {i}", "n": i, "x": 0.1})
            for i in range(n)
        ],
    )


def entry(db, seq: int):
    return db.execute(text("SELECT * FROM audit_log WHERE seq = :s"), {"s": seq}).one()


def test_entries_are_numbered_and_chained(db):
    seqs = append(db, 5)
    assert seqs == list(range(seqs[0], seqs[0] + 5))
    rows = db.execute(text("SELECT * FROM audit_log WHERE seq >= :s ORDER BY seq"), {"s": seqs[0] - 1}).all()
    for before, after in zip(rows, rows[1:]):
        assert after.seq == before.seq + 1 and after.prev_hash == before.hash
    first = rows[0] if seqs[0] == 1 else rows[1]
    if first.seq == 1:
        assert first.prev_hash == GENESIS
    # The stored hash is the SHA-256 of the canonical form of the stored fields.
    last = entry(db, seqs[-1])
    assert last.hash == audit.entry_hash(dict(last._mapping))
    assert json.loads(audit.canonical(dict(last._mapping)))["details"] == {"note": "entry 4", "n": 4, "x": 0.1}
    result = audit.verify(session=db)
    assert result.ok, result.problems
    assert result.head_seq == seqs[-1] and result.checked >= 5


def test_verify_finds_an_altered_entry(db, tamper):
    seqs = append(db, 5)
    victim = seqs[2]
    tamper(
        "UPDATE audit_log SET details = jsonb_set(details, '{note}', '\"nothing happened\"') WHERE seq = :s",
        {"s": victim},
    )
    result = audit.verify(session=db)
    assert [(p.kind, p.seq) for p in result.problems] == [("altered", victim)]
    assert f"entry {victim} was altered" in result.problems[0].message


def test_verify_finds_an_entry_rewritten_with_a_new_hash(db, tamper):
    """An editor who recomputes the edited entry's hash breaks the link to the next entry."""
    seqs = append(db, 4)
    victim = entry(db, seqs[1])
    forged = {**victim._mapping, "actor": "someone-else"}
    tamper(
        "UPDATE audit_log SET actor = 'someone-else', hash = :h WHERE seq = :s",
        {"h": audit.entry_hash(forged), "s": victim.seq},
    )
    result = audit.verify(session=db)
    assert [(p.kind, p.seq) for p in result.problems] == [("altered", victim.seq)]
    assert "rewritten" in result.problems[0].message


def test_verify_finds_a_removed_entry(db, tamper):
    seqs = append(db, 5)
    tamper("DELETE FROM audit_log WHERE seq = :s", {"s": seqs[2]})
    result = audit.verify(session=db)
    assert [(p.kind, p.seq) for p in result.problems] == [("removed", seqs[2])]
    assert f"entry {seqs[2]} is missing" in result.problems[0].message


def test_verify_finds_removed_entries_renumbered_to_close_the_gap(db, tamper):
    seqs = append(db, 5)
    tamper("DELETE FROM audit_log WHERE seq = :s", {"s": seqs[1]})
    tamper("UPDATE audit_log SET seq = seq - 1 WHERE seq > :s", {"s": seqs[1]})
    result = audit.verify(session=db)
    assert not result.ok
    assert result.problems[0].seq == seqs[1]


def test_verify_finds_reordered_entries(db, tamper):
    seqs = append(db, 5)
    a, b = seqs[1], seqs[3]
    # Swap two entries' places: each keeps its content and hash, under the other's number.
    tamper("UPDATE audit_log SET seq = :tmp WHERE seq = :a", {"a": a, "tmp": 10**15})
    tamper("UPDATE audit_log SET seq = :a WHERE seq = :b", {"a": a, "b": b})
    tamper("UPDATE audit_log SET seq = :b WHERE seq = :tmp", {"b": b, "tmp": 10**15})
    result = audit.verify(session=db)
    kinds = [(p.kind, p.seq) for p in result.problems]
    assert ("reordered", a) in kinds and ("reordered", b) in kinds
    assert all(kind == "reordered" for kind, _ in kinds), kinds
    message = next(p.message for p in result.problems if p.seq == a)
    assert f"entry {a} is the entry written as {b}" in message


def test_an_anchor_catches_entries_cut_from_the_end(db, tamper):
    seqs = append(db, 3)
    head = entry(db, seqs[-1])
    assert audit.verify(session=db, anchor=(head.seq, head.hash)).ok
    tamper("DELETE FROM audit_log WHERE seq >= :s", {"s": seqs[1]})
    # Without the anchor the shorter chain is consistent: that is what the anchor is for.
    assert audit.verify(session=db).ok
    result = audit.verify(session=db, anchor=(head.seq, head.hash))
    assert [(p.kind, p.seq) for p in result.problems] == [("truncated", head.seq)]


def test_verify_reports_progress_in_batches(db):
    append(db, 12)
    seen: list[int] = []
    result = audit.verify(session=db, progress=seen.append, batch=5)
    assert result.ok and seen[-1] == result.checked and seen == sorted(seen) and len(seen) >= 3


def test_the_trigger_refuses_update_delete_and_truncate(db):
    seq = append(db, 1)[0]
    for sql in (
        "UPDATE audit_log SET actor = 'x' WHERE seq = :s",
        "DELETE FROM audit_log WHERE seq = :s",
        "TRUNCATE audit_log",
    ):
        savepoint = db.begin_nested()
        with pytest.raises(DBAPIError, match="append-only"):
            db.execute(text(sql), {"s": seq})
        savepoint.rollback()
    assert entry(db, seq).actor == "tester"


def test_an_entry_rolls_back_with_its_change(db):
    savepoint = db.begin_nested()
    seq = append(db, 1)[0]
    savepoint.rollback()
    assert db.execute(text("SELECT count(*) FROM audit_log WHERE seq = :s"), {"s": seq}).scalar_one() == 0
    assert append(db, 1)[0] == seq  # the number is not lost: no gap


def test_concurrent_appends_never_fork_the_chain(engine):
    """Eight transactions append at once, each committing; the chain stays one line without gaps."""
    from core.db import session_scope

    agency = f"ZZ-A{uuid.uuid4().hex[:8].upper()}"
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for round_ in range(5):
                with session_scope(engine) as s:
                    s.execute(text("SELECT 1"))
                    if round_ == 0:
                        barrier.wait(timeout=30)  # all eight start appending together
                    audit.record_many(
                        session=s,
                        changes=[
                            Change(f"worker-{i}", "test.append", "test_entry", i, [agency], {"round": round_, "k": k})
                            for k in range(3)
                        ],
                    )
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with session_scope(engine) as s:
        rows = s.execute(
            text("SELECT seq, actor, details FROM audit_log WHERE agencies @> ARRAY[CAST(:a AS varchar)] ORDER BY seq"),
            {"a": agency},
        ).all()
        assert len(rows) == 8 * 5 * 3
        # Each transaction's three entries are consecutive: nothing interleaves inside one append.
        for i in range(0, len(rows), 3):
            group = rows[i : i + 3]
            assert len({r.actor for r in group}) == 1 and [r.details["k"] for r in group] == [0, 1, 2]
            assert group[2].seq - group[0].seq == 2
        result = audit.verify(session=s)
        assert result.ok, result.problems
        assert result.checked == s.execute(text("SELECT max(seq) FROM audit_log")).scalar_one()
