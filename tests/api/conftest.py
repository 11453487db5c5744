"""Fixtures for the HTTP API tests: the test PostGIS (root ``engine``/``session`` fixtures), one
rolled-back transaction per test (the app's own commits become savepoints), a TestClient wired
to it, and small factories that write agencies, users, sensors, detections and alerts directly.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core.settings import get_settings
from tests.api.factories import Factory


@pytest.fixture
def db(session: Session) -> Session:
    """The root ``session`` fixture: one rolled-back transaction per test."""
    return session


@pytest.fixture(autouse=True)
def jwt_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    secret = secrets.token_urlsafe(48)
    monkeypatch.setenv("BW_JWT_SECRET", secret)
    monkeypatch.setenv("BW_ACCESS_TOKEN_MINUTES", "60")
    get_settings.cache_clear()
    yield secret
    get_settings.cache_clear()


@functools.cache
def shared_app() -> FastAPI:
    """One application for the run: building it (every router, every route) costs more than most
    tests. It holds no state of its own; each test gets fresh dependency overrides."""
    from api.app import create_app

    return create_app()


@pytest.fixture
def app(db: Session) -> Iterator[FastAPI]:
    from api.deps import get_session

    app = shared_app()

    def test_session() -> Iterator[Session]:
        # Same contract as get_session: commit (here: release the savepoint) or roll back.
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise

    app.dependency_overrides = {get_session: test_session}
    yield app
    app.dependency_overrides = {}


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def factory(db: Session) -> Factory:
    return Factory(db)
