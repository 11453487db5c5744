"""Fixtures for the sharing tests: one module-scoped transaction (rolled back at the module's end)
holding a matrix of agencies, places, alerts, incidents and agreements, and a TestClient on it.

Every item carries a personal-data token (``PII0001X``...) in each of its personal fields, so a
test can tell from any response body, whatever its format, whose personal data it gives away.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.security import Principal
from patrols import schemas as patrol_schemas
from patrols import units as patrol_units
from tests.conftest import app_on, rolled_back_session
from tests.factories import Factory

# Places far from the shipped borders' test sites: two zones, one segment, one sector, one open-sea point.
BOXES = {"Z1": (110.0, 10.0, 110.2, 10.2), "Z2": (111.0, 10.0, 111.2, 10.2), "J": (114.0, 10.0, 114.2, 10.2)}
SEGMENT_LINE = [(112.0, 10.0), (112.0, 10.4)]
POINTS = {"Z1": (110.1, 10.1), "Z2": (111.1, 10.1), "S1": (112.02, 10.2), "far": (113.0, 10.1)}
KINDS = ("crossing", "zone_entry", "watchlist_hit", "dark_vessel")
CATEGORIES = ("drugs", "piracy", "other")
AGES = {"old": timedelta(hours=6), "recent": timedelta(minutes=20)}
PERSONS_PER_INCIDENT = 5


def tasking_note(token: str) -> str:
    """A tasking's note: for the two agencies party to the tasking, and for readers of the incident's
    personal data (a token of its own, not matched as the item's)."""
    return f"meet informant at the pier, ref {token.replace('PII', 'NOTE')}"


@dataclass
class Item:
    id: int
    type: str  # alert | incident
    owner: str  # A | B | C
    what: str  # alert kind or incident category
    place: str  # Z1 | Z2 | S1 | far
    at: datetime
    token: str


@dataclass
class Agreement:
    id: int
    owner: str
    to: str | None
    sector_members: tuple[str, ...]
    kinds: tuple[str, ...]
    categories: tuple[str, ...]
    places: tuple[str, ...]  # zone and segment labels; empty = anywhere
    valid_from: datetime
    valid_until: datetime | None
    personal: bool
    withdrawn: bool = False


@dataclass
class Matrix:
    session: Session
    client: TestClient
    agencies: dict[str, str]  # label -> agency code
    headers: dict[str, dict[str, str]]  # label -> operator headers
    admin_headers: dict[str, dict[str, str]]
    usernames: dict[str, str]
    zones: dict[str, int]
    segment: int
    now: datetime
    units: dict[str, int] = field(default_factory=dict)
    items: list[Item] = field(default_factory=list)
    agreements: list[Agreement] = field(default_factory=list)

    # -- the expectation, computed from the definitions above, not from SQL --------------------
    def _releases(self, g: Agreement, reader: str, item: Item) -> bool:
        recipients = {g.to} if g.to else set(g.sector_members)
        in_force = not g.withdrawn and (g.valid_until is None or g.valid_until > self.now)
        listed = item.what in (g.kinds if item.type == "alert" else g.categories)
        place = not g.places or item.place in g.places
        window = item.at >= g.valid_from and (g.valid_until is None or item.at < g.valid_until)
        return g.owner == item.owner and reader in recipients and in_force and listed and place and window

    def visible(self, reader: str, item: Item) -> bool:
        return item.owner == reader or any(self._releases(g, reader, item) for g in self.agreements)

    def personal(self, reader: str, item: Item) -> bool:
        return item.owner == reader or any(g.personal and self._releases(g, reader, item) for g in self.agreements)

    def expected(self, reader: str, kind: str) -> set[int]:
        return {i.id for i in self.items if i.type == kind and self.visible(reader, i)}

    def expected_tokens(self, reader: str, kind: str) -> set[str]:
        return {i.token for i in self.items if i.type == kind and self.personal(reader, i)}

    def tokens(self) -> dict[str, Item]:
        return {i.token: i for i in self.items}

    def by_id(self, kind: str) -> dict[int, Item]:
        return {i.id: i for i in self.items if i.type == kind}


@pytest.fixture(scope="module")
def module_db(engine: Engine) -> Iterator[Session]:
    with rolled_back_session(engine) as sess:
        yield sess


@pytest.fixture(scope="module")
def module_client(module_db: Session) -> Iterator[TestClient]:
    from api.app import create_app

    # its own application: the module's client outlives each test's overrides of the shared one
    with TestClient(app_on(module_db, create_app()), follow_redirects=False) as c:
        yield c


@pytest.fixture(scope="module")
def matrix(module_db: Session, module_client: TestClient) -> Matrix:
    db, factory = module_db, Factory(module_db)
    labels = {"A": "TH", "B": "MY", "C": "ID"}
    agencies = {k: factory.agency(country) for k, country in labels.items()}
    usernames = {k: factory.user(code, role="operator") for k, code in agencies.items()}
    admins = {k: factory.user(code, role="supervisor") for k, code in agencies.items()}
    a = agencies["A"]
    zones = {z: factory.zone(a, box=BOXES[z]) for z in ("Z1", "Z2")}
    zones["J"] = factory.zone(
        agencies["B"], members=[agencies["A"], agencies["B"], agencies["C"]], kind="joint_patrol_sector", box=BOXES["J"]
    )
    segment, _ = factory.segment(SEGMENT_LINE)
    now = db.execute(text("SELECT now()")).scalar_one()
    m = Matrix(
        db,
        module_client,
        agencies,
        {k: factory.headers(u) for k, u in usernames.items()},
        {k: factory.headers(u) for k, u in admins.items()},
        usernames,
        zones,
        segment,
        now,
    )

    sensors = {k: factory.sensor(code, *POINTS["far"]) for k, code in agencies.items() if k in ("A", "B")}
    units = {
        k: patrol_units.create_unit(
            session=db,
            principal=Principal(username=admins[k], agency_code=agencies[k], role="admin"),
            unit_in=patrol_schemas.UnitCreate(
                callsign=f"U{k}{uuid.uuid4().hex[:5]}",
                kind="maritime",
                cruising_speed_kmh=40,
                home_lon=POINTS["far"][0],
                home_lat=POINTS["far"][1],
            ),
        ).id
        for k in ("A", "B")
    }
    n = 0
    for owner in ("A", "B"):
        for kind in KINDS:
            for place, (lon, lat) in POINTS.items():
                for age in AGES.values():
                    n += 1
                    token, at = f"PII{n:04d}X", now - age
                    det = factory.detection(sensors[owner], agencies[owner], lon, lat, at)
                    alert_id = db.execute(
                        text(
                            """INSERT INTO alerts (agency_code, kind, severity, title, observed_at, sensor_id, track_key,
                                               class, detection_id, detection_ids, geom, details)
                           VALUES (:agency, :kind, 'high', :title, :at, :sensor, :track, 'vehicle', :det,
                                   ARRAY[CAST(:det AS bigint)], ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),
                                   CAST(:details AS jsonb)) RETURNING id"""
                        ),
                        {
                            "agency": agencies[owner],
                            "kind": kind,
                            "title": f"{kind}: plate {token}",
                            "at": at,
                            "sensor": sensors[owner],
                            "track": f"plate:{token}",
                            "det": det,
                            "lon": lon,
                            "lat": lat,
                            "details": f'{{"entries": [{{"kind": "plate", "value": "{token}"}}]}}',
                        },
                    ).scalar_one()
                    m.items.append(Item(alert_id, "alert", owner, kind, place, at, token))
    for owner in ("A", "B"):
        for category in CATEGORIES:
            for place, (lon, lat) in POINTS.items():
                for age in AGES.values():
                    n += 1
                    token, at = f"PII{n:04d}X", now - age
                    incident_id = db.execute(
                        text(
                            """INSERT INTO incidents (agency_code, title, category, priority, status, domain, state, geom,
                                                  created_by, created_at)
                           VALUES (:agency, :title, :category, 'high', 'new', 'maritime', NULL,
                                   ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :by, :at) RETURNING id"""
                        ),
                        {
                            "agency": agencies[owner],
                            "title": f"boat of {token}",
                            "category": category,
                            "lon": lon,
                            "lat": lat,
                            "by": f"officer-{token}",
                            "at": at,
                        },
                    ).scalar_one()
                    db.execute(
                        text(
                            """INSERT INTO incident_events (incident_id, actor, kind, status_to, note, details)
                           VALUES (:id, :by, 'created', 'new', :note, '{}')"""
                        ),
                        {"id": incident_id, "by": f"officer-{token}", "note": f"suspect {token} questioned"},
                    )
                    db.execute(
                        text(
                            """INSERT INTO incident_persons (incident_id, agency_code, role, sex, age_group, created_by)
                           SELECT :id, :agency, 'suspect', 'male', '30-49', :by FROM generate_series(1, :n)"""
                        ),
                        {
                            "id": incident_id,
                            "agency": agencies[owner],
                            "by": f"officer-{token}",
                            "n": PERSONS_PER_INCIDENT,
                        },
                    )
                    # A closed tasking of the owner's unit; A's incidents also had B's unit tasked.
                    for unit in {units[owner], units["B"]}:
                        db.execute(
                            text(
                                """INSERT INTO taskings (incident_id, unit_id, agency_code, unit_agency_code, status,
                                                     note, created_by)
                               SELECT :id, u.id, :agency, u.agency_code, 'completed', :note, 'dispatcher'
                               FROM patrol_units u WHERE u.id = :unit"""
                            ),
                            {"id": incident_id, "agency": agencies[owner], "unit": unit, "note": tasking_note(token)},
                        )
                    m.items.append(Item(incident_id, "incident", owner, category, place, at, token))
    m.units = units
    db.commit()

    def agree(
        owner: str,
        *,
        to: str | None = None,
        sector: bool = False,
        kinds=(),
        categories=(),
        places=(),
        valid_from: timedelta = timedelta(days=1),
        valid_until: timedelta | None = None,
        personal: bool = False,
    ) -> Agreement:
        body = {
            "alert_kinds": list(kinds),
            "incident_categories": list(categories),
            "zone_ids": [zones[p] for p in places if p in zones],
            "segment_ids": [segment] if "S1" in places else [],
            "valid_from": (now - valid_from).isoformat(),
            "personal_data": personal,
            "purpose": f"test agreement {uuid.uuid4().hex[:6]}",
            **({"valid_until": (now + valid_until).isoformat()} if valid_until is not None else {}),
            **({"to_sector_zone_id": zones["J"]} if sector else {"to_agency": agencies[to]}),
        }
        r = module_client.post("/api/v1/sharing/agreements", json=body, headers=m.admin_headers[owner])
        assert r.status_code == 201, r.text
        g = Agreement(
            r.json()["id"],
            owner,
            to,
            ("A", "B", "C") if sector else (),
            tuple(kinds),
            tuple(categories),
            tuple(places),
            now - valid_from,
            now + valid_until if valid_until is not None else None,
            personal,
        )
        m.agreements.append(g)
        return g

    # A to B: crossings and zone entries, drug incidents, in zone Z1, from 2 hours ago: the old ones not.
    agree(
        "A",
        to="B",
        kinds=("crossing", "zone_entry"),
        categories=("drugs",),
        places=("Z1",),
        valid_from=timedelta(hours=2),
    )
    # A to B: crossings in Z2 only from 30 minutes ago (the recent ones, 20 minutes old) -- with personal data.
    agree("A", to="B", kinds=("crossing",), places=("Z2",), valid_from=timedelta(minutes=30), personal=True)
    # A to B: watch-list hits anywhere, but the agreement ended an hour ago: nothing.
    agree("A", to="B", kinds=("watchlist_hit",), valid_from=timedelta(hours=10), valid_until=-timedelta(hours=1))
    # A to the sector's members (A, B, C): dark vessels and crossings, piracy and drugs, at segment S1, with
    # personal data.
    agree(
        "A",
        sector=True,
        kinds=("dark_vessel", "crossing"),
        categories=("piracy", "drugs"),
        places=("S1",),
        valid_from=timedelta(hours=8),
        valid_until=timedelta(days=1),
        personal=True,
    )
    # B to A: crossings and every incident category anywhere, without personal data.
    agree("B", to="A", kinds=("crossing",), categories=CATEGORIES, valid_from=timedelta(days=1))
    # A to C, withdrawn at once: nothing.
    withdrawn = agree("A", to="C", kinds=KINDS, categories=CATEGORIES, personal=True)
    r = module_client.post(f"/api/v1/sharing/agreements/{withdrawn.id}/withdraw", headers=m.admin_headers["A"])
    assert r.status_code == 200, r.text
    withdrawn.withdrawn = True
    return m
