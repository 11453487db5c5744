"""Fixtures for the evidence tests: an evidence directory of the test's own, and a way to tamper with
custody_events behind the append-only trigger's back."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.settings import get_settings


@pytest.fixture(autouse=True)
def evidence_dir(tmp_path, monkeypatch: pytest.MonkeyPatch, jwt_secret):
    path = tmp_path / "evidence"
    monkeypatch.setenv("BW_EVIDENCE_DIR", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


@pytest.fixture
def tamper(db: Session) -> Callable[[str | tuple[str, ...], dict | None], None]:
    """Run statements with the append-only trigger off (inside the test's transaction only)."""

    def run(sql: str | tuple[str, ...], params: dict | None = None) -> None:
        db.execute(text("ALTER TABLE custody_events DISABLE TRIGGER custody_events_append_only"))
        for statement in (sql,) if isinstance(sql, str) else sql:
            db.execute(text(statement), params or {})
        db.execute(text("ALTER TABLE custody_events ENABLE TRIGGER custody_events_append_only"))

    return run
