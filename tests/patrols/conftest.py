"""Fixtures for the patrol tests: the API fixtures (one rolled-back transaction per test, a
TestClient on it, factories) and a small world of agencies, users and units."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from core.security import Principal
from patrols import schemas, units
from tests.api.conftest import client, db, factory, jwt_secret, shared_app  # noqa: F401  (shared fixtures)
from tests.api.factories import Factory

# Places (checked against the shipped state polygons and zones).
TH_LAND = (100.42, 6.63)          # Sadao, Thailand
MY_LAND = (100.45, 6.45)          # just south of the Thai–Malaysian line
TH_SEA = (99.9, 6.6)              # Thai territorial sea, inside the Malacca Straits Patrol sector
HIGH_SEA = (100.5, 3.0)           # Malacca Strait outside every territorial sea


@dataclass
class Agency:
    code: str
    admin: str
    operator: str
    admin_h: dict[str, str]
    operator_h: dict[str, str]
    units: dict[str, int] = field(default_factory=dict)

    @property
    def principal(self) -> Principal:
        return Principal(username=self.admin, agency_code=self.code, role="admin")


@dataclass
class World:
    factory: Factory
    session: Session

    def settle(self) -> None:
        """Keep what was written so far: a refused request rolls back to here, not further."""
        self.session.commit()

    def agency(self, country: str = "TH") -> Agency:
        code = self.factory.agency(country)
        admin, operator = self.factory.user(code, role="admin"), self.factory.user(code, role="operator")
        self.settle()
        return Agency(code, admin, operator, self.factory.headers(admin), self.factory.headers(operator))

    def unit(self, agency: Agency, place: tuple[float, float], *, kind: str = "land", speed: float = 60.0,
             device: bool = False) -> tuple[int, dict[str, str] | None]:
        """A unit at ``place``; with ``device`` also its patrol_unit user's headers."""
        username = self.factory.user(agency.code, role="patrol_unit") if device else None
        unit = units.create_unit(session=self.session, principal=agency.principal, unit_in=schemas.UnitCreate(
            callsign=f"U{uuid.uuid4().hex[:6]}", kind=kind, cruising_speed_kmh=speed, home_lon=place[0],
            home_lat=place[1], username=username))
        self.settle()
        return unit.id, (self.factory.headers(username) if username else None)


def app_on(db: Session, app: FastAPI) -> FastAPI:
    """``app`` on the test transaction; work after the response (broker files, live feed) too."""
    from api.deps import get_session, get_session_factory

    def test_session() -> Iterator[Session]:
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise

    @contextmanager
    def test_scope() -> Iterator[Session]:
        yield db
        db.commit()

    app.dependency_overrides = {get_session: test_session, get_session_factory: lambda: test_scope}
    return app


@pytest.fixture
def app(db: Session) -> Iterator[FastAPI]:
    app = app_on(db, shared_app())
    yield app
    app.dependency_overrides = {}


@pytest.fixture
def world(factory: Factory, db: Session) -> World:
    return World(factory, db)
