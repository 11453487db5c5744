"""The API tests issue and forge tokens: each runs with a signing key of its own. The rest (one
rolled-back transaction per test, the app and TestClient on it, the factories) is in
``tests/conftest.py`` and ``tests/factories.py``."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def own_jwt_secret(jwt_secret: str) -> str:
    return jwt_secret
