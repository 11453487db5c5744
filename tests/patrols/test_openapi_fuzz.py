"""Schemathesis over the OpenAPI document: generated requests (valid and not) to every /api/v1
operation, as an authenticated admin with data in place, never get a server error and always
get the documented response shapes. Bounded: a fixed number of examples per operation."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from api.app import create_app
from tests.factories import TH_LAND, TH_SEA

EXAMPLES_PER_OPERATION = 20


APP = create_app()
schema = (
    schemathesis.openapi.from_asgi("/openapi.json", APP)
    .include(path_regex=r"^/api/v1/")
    # An endless stream by design; tests/patrols/test_live.py covers it.
    .exclude(path="/api/v1/live")
)


@pytest.fixture(autouse=True)
def on_test_transaction(app):
    """The fuzzed application runs on this test's rolled-back transaction, like the ``app`` fixture."""
    APP.dependency_overrides = app.dependency_overrides
    yield
    APP.dependency_overrides = {}


@pytest.fixture
def fuzz_headers(world, client, on_test_transaction):
    a = world.agency()
    world.unit(a, TH_LAND)
    world.unit(a, TH_SEA, kind="maritime")
    for place in (TH_LAND, TH_SEA):
        client.post("/api/v1/incidents", json={"title": "seed", "lon": place[0], "lat": place[1]}, headers=a.admin_h)
    world.settle()
    return a.admin_h


PATROL_PATHS = (
    "/api/v1/units",
    "/api/v1/incidents",
    "/api/v1/taskings",
    "/api/v1/joint-patrols",
    "/api/v1/coverage",
    "/api/v1/sharing",
)
# Every operation: no server error. Patrol operations also: documented status codes, content types
# and bodies. (Schema-valid input may still be refused for what a schema cannot say, e.g. an
# unknown cursor or a unit of another agency; unknown query parameters are ignored.)
CONFORMANCE = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_documented_responses(case, fuzz_headers):
    response = case.call(headers=fuzz_headers)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    if case.operation.path.startswith(PATROL_PATHS):
        case.validate_response(response, checks=CONFORMANCE, headers=fuzz_headers)
