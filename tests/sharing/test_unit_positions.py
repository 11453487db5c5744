"""A partner sees another agency's unit only where they share a joint patrol sector: its track only
inside the sector and within a joint patrol's or an agreement's window (``patrols.positions``); its
current position (unit API, map layer, live feed and Cursor-on-Target, which reads the live feed's
changes) only while it is inside the sector."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from tests.factories import now

API = "/api/v1"
SECTOR = (114.0, 10.0, 114.2, 10.2)
IN_SECTOR = (114.1, 10.1)
HOME = (113.5, 10.1)  # the owner's own waters, outside the sector


def at(minutes_ago: int) -> datetime:
    return now() - timedelta(minutes=minutes_ago)


class Scene:
    """A's unit patrols at home, then inside the sector it shares with B (and C, who is no member)."""

    def __init__(self, client, world, factory):
        self.client, self.world = client, world
        self.a, self.b, self.c = world.agency("TH"), world.agency("MY"), world.agency("ID")
        self.sector = factory.zone(
            self.a.code, members=[self.a.code, self.b.code], kind="joint_patrol_sector", box=SECTOR
        )
        self.unit, _ = world.unit(self.a, HOME, kind="maritime")
        world.settle()
        self.fixes = {
            "home_before": (HOME, 200),
            "sector_before": (IN_SECTOR, 180),
            "sector_during": (IN_SECTOR, 90),
            "home_during": (HOME, 80),
            "sector_during_2": ((114.15, 10.15), 60),
            "sector_after": ((114.05, 10.05), 10),
        }

    def report(self, names) -> None:
        positions = [
            {"client_id": name, "observed_at": at(ago).isoformat(), "lon": place[0], "lat": place[1]}
            for name, (place, ago) in self.fixes.items()
            if name in names
        ]
        r = self.client.post(
            f"{API}/units/{self.unit}/positions", json={"positions": positions}, headers=self.a.operator_h
        )
        assert r.status_code == 200, r.text

    def track(self, agency) -> set[str] | int:
        r = self.client.get(f"{API}/units/{self.unit}/positions", headers=agency.operator_h)
        if r.status_code != 200:
            return r.status_code
        return {f["properties"]["client_id"] for f in r.json()["features"]}

    def joint_patrol(self, agencies, start: int, end: int, zone: int | None = None) -> None:
        self.world.session.execute(
            text(
                "INSERT INTO joint_patrols (owner_agency, name, zone_id, agencies, starts_at, ends_at, created_by) "
                "VALUES (:owner, 'night patrol', :zone, CAST(:agencies AS varchar[]), :start, :end, 'test')"
            ),
            {
                "owner": self.a.code,
                "zone": zone or self.sector,
                "agencies": agencies,
                "start": at(start),
                "end": at(end),
            },
        )
        self.world.settle()

    def agreement(self, to, start: int, end: int | None, *, to_sector: bool = False, withdrawn: bool = False) -> None:
        self.world.session.execute(
            text(
                "INSERT INTO sharing_agreements (from_agency, to_agency, to_sector_zone_id, alert_kinds, valid_from, "
                "valid_until, purpose, created_by, withdrawn_at, withdrawn_by) "
                "VALUES (:a, :to, :sector, ARRAY['crossing'], :start, :end, 'joint operations', 'test', "
                ":withdrawn, :withdrawn_by)"
            ),
            {
                "a": self.a.code,
                "to": None if to_sector else to.code,
                "sector": self.sector if to_sector else None,
                "start": at(start),
                "end": at(end) if end is not None else None,
                "withdrawn": now() if withdrawn else None,
                "withdrawn_by": "test" if withdrawn else None,
            },
        )
        self.world.settle()


@pytest.fixture
def scene(client, world, factory) -> Scene:
    s = Scene(client, world, factory)
    s.report(s.fixes)
    return s


ALL = {"home_before", "sector_before", "sector_during", "home_during", "sector_during_2", "sector_after"}


def test_the_owner_sees_the_whole_track(scene):
    assert scene.track(scene.a) == ALL


def test_without_a_joint_patrol_or_agreement_a_partner_sees_the_unit_but_no_track(scene):
    assert scene.client.get(f"{API}/units/{scene.unit}", headers=scene.b.operator_h).status_code == 200
    assert scene.track(scene.b) == set()
    # Not a member of the sector: not even the unit.
    assert scene.track(scene.c) == 404


def test_a_joint_patrol_opens_the_sector_for_its_window_only(scene):
    scene.joint_patrol([scene.a.code, scene.b.code], start=120, end=30)
    assert scene.track(scene.b) == {"sector_during", "sector_during_2"}


def test_a_joint_patrol_of_other_agencies_opens_nothing(scene):
    scene.joint_patrol([scene.a.code, scene.c.code], start=300, end=1)
    assert scene.track(scene.b) == set()


def test_an_agreement_in_force_opens_the_sector_for_its_window(scene):
    scene.agreement(scene.b, start=120, end=None)
    assert scene.track(scene.b) == {"sector_during", "sector_during_2", "sector_after"}


def test_an_agreement_to_the_sector_counts_and_a_withdrawn_one_does_not(scene):
    scene.agreement(scene.b, start=300, end=None, withdrawn=True)
    assert scene.track(scene.b) == set()
    scene.agreement(scene.b, start=70, end=None, to_sector=True)
    assert scene.track(scene.b) == {"sector_during_2", "sector_after"}


def test_an_agreement_past_its_end_releases_nothing_more(scene):
    # As for alerts and incidents: an agreement that has ended releases nothing from then on.
    scene.agreement(scene.b, start=300, end=5)
    assert scene.track(scene.b) == set()


def test_the_time_range_cannot_widen_what_is_shared(scene):
    scene.joint_patrol([scene.a.code, scene.b.code], start=120, end=30)
    r = scene.client.get(
        f"{API}/units/{scene.unit}/positions",
        params={"start": at(1000).isoformat(), "end": now().isoformat()},
        headers=scene.b.operator_h,
    )
    assert {f["properties"]["client_id"] for f in r.json()["features"]} == {"sector_during", "sector_during_2"}


def test_current_position_paths_show_the_unit_only_inside_the_sector(client, world, factory):
    s = Scene(client, world, factory)
    s.joint_patrol([s.a.code, s.b.code], start=300, end=-60)

    def seen(agency) -> dict:
        features = client.get(f"{API}/features/units", params={"limit": 1000}, headers=agency.operator_h).json()
        in_layer = {f["id"]: f["geometry"]["coordinates"] for f in features["features"]}
        cot = client.get(f"{API}/cot", params={"types": "unit"}, headers=agency.operator_h).text
        api = client.get(f"{API}/units/{s.unit}", headers=agency.operator_h)
        return {
            "layer": in_layer.get(s.unit),
            "cot": f"borderwatch.unit.{s.unit}" in cot,
            "api": api.json()["geometry"]["coordinates"] if api.status_code == 200 else None,
        }

    s.report({"home_before"})
    assert seen(s.b) == {"layer": None, "cot": False, "api": None}
    assert seen(s.a)["cot"] is True
    s.report({"sector_during"})
    assert seen(s.b) == {"layer": list(IN_SECTOR), "cot": True, "api": list(IN_SECTOR)}
    s.report({"home_during"})
    assert seen(s.b) == {"layer": None, "cot": False, "api": None}
    assert s.track(s.b) == 404
