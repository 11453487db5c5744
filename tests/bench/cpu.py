"""CPU time spent by each process of the pipeline while a benchmark step runs.

Throughput on a small machine is a question of where the CPU goes: the benchmark reports, per
message, the CPU seconds of this Python process, of the PostgreSQL cluster (postmaster and
every backend, live or exited) and of the Mosquitto broker, read from /proc (Linux).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def _own_and_children(pid: int) -> float:
    """utime + stime of the process, plus cutime + cstime of its waited-for children."""
    f = _stat(pid)
    return 0.0 if f is None else sum(int(x) for x in f[11:15]) / _TICK


@dataclass
class Sample:
    python: float
    postgres: float
    mosquitto: float
    wall: float


class CpuMeter:
    """Snapshots of CPU seconds; ``per_message(a, b, n)`` gives microseconds per message."""

    def __init__(self, database_url: str, mosquitto_dir: str | None) -> None:
        with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        f = _stat(backend)
        self.postmaster = int(f[1]) if f else None
        self.mosquitto = None
        pid_file = Path(mosquitto_dir or "", "mosquitto.pid")
        if mosquitto_dir and pid_file.exists():
            self.mosquitto = int(pid_file.read_text().split()[0])

    def _postgres(self) -> float:
        if self.postmaster is None:
            return 0.0
        total = _own_and_children(self.postmaster)
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                f = _stat(int(entry.name))
                if f is not None and int(f[1]) == self.postmaster:
                    total += sum(int(x) for x in f[11:15]) / _TICK
        return total

    def sample(self) -> Sample:
        return Sample(
            python=time.process_time(),
            postgres=self._postgres(),
            mosquitto=_own_and_children(self.mosquitto) if self.mosquitto else 0.0,
            wall=time.perf_counter(),
        )

    @staticmethod
    def per_message(a: Sample, b: Sample, n: int) -> dict[str, float]:
        us = lambda x: round(1e6 * x / n, 1)  # noqa: E731
        return {
            "python_us": us(b.python - a.python),
            "postgres_us": us(b.postgres - a.postgres),
            "mosquitto_us": us(b.mosquitto - a.mosquitto),
            "wall_us": us(b.wall - a.wall),
        }
