"""Detection retention: drop the monthly partitions of ``detections`` wholly older than the policy.

Each partition is detached with ``ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY`` (no lock
that blocks the ingest worker's inserts, which is why it runs outside a transaction, on an
autocommit connection of its own) and then dropped; the ``detection_keys`` rows of the dropped
months are deleted in bounded chunks, one short transaction each. A detach interrupted half-way
(the partition is left "detach pending") is finished with ``DETACH PARTITION ... FINALIZE``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.db import session_scope

log = logging.getLogger("borderwatch.retention")
# One runner at a time across workers (pg_try_advisory_lock; the per-track locks use other keys).
_RUNNER_LOCK = 0x62770001

_PARTITIONS = text(
    r"""
    SELECT c.relname AS name, i.inhdetachpending AS pending,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'detections'::regclass
    ORDER BY upper
    """
)


@dataclass
class Partition:
    name: str
    upper: datetime
    pending: bool
    rows: int = 0


@dataclass
class RetentionPlan:
    """What a run drops: the partitions whose upper bound lies before ``cutoff``."""

    keep_days: int
    cutoff: datetime
    partitions: list[Partition] = field(default_factory=list)
    keys: int = 0

    @property
    def keys_before(self) -> datetime | None:
        """Keys older than this belong to dropped partitions (the newest dropped month's end)."""
        return max((p.upper for p in self.partitions), default=None)


@dataclass
class RetentionReport:
    partitions_dropped: list[str] = field(default_factory=list)
    rows_dropped: int = 0
    keys_deleted: int = 0
    dead_letters_deleted: int = 0


class PolicyTooShort(ValueError):
    """The policy would drop months the ingest worker still accepts detections for."""


def plan(engine: Engine, *, keep_days: int, min_days: int = 1) -> RetentionPlan:
    """The partitions and keys a run with ``keep_days`` would remove (reads only). ``min_days`` is
    the shortest policy allowed (the ingest worker's accepted detection age)."""
    if keep_days < max(1, min_days):
        raise PolicyTooShort(
            f"keep at least {max(1, min_days)} days: the ingest worker accepts detections up to "
            f"{min_days} days old (BW_MAX_DETECTION_AGE_DAYS), and their partitions must stay"
        )
    with session_scope(engine) as session:
        cutoff = session.execute(text("SELECT now() - make_interval(days => :d)"), {"d": keep_days}).scalar_one()
        result = RetentionPlan(keep_days, cutoff)
        for row in session.execute(_PARTITIONS):
            if row.upper is not None and row.upper <= cutoff:
                rows = session.execute(text(f'SELECT count(*) FROM "{row.name}"')).scalar_one()
                result.partitions.append(Partition(row.name, row.upper, row.pending, rows))
        if result.keys_before is not None:
            result.keys = session.execute(
                text("SELECT count(*) FROM detection_keys WHERE observed_at < :t"), {"t": result.keys_before}
            ).scalar_one()
    return result


def apply(
    engine: Engine, retention: RetentionPlan, *, chunk: int = 10_000, progress: Callable[[str, int], None] | None = None
) -> RetentionReport:
    """Detach and drop the planned partitions, then delete their keys in chunks of ``chunk``.
    ``progress(what, n)`` is told after each partition (n rows) and each chunk (n keys)."""
    report = RetentionReport()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for part in retention.partitions:
            mode = "FINALIZE" if part.pending else "CONCURRENTLY"
            conn.execute(text(f'ALTER TABLE detections DETACH PARTITION "{part.name}" {mode}'))
            conn.execute(text(f'DROP TABLE "{part.name}"'))
            report.partitions_dropped.append(part.name)
            report.rows_dropped += part.rows
            if progress:
                progress(part.name, part.rows)
    before = retention.keys_before
    while before is not None:
        with session_scope(engine) as session:
            deleted = session.execute(
                text(
                    "DELETE FROM detection_keys WHERE ctid = ANY (ARRAY("
                    "SELECT ctid FROM detection_keys WHERE observed_at < :t LIMIT :n))"
                ),
                {"t": before, "n": chunk},
            ).rowcount
        report.keys_deleted += deleted
        if progress:
            progress("detection_keys", deleted)
        if deleted < chunk:
            break
    return report


def purge_dead_letters(
    engine: Engine, *, keep_days: int, chunk: int = 10_000, progress: Callable[[str, int], None] | None = None
) -> int:
    """Delete dead letters (and their per-gateway day counts) older than ``keep_days``, in chunks of
    ``chunk`` rows, one short transaction each; returns how many letters were deleted."""
    deleted_total = 0
    while True:
        with session_scope(engine) as session:
            deleted = session.execute(
                text(
                    "DELETE FROM dead_letters WHERE id = ANY (ARRAY(SELECT id FROM dead_letters "
                    "WHERE received_at < now() - make_interval(days => :d) LIMIT :n))"
                ),
                {"d": keep_days, "n": chunk},
            ).rowcount
        deleted_total += deleted
        if progress:
            progress("dead_letters", deleted)
        if deleted < chunk:
            break
    with session_scope(engine) as session:
        session.execute(
            text("DELETE FROM dead_letter_counts WHERE day < CAST(now() AT TIME ZONE 'UTC' AS date) - :d"),
            {"d": keep_days},
        )
    return deleted_total


def run_once(
    engine: Engine, *, keep_days: int, min_days: int, dead_letter_days: int | None = None
) -> RetentionReport | None:
    """One timed run: apply the policy (and the dead letters', if given) unless another process is
    running it (then None)."""
    with engine.connect() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _RUNNER_LOCK}).scalar():
            return None
        try:
            conn.commit()
            todo = plan(engine, keep_days=keep_days, min_days=min_days)
            report = apply(engine, todo) if todo.partitions else RetentionReport()
            if dead_letter_days is not None:
                report.dead_letters_deleted = purge_dead_letters(engine, keep_days=dead_letter_days)
            return report
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _RUNNER_LOCK})
            conn.commit()


def start_timer(
    engine: Engine,
    *,
    interval_s: float,
    keep_days: int,
    min_days: int,
    stop: threading.Event,
    dead_letter_days: int | None = None,
) -> threading.Thread:
    """Run the policy every ``interval_s`` in a thread of its own (a detach may wait for long
    transactions; the batch loop must not wait with it) until ``stop`` is set."""

    def loop() -> None:
        while not stop.wait(interval_s):
            try:
                report = run_once(engine, keep_days=keep_days, min_days=min_days, dead_letter_days=dead_letter_days)
            except Exception:  # a failed run is retried at the next tick; ingest goes on
                log.exception("retention run failed")
                continue
            if report and report.partitions_dropped:
                log.info(
                    "retention dropped %s (%d detections), %d keys",
                    ", ".join(report.partitions_dropped),
                    report.rows_dropped,
                    report.keys_deleted,
                )
            if report and report.dead_letters_deleted:
                log.info("retention deleted %d dead letters", report.dead_letters_deleted)

    thread = threading.Thread(target=loop, name="bw-retention", daemon=True)
    thread.start()
    return thread
