"""The real get_session (no override): a request commits when its route returns, rolls back when it raises."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from accounts import service
from api.app import create_app
from api.deps import SessionDep
from core import db as core_db
from core.errors import Conflict
from core.settings import Settings


@pytest.fixture
def real_sessions(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("BW_DATABASE_URL", Settings().test_database_url)
    core_db.get_engine.cache_clear()
    core_db._sessionmaker.cache_clear()
    yield engine
    core_db.get_engine().dispose()
    core_db.get_engine.cache_clear()
    core_db._sessionmaker.cache_clear()


def _exists(engine: Engine, code: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(text("SELECT 1 FROM agencies WHERE code = :c"), {"c": code}).scalar() is not None


def test_one_transaction_per_request(real_sessions: Engine):
    app = create_app()
    committed, rolled_back = f"ZZ-C{uuid.uuid4().hex[:8].upper()}", f"ZZ-R{uuid.uuid4().hex[:8].upper()}"

    @app.post("/_test/ok")
    def ok(session: SessionDep):
        service.create_agency(session=session, code=committed, country="ZZ", name="committed")
        return {"ok": True}

    @app.post("/_test/fail")
    def fail(session: SessionDep):
        service.create_agency(session=session, code=rolled_back, country="ZZ", name="rolled back")
        raise Conflict("something clashed after the write")

    try:
        with TestClient(app) as client:
            assert client.post("/_test/ok").status_code == 200
            response = client.post("/_test/fail")
        assert response.status_code == 409
        assert response.json() == {"error": "conflict", "message": "something clashed after the write", "details": {}}
        assert _exists(real_sessions, committed)
        assert not _exists(real_sessions, rolled_back)
    finally:
        with real_sessions.begin() as conn:
            conn.execute(text("DELETE FROM agencies WHERE code IN (:a, :b)"), {"a": committed, "b": rolled_back})
