"""Fixtures for the alert rule tests: the shipped Thai-Malaysian border as shapely geometry."""

from __future__ import annotations

import pytest
from shapely import wkt
from sqlalchemy import text


@pytest.fixture(scope="module")
def border(engine):
    with engine.connect() as conn:
        segments = conn.execute(
            text(
                "SELECT id, left_state, right_state, ST_AsText(geom) AS g, ST_Length(geom::geography) AS m "
                "FROM border_segments"
            )
        ).all()
        states = dict(conn.execute(text("SELECT code, ST_AsText(geom) FROM states WHERE code IN ('TH', 'MY')")).all())
    th_my = [s for s in segments if {s.left_state, s.right_state} == {"TH", "MY"}]
    main = max(th_my, key=lambda s: s.m)
    return {
        "line": wkt.loads(main.g),
        "id": main.id,
        "all": [wkt.loads(s.g) for s in segments],
        "states": {code: wkt.loads(g) for code, g in states.items()},
    }
