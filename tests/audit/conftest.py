"""Fixtures for the audit tests: the patrol world (agencies, users, units, a TestClient on the
rolled-back test transaction) and a way to tamper with audit_log behind the trigger's back."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session


@pytest.fixture(autouse=True)
def own_jwt_secret(jwt_secret: str) -> str:
    return jwt_secret


@pytest.fixture
def tamper(db: Session) -> Callable[[str, dict | None], None]:
    """Run a statement on audit_log with the append-only trigger off (inside the test's transaction only)."""

    def run(sql: str, params: dict | None = None) -> None:
        db.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        db.execute(text(sql), params or {})
        db.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))

    return run
