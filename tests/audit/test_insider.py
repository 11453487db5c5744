"""The insider: the API's and the ingest worker's database roles may append to the audit trail and
the custody chains but never rewrite them; the role that owns the tables can, and a chain it
rewrote and recomputed is caught by the signed checkpoints exported before."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from audit import checkpoints as signed
from audit import service as audit
from audit.models import AuditEntry
from audit.service import Change
from core.db import session_scope

APPEND_ONLY = ("audit_log", "custody_events", "audit_checkpoints")
REWRITES = (
    "UPDATE {t} SET {c} = {c}",
    "DELETE FROM {t}",
    "TRUNCATE {t}",
    "ALTER TABLE {t} DISABLE TRIGGER ALL",
    "DROP TABLE {t}",
)
COLUMN = {"audit_log": "actor", "custody_events": "note", "audit_checkpoints": "node"}


@pytest.fixture(scope="module")
def runtime_engines(runtime_urls: dict[str, str]):
    engines = {name: create_engine(url, pool_pre_ping=True) for name, url in runtime_urls.items()}
    yield engines
    for eng in engines.values():
        eng.dispose()


def _refused(eng: Engine, sql: str) -> str:
    with eng.connect() as conn, pytest.raises(DBAPIError) as caught:
        conn.execute(text(sql))
    return str(caught.value.orig)


@pytest.mark.parametrize("role", ["api", "ingest"])
def test_runtime_roles_append_but_never_rewrite(runtime_engines, role):
    eng = runtime_engines[role]
    with eng.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar_one().endswith(role)
    # Appending (and reading) is what the roles are for.
    with session_scope(eng) as s:
        (seq,) = audit.record_many(session=s, changes=[Change(f"insider-{role}", "test.append", "test", 1, ["TH-X"])])
    with eng.connect() as conn:
        assert conn.execute(text("SELECT actor FROM audit_log WHERE seq = :s"), {"s": seq}).scalar_one() == (
            f"insider-{role}"
        )
    for table in APPEND_ONLY:
        for statement in REWRITES:
            message = _refused(eng, statement.format(t=table, c=COLUMN[table]))
            # Refused by the rights, not by the trigger a table's owner could switch off.
            assert "permission denied" in message or "must be owner" in message, (table, statement, message)
            assert "append-only" not in message


def test_runtime_roles_create_no_tables_and_ingest_reads_no_accounts(runtime_engines):
    for eng in runtime_engines.values():
        assert "permission denied" in _refused(eng, "CREATE TABLE insider_t (x int)")
        assert "must be owner" in _refused(
            eng, "ALTER FUNCTION bw_ensure_detection_partitions(date, int) OWNER TO CURRENT_USER"
        )
    assert "permission denied" in _refused(runtime_engines["ingest"], "SELECT password_hash FROM users")
    # The worker still gets next month's partitions, made with their owner's rights.
    with runtime_engines["ingest"].connect() as conn:
        conn.execute(text("SELECT bw_ensure_detection_partitions(current_date, 3)"))
        owners = conn.execute(
            text("SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relname LIKE 'detections_%'")
        ).scalars()
        assert set(owners) == {"borderwatch"}
        conn.rollback()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", "audit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def _rewrite_from(engine: Engine, seq: int, details: dict) -> None:
    """What the owner role can do: trigger off, entry ``seq`` edited, the chain recomputed to the head."""
    with session_scope(engine) as s:
        s.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        rows = s.execute(
            text(
                "SELECT seq, at, agencies, actor, action, entity_type, entity_id, CAST(details AS text) AS details, "
                "prev_hash, hash FROM audit_log WHERE seq >= :s ORDER BY seq"
            ),
            {"s": seq},
        ).all()
        prev = rows[0].prev_hash
        for row in rows:
            entry = {**row._mapping, "details": details if row.seq == seq else json.loads(row.details)}
            entry["prev_hash"] = prev
            entry["hash"] = prev = audit.entry_hash(entry)
            s.execute(
                text("UPDATE audit_log SET details = CAST(:d AS jsonb), prev_hash = :p, hash = :h WHERE seq = :s"),
                {"d": json.dumps(entry["details"]), "p": entry["prev_hash"], "h": entry["hash"], "s": row.seq},
            )
        s.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))


def test_a_chain_rewritten_by_the_owner_is_caught_by_an_exported_checkpoint(engine, tmp_path):
    key, exported = tmp_path / "keys" / "signing.key", tmp_path / "checkpoints.jsonl"
    made = _cli("keygen", f"--key-file={key}")
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and signed.public_path(key).exists()
    assert _cli("keygen", f"--key-file={key}").returncode == 1  # an existing key is kept

    with session_scope(engine) as s:
        seqs = audit.record_many(
            session=s, changes=[Change("insider", "test.append", "test", i, ["TH-X"], {"n": i}) for i in range(3)]
        )
    target = seqs[1]
    with session_scope(engine) as s:
        originals = [
            dict(r._mapping) for r in s.execute(text("SELECT * FROM audit_log WHERE seq >= :s"), {"s": target})
        ]

    made = _cli("checkpoint", f"--key-file={key}")
    assert made.returncode == 0, made.stderr
    assert f"checkpoint at entry {seqs[-1]}" in made.stderr
    made = _cli("export-checkpoints", str(exported), f"--public-key={signed.public_path(key)}")
    assert made.returncode == 0, made.stderr
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert lines[-1]["seq"] == seqs[-1] and lines[-1]["public_key"]

    pinned = ("verify", f"--checkpoints={exported}", f"--public-key={signed.public_path(key)}")
    ok = _cli(*pinned)
    assert ok.returncode == 0, ok.stderr
    assert "matches its" in ok.stderr

    _rewrite_from(engine, target, {"n": 1, "note": "nothing happened"})
    try:
        plain = _cli("verify")
        assert plain.returncode == 0, plain.stderr  # the recomputed chain is consistent in itself
        caught = _cli(*pinned)
        assert caught.returncode == 1, caught.stderr
        assert f"rewritten at {seqs[-1]}: entry {seqs[-1]} does not have the hash signed" in caught.stderr
        # A checkpoint file edited to match the rewritten chain no longer verifies.
        with session_scope(engine) as s:
            new_head = s.execute(text("SELECT hash FROM audit_log WHERE seq = :s"), {"s": seqs[-1]}).scalar_one()
        forged = tmp_path / "forged.jsonl"
        forged.write_text(json.dumps({**lines[-1], "hash": new_head}) + "\n")
        caught = _cli("verify", f"--checkpoints={forged}", f"--public-key={signed.public_path(key)}")
        assert caught.returncode == 1 and f"forged at {seqs[-1]}" in caught.stderr
    finally:
        with session_scope(engine) as s:
            s.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
            s.execute(text("DELETE FROM audit_log WHERE seq >= :s"), {"s": target})
            s.execute(insert(AuditEntry), originals)
            s.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
    assert _cli(*pinned).returncode == 0


def test_the_key_must_stay_private(tmp_path, db):
    key = tmp_path / "signing.key"
    signed.generate_key(key)
    key.chmod(0o644)
    with pytest.raises(signed.SigningKeyExposed):
        signed.load_private_key(key)
    key.chmod(0o600)
    audit.record(session=db, actor="t", action="test.append", entity_type="test", entity_id=1, agencies=["TH-X"])
    checkpoint = signed.write_checkpoint(session=db, key=signed.load_private_key(key), node="node-a")
    assert signed.stored(session=db, since_seq=checkpoint.seq - 1)[-1] == checkpoint
    other = tmp_path / "other.key"
    signed.generate_key(other)
    findings = signed.check(session=db, checkpoints=[checkpoint], trusted=[signed.load_public_key(other)])
    assert [f.kind for f in findings] == ["unknown_key"]
    assert signed.check(session=db, checkpoints=[checkpoint], trusted=[signed.load_public_key(key)]) == []
