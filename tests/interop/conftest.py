"""Fixtures for the interoperability tests: a real API server (uvicorn on a free loopback port),
and a committed agency of its own with an operator and a token, so that outside clients (GDAL,
OWSLib, CoT parsers) read only this test's data."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.factories import Factory


@dataclass
class CommittedAgency:
    code: str
    operator: str
    token: str
    factory: Factory

    def commit(self) -> None:
        """Commit what the factory wrote (its test gateways have no broker credential: the broker's
        password file leaves them out)."""
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
