"""Demo patrol units of the demo agencies (``borderwatch seed-demo``), so the COP shows units."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.security import Principal
from patrols import schemas
from patrols import units as unit_service

# callsign, kind, cruising speed km/h, home (lon, lat), capabilities, status after seeding.
DEMO_UNITS: dict[str, list[tuple[str, str, float, tuple[float, float], list[str], str]]] = {
    "TH-RTP": [
        ("Sadao 1", "land", 60, (100.4330, 6.6420), ["k9"], "available"),
        ("Padang Besar 2", "land", 50, (100.3260, 6.6530), [], "en_route"),
        ("Kolok 3", "land", 60, (101.9550, 6.0420), ["medic"], "available"),
        ("Satun Marine 1", "maritime", 45, (99.9500, 6.6000), ["boarding"], "available"),
    ],
    "MY-PDRM": [
        ("Bukit Kayu Hitam 1", "land", 60, (100.4150, 6.4800), [], "available"),
        ("Rantau Panjang 2", "land", 55, (101.9800, 6.0000), [], "off_duty"),
    ],
    "MY-MMEA": [
        ("Kilat 11", "maritime", 55, (101.6000, 2.5000), ["boarding"], "available"),
        ("Kilat 12", "maritime", 55, (102.9000, 1.8000), [], "en_route"),
        ("Malacca Air 3", "air", 180, (101.7500, 2.7500), ["thermal_camera"], "available"),
    ],
}


def seed_demo_units(*, session: Session) -> int:
    """Create the demo units that do not exist yet (by agency and callsign); returns how many were made."""
    created = 0
    for agency, units in DEMO_UNITS.items():
        principal = Principal(username="seed-demo", agency_code=agency, role="admin")
        existing = set(
            session.execute(text("SELECT callsign FROM patrol_units WHERE agency_code = :a"), {"a": agency}).scalars()
        )
        for callsign, kind, speed, (lon, lat), capabilities, status in units:
            if callsign in existing:
                continue
            unit = unit_service.create_unit(
                session=session,
                principal=principal,
                unit_in=schemas.UnitCreate(
                    callsign=callsign,
                    kind=kind,
                    cruising_speed_kmh=speed,
                    home_lon=lon,
                    home_lat=lat,
                    capabilities=capabilities,
                ),
            )
            if status != "available":
                unit_service.change_unit_status(
                    session=session, principal=principal, unit_id=unit.id, change=schemas.StatusChange(status=status)
                )
            created += 1
    return created
