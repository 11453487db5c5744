"""What tests build their cases from: rows written straight into the test transaction (``Factory``),
places checked against the shipped borders, and a small world of agencies, users and units over
the API (``World``)."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.security import Principal

PASSWORD = "correct horse battery staple"


@functools.cache
def _password_hash(password: str) -> str:
    """One real argon2id hash per test password for the whole run. argon2 is slow on purpose
    (about 0.2 s a hash) and the factories make hundreds of users; each of them still stores a
    genuine hash of its password, which a login verifies in full."""
    from core.security import hash_password

    return hash_password(password)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Factory:
    session: Session

    def agency(self, country: str = "TH") -> str:
        from accounts import service

        code = f"{country}-T{uuid.uuid4().hex[:8].upper()}"
        service.create_agency(session=self.session, code=code, country=country, name=f"Test agency {code}")
        return code

    def user(self, agency: str, *, role: str = "operator", password: str = PASSWORD, active: bool = True) -> str:
        from accounts import service

        username = unique("user")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(service, "hash_password", _password_hash)
            user = service.create_user(
                session=self.session, username=username, agency_code=agency, role=role, password=password
            )
        user.active = active
        self.session.flush()
        return username

    def token(self, username: str) -> str:
        from accounts import service
        from core.security import issue_token

        user = service.get_user(session=self.session, username=username)
        return issue_token(service.principal_of(user)).token

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}

    def sensor(self, agency: str, lon: float, lat: float, *, kind: str = "camera", status: str = "online") -> str:
        gateway_id, sensor_id = unique("gw"), unique("cam")
        self.session.execute(
            text(
                "INSERT INTO gateways (id, agency_code, name, mqtt_password_hash, status) "
                "VALUES (:id, :agency, 'test gateway', 'x', :status)"
            ),
            {"id": gateway_id, "agency": agency, "status": status},
        )
        self.session.execute(
            text(
                "INSERT INTO sensors (id, agency_code, gateway_id, kind, name, location) "
                "VALUES (:id, :agency, :gw, :kind, :name, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
            ),
            {
                "id": sensor_id,
                "agency": agency,
                "gw": gateway_id,
                "kind": kind,
                "name": f"Sensor {sensor_id}",
                "lon": lon,
                "lat": lat,
            },
        )
        return sensor_id

    def detection(
        self,
        sensor_id: str,
        agency: str,
        lon: float,
        lat: float,
        observed_at: datetime,
        *,
        object_class: str = "person",
        track: str | None = None,
    ) -> int:
        return self.session.execute(
            text(
                "INSERT INTO detections (observed_at, sensor_id, agency_code, event_id, geom, located_by, class, "
                "confidence, track_id, track_key, raw) "
                "VALUES (:at, :sensor, :agency, :event, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), 'payload', "
                ":cls, 0.9, :track, :track_key, '{}') RETURNING id"
            ),
            {
                "at": observed_at,
                "sensor": sensor_id,
                "agency": agency,
                "event": uuid.uuid4().hex,
                "lon": lon,
                "lat": lat,
                "cls": object_class,
                "track": track,
                "track_key": f"{sensor_id}:{track}" if track else None,
            },
        ).scalar_one()

    def alert(
        self,
        sensor_id: str,
        agency: str,
        lon: float,
        lat: float,
        observed_at: datetime,
        *,
        kind: str = "crossing",
        severity: str = "high",
        status: str = "open",
        title: str | None = None,
        object_class: str = "person",
        from_state: str | None = "MY",
        to_state: str | None = "TH",
        segment_id: int | None = None,
        zone_id: int | None = None,
    ) -> int:
        detection_id = self.detection(sensor_id, agency, lon, lat, observed_at, object_class=object_class)
        return self.session.execute(
            text(
                "INSERT INTO alerts (agency_code, kind, severity, status, title, observed_at, sensor_id, track_key, "
                "class, detection_id, detection_ids, segment_id, zone_id, from_state, to_state, geom, details) "
                "VALUES (:agency, :kind, :severity, :status, :title, :at, :sensor, :track_key, :cls, :det, "
                "ARRAY[CAST(:det AS bigint)], :segment, :zone, :from_state, :to_state, "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), CAST(:details AS jsonb)) RETURNING id"
            ),
            {
                "agency": agency,
                "kind": kind,
                "severity": severity,
                "status": status,
                "title": title or f"{kind} by {object_class}",
                "at": observed_at,
                "sensor": sensor_id,
                "track_key": f"{sensor_id}:t1",
                "cls": object_class,
                "det": detection_id,
                "segment": segment_id,
                "zone": zone_id,
                "from_state": from_state,
                "to_state": to_state,
                "lon": lon,
                "lat": lat,
                "details": '{"confidence": 0.9}',
            },
        ).scalar_one()

    def segment(
        self,
        coords: list[tuple[float, float]],
        *,
        kind: str = "land",
        impact_level: str = "high",
        left: str = "TH",
        right: str = "MY",
    ) -> tuple[int, str]:
        name = unique("segment")
        wkt = "LINESTRING(" + ", ".join(f"{x} {y}" for x, y in coords) + ")"
        seg_id = self.session.execute(
            text(
                "INSERT INTO border_segments (name, kind, left_state, right_state, impact_level, source, geom) "
                "VALUES (:name, :kind, :left, :right, :impact, 'test', ST_GeomFromText(:wkt, 4326)) RETURNING id"
            ),
            {"name": name, "kind": kind, "left": left, "right": right, "impact": impact_level, "wkt": wkt},
        ).scalar_one()
        return seg_id, name

    def zone(
        self,
        owner: str,
        *,
        members: list[str] | None = None,
        kind: str = "restricted_area",
        box: tuple[float, float, float, float] = (100.9, 6.0, 101.1, 6.2),
        wkt: str | None = None,
    ) -> int:
        wkt = wkt or "POLYGON(({0} {1}, {2} {1}, {2} {3}, {0} {3}, {0} {1}))".format(*box)
        return self.session.execute(
            text(
                "INSERT INTO zones (name, kind, state, owner_agency, member_agencies, geom) "
                "VALUES (:name, :kind, 'TH', :owner, CAST(:members AS varchar[]), "
                "ST_Multi(ST_GeomFromText(:wkt, 4326))) RETURNING id"
            ),
            {"name": unique("zone"), "kind": kind, "owner": owner, "members": members or [owner], "wkt": wkt},
        ).scalar_one()


def now() -> datetime:
    return datetime.now(timezone.utc)


# Places (checked against the shipped state polygons and zones).
TH_LAND = (100.42, 6.63)  # Sadao, Thailand
MY_LAND = (100.45, 6.45)  # just south of the Thai–Malaysian line
TH_SEA = (99.9, 6.6)  # Thai territorial sea, inside the Malacca Straits Patrol sector
HIGH_SEA = (100.5, 3.0)  # Malacca Strait outside every territorial sea


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

    def unit(
        self,
        agency: Agency,
        place: tuple[float, float],
        *,
        kind: str = "land",
        speed: float = 60.0,
        device: bool = False,
    ) -> tuple[int, dict[str, str] | None]:
        """A unit at ``place``; with ``device`` also its patrol_unit user's headers."""
        from patrols import schemas, units

        username = self.factory.user(agency.code, role="patrol_unit") if device else None
        unit = units.create_unit(
            session=self.session,
            principal=agency.principal,
            unit_in=schemas.UnitCreate(
                callsign=f"U{uuid.uuid4().hex[:6]}",
                kind=kind,
                cruising_speed_kmh=speed,
                home_lon=place[0],
                home_lat=place[1],
                username=username,
            ),
        )
        self.settle()
        return unit.id, (self.factory.headers(username) if username else None)
