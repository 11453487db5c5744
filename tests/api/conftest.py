"""Fixtures for the HTTP API tests: the real PostGIS of ``BW_TEST_DATABASE_URL``, one rolled-back
transaction per test (the app's own commits become savepoints), a TestClient wired to it, and
small factories that write agencies, users, sensors, detections and alerts directly.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.settings import Settings, get_settings
from tests.api.factories import Factory


@pytest.fixture(scope="session")
def api_engine() -> Iterator[Engine]:
    """The test database with the schema at Alembic head (upgraded once if it is not)."""
    url = Settings().test_database_url
    if not url:
        pytest.skip("BW_TEST_DATABASE_URL is not set")
    eng = create_engine(url, pool_pre_ping=True)
    with eng.connect() as conn:
        has_postgis = conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")).scalar()
        if not has_postgis:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            conn.commit()
        current = None
        if conn.execute(text("SELECT to_regclass('alembic_version')")).scalar():
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    from alembic import command
    from alembic.script import ScriptDirectory

    from core.cli import _alembic_config

    config = _alembic_config(url)
    if current not in ScriptDirectory.from_config(config).get_heads():
        command.upgrade(config, "head")
    yield eng
    eng.dispose()


@pytest.fixture
def db(api_engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test."""
    connection = api_engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture(autouse=True)
def jwt_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    secret = secrets.token_urlsafe(48)
    monkeypatch.setenv("BW_JWT_SECRET", secret)
    monkeypatch.setenv("BW_ACCESS_TOKEN_MINUTES", "60")
    get_settings.cache_clear()
    yield secret
    get_settings.cache_clear()


@pytest.fixture
def app(db: Session) -> FastAPI:
    from api.app import create_app
    from api.deps import get_session

    app = create_app()

    def test_session() -> Iterator[Session]:
        # Same contract as get_session: commit (here: release the savepoint) or roll back.
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise

    app.dependency_overrides[get_session] = test_session
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def factory(db: Session) -> Factory:
    return Factory(db)
