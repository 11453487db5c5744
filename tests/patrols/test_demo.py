"""The demo patrol units: each demo agency gets a few, in the right domain and place; seeding twice adds none."""

from __future__ import annotations

from sqlalchemy import text

from geo import service as geo_service
from patrols.demo import DEMO_UNITS, seed_demo_units


def test_demo_units_are_seeded_once(session):
    geo_service.ensure_agencies(session=session)
    expected = sum(len(units) for units in DEMO_UNITS.values())
    before = session.execute(text("SELECT count(*) FROM patrol_units")).scalar()
    assert (
        session.execute(
            text("SELECT count(*) FROM patrol_units WHERE agency_code = ANY(:a)"), {"a": list(DEMO_UNITS)}
        ).scalar()
        == 0
    )
    assert seed_demo_units(session=session) == expected
    assert seed_demo_units(session=session) == 0
    rows = session.execute(
        text(
            "SELECT agency_code, callsign, kind, status, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM patrol_units "
            "WHERE agency_code = ANY(:a)"
        ),
        {"a": list(DEMO_UNITS)},
    ).all()
    assert (
        len(rows) == expected
        and session.execute(text("SELECT count(*) FROM patrol_units")).scalar() == before + expected
    )
    seeded = {(r.agency_code, r.callsign): r for r in rows}
    for agency, units in DEMO_UNITS.items():
        for callsign, kind, _, (lon, lat), _, status in units:
            r = seeded[(agency, callsign)]
            assert (r.kind, r.status) == (kind, status)
            assert (round(r.lon, 4), round(r.lat, 4)) == (lon, lat)
    assert {r.kind for r in rows} == {"land", "maritime", "air"}
