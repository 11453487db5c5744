"""Fixtures for the feature layer tests: the rolled-back test transaction and its factory."""

from __future__ import annotations

from tests.api.conftest import db, factory  # noqa: F401  (shared fixtures)
