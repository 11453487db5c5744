"""Fixtures for the interoperability tests: a real API server (uvicorn on a free loopback port),
and a committed agency of its own with an operator and a token, so that outside clients (GDAL,
OWSLib, CoT parsers) read only this test's data."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest

from tests.api.factories import Factory
from tests.maps.conftest import api_server  # noqa: F401  (uvicorn on a free loopback port)


@dataclass
class CommittedAgency:
    code: str
    operator: str
    token: str
    factory: Factory

    def commit(self) -> None:
        """Commit what the factory wrote; its test gateways get a real (unused) broker password hash
        first, so the broker's password file stays loadable for the other tests."""
        from sqlalchemy import text

        from sensors.service import mosquitto_password_hash

        self.factory.session.execute(
            text("UPDATE gateways SET mqtt_password_hash = :h WHERE mqtt_password_hash = 'x' AND name = 'test gateway'"),
            {"h": mosquitto_password_hash(secrets.token_urlsafe(24))},
        )
        self.factory.session.commit()


@pytest.fixture
def committed_agency(engine):
    """A committed agency with an operator; ``factory`` writes into a session the caller commits."""
    from sqlalchemy.orm import Session

    with Session(engine, expire_on_commit=False) as session:
        factory = Factory(session)
        code = factory.agency()
        operator = factory.user(code)
        token = factory.token(operator)
        session.commit()
        yield CommittedAgency(code, operator, token, factory)
        session.rollback()
