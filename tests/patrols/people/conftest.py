"""The patrol world (agencies, users, units, a TestClient on the rolled-back test transaction)."""

from tests.patrols.conftest import app, world  # noqa: F401  (shared fixtures)
from tests.api.conftest import client, db, factory, jwt_secret  # noqa: F401
