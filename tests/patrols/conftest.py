"""Fixtures for the patrol tests (and the suites about an incident's parts under it): each test
runs with a signing key of its own, and a joint patrol sector shared by two agencies' boats. The world of agencies, users and units is ``tests.factories.World``."""

from __future__ import annotations

import pytest

from tests.factories import HIGH_SEA


@pytest.fixture(autouse=True)
def own_jwt_secret(jwt_secret: str) -> str:
    return jwt_secret


@pytest.fixture
def sector(world, factory):
    a, b, c = world.agency("TH"), world.agency("MY"), world.agency("ID")
    box = (HIGH_SEA[0] - 0.5, HIGH_SEA[1] - 0.5, HIGH_SEA[0] + 0.5, HIGH_SEA[1] + 0.5)
    zone = factory.zone(a.code, members=[a.code, b.code], kind="joint_patrol_sector", box=box)
    world.settle()
    return {
        "a": a,
        "b": b,
        "c": c,
        "zone": zone,
        "a_boat": world.unit(a, HIGH_SEA, kind="maritime")[0],
        "b_boat": world.unit(b, HIGH_SEA, kind="maritime")[0],
        "c_boat": world.unit(c, HIGH_SEA, kind="maritime")[0],
    }
