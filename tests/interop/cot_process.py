"""`borderwatch cot-serve` as a real TCP server for the CoT tests: started on a free loopback port
with extra settings in its environment, answered when it accepts connections, stopped after."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.conftest import REPO_ROOT, free_port


@contextmanager
def cot_serve(name: str, env: dict[str, str] | None = None) -> Iterator[int]:
    """Yield the port of a running ``cot-serve`` (log: ``.run/test/<name>.log``)."""
    port = free_port()
    log_path = REPO_ROOT / ".run" / "test" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "cot-serve", "--port", str(port), "--interval", "0.2"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env={**os.environ, **(env or {})},
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"cot-serve did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
