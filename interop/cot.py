"""Cursor-on-Target (CoT 2.0 XML) events of units, alerts and incidents, for TAK clients (ATAK, WinTAK,
iTAK, TAK Server).

Types follow the CoT type tree (MIL-STD-2525 affiliation and battle dimension):

* units are friendly (own, and partners' inside a shared joint sector): land ``a-f-G-U-C``
  (ground unit, combat), maritime ``a-f-S-X`` (surface), air ``a-f-A-M-H`` (military rotary wing);
* alerts are the detected object: unknown affiliation ``a-u-...``, suspect ``a-s-...`` for the
  kinds that are themselves a suspicion (watch-list hit, dark vessel, rendezvous); ground
  ``G`` (a vehicle ``G-E-V``), surface ``S-X`` for boats and vessels, air ``A``; an alert about a
  sensor (offline/online) has no object and is a spot marker ``b-m-p-s-m``;
* incidents are spot markers ``b-m-p-s-m`` with their category, priority and status in the remarks.

``uid`` is stable per object (``borderwatch.unit.12``), so a client replaces the marker on every
update. ``stale`` is ``time`` plus the refresh period's margin for what is current, and ``time``
itself for what has ended (a closed incident, a closed alert): TAK clients then drop the marker.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.security import Principal
from patrols import live
from sharing import service as sharing

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'
UNKNOWN = "9999999.0"  # CoT's value for an unknown height or error
UNIT_TYPES = {"land": "a-f-G-U-C", "maritime": "a-f-S-X", "air": "a-f-A-M-H"}
OBJECT_DIMENSIONS = {
    "person": "G",
    "animal": "G",
    "unknown": "G",
    "vehicle": "G-E-V",
    "boat": "S-X",
    "vessel": "S-X",
    "aircraft": "A",
}
SUSPECT_ALERTS = {"watchlist_hit", "dark_vessel", "rendezvous"}
ENDED_ALERT_STATUSES = {"closed", "dismissed", "resolved", "false_alarm"}
ENDED_INCIDENT_STATUSES = {"resolved", "false_alarm", "closed"}
SPOT_MARKER = "b-m-p-s-m"
# Circular error (m, 1 sigma) of a unit's GNSS fix, a sensor-located alert, a hand-placed incident.
UNIT_CE, ALERT_CE, INCIDENT_CE = 10.0, 50.0, 100.0


def cot_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def unit_type(kind: str) -> str:
    return UNIT_TYPES.get(kind, "a-f-G")


def alert_type(kind: str, object_class: str | None) -> str:
    if object_class is None or kind in ("sensor_offline", "sensor_online"):
        return SPOT_MARKER
    affiliation = "s" if kind in SUSPECT_ALERTS else "u"
    return f"a-{affiliation}-{OBJECT_DIMENSIONS.get(object_class, 'G')}"


def _event(
    *,
    uid: str,
    cot_type: str,
    how: str,
    now: datetime,
    stale: datetime,
    lon: float,
    lat: float,
    ce: float,
    callsign: str,
    remarks: str,
    source: dict[str, str],
) -> bytes:
    event = ET.Element(
        "event",
        {
            "version": "2.0",
            "uid": uid,
            "type": cot_type,
            "how": how,
            "time": cot_time(now),
            "start": cot_time(now),
            "stale": cot_time(stale),
        },
    )
    ET.SubElement(
        event, "point", {"lat": f"{lat:.7f}", "lon": f"{lon:.7f}", "hae": UNKNOWN, "ce": f"{ce:.1f}", "le": UNKNOWN}
    )
    detail = ET.SubElement(event, "detail")
    ET.SubElement(detail, "contact", {"callsign": callsign})
    ET.SubElement(detail, "remarks").text = remarks
    ET.SubElement(detail, "__borderwatch", source)
    return ET.tostring(event, encoding="unicode").encode()


def _shared(record: dict) -> dict[str, str]:
    """A partner's item carries who shared it, and whether personal fields were removed."""
    if not record.get("shared_by"):
        return {}
    return {"shared_by": record["shared_by"], "redacted": "true" if record.get("redacted") else "false"}


def unit_event(unit: dict, *, now: datetime, stale_after: timedelta) -> bytes:
    """A unit (``patrols.schemas.UnitOut`` as JSON) at its last position: machine GNSS (``m-g``)."""
    lon, lat = unit["geometry"]["coordinates"]
    return _event(
        uid=f"borderwatch.unit.{unit['id']}",
        cot_type=unit_type(unit["kind"]),
        how="m-g",
        now=now,
        stale=now + stale_after,
        lon=lon,
        lat=lat,
        ce=UNIT_CE,
        callsign=unit["callsign"],
        remarks=f"{unit['agency_code']} {unit['kind']} unit, {unit['status']}",
        source={"kind": "unit", "id": str(unit["id"]), "agency": unit["agency_code"], "status": unit["status"]},
    )


def alert_event(alert: dict, *, now: datetime, stale_after: timedelta) -> bytes:
    """An alert (the live feed's alert record): where the object was, machine-fused from sensors (``m-f``)."""
    lon, lat = alert["geometry"]["coordinates"]
    ended = alert["status"] in ENDED_ALERT_STATUSES
    return _event(
        uid=f"borderwatch.alert.{alert['id']}",
        cot_type=alert_type(alert["kind"], alert.get("object_class")),
        how="m-f",
        now=now,
        stale=now if ended else now + stale_after,
        lon=lon,
        lat=lat,
        ce=ALERT_CE,
        callsign=f"ALERT {alert['id']} {alert['kind']}",
        remarks=f"{alert['severity']} {alert['kind']}: {alert['title']} ({alert['status']})",
        source={
            "kind": "alert",
            "id": str(alert["id"]),
            "alert_kind": alert["kind"],
            "severity": alert["severity"],
            "status": alert["status"],
            **_shared(alert),
        },
    )


def incident_event(incident: dict, *, now: datetime, stale_after: timedelta) -> bytes:
    """An incident (``patrols.schemas.IncidentOut`` as JSON): a spot marker placed by an operator (``h-e``)."""
    lon, lat = incident["geometry"]["coordinates"]
    ended = incident["status"] in ENDED_INCIDENT_STATUSES
    return _event(
        uid=f"borderwatch.incident.{incident['id']}",
        cot_type=SPOT_MARKER,
        how="h-e",
        now=now,
        stale=now if ended else now + stale_after,
        lon=lon,
        lat=lat,
        ce=INCIDENT_CE,
        callsign=f"INC {incident['id']} {incident['category']}",
        remarks=f"{incident['priority']} {incident['category']}: {incident['title']} ({incident['status']})",
        source={
            "kind": "incident",
            "id": str(incident["id"]),
            "agency": incident["agency_code"],
            "status": incident["status"],
            "priority": incident["priority"],
            **_shared(incident),
        },
    )


BUILDERS = {"unit": unit_event, "alert": alert_event, "incident": incident_event}


def events(changes: Iterable[tuple[str, dict]], *, now: datetime, stale_after: timedelta) -> list[bytes]:
    """CoT events (without XML declaration) for the live feed's ``(type, record)`` changes; taskings have none."""
    return [BUILDERS[kind](record, now=now, stale_after=stale_after) for kind, record in changes if kind in BUILDERS]


def document(event: bytes) -> bytes:
    """One event as a stand-alone XML document, the way TAK streams send them."""
    return XML_DECLARATION + event


def picture_cursor(*, session: Session, principal: Principal, alert_hours: float) -> live.LiveCursor:
    """A live-feed cursor before the whole current picture: every visible unit and incident, and the
    alerts the caller's agency may see (its own, and partners' shared with it) observed in the last
    ``alert_hours``. Following it from there gives the changes."""
    floor = session.execute(
        text(
            f"""SELECT coalesce(max(a.id), 0) FROM alerts a
           WHERE {sharing.ALERT_VISIBLE_SQL} AND a.observed_at < now() - make_interval(secs => :secs)"""
        ),
        {"agency": principal.agency_code, "secs": alert_hours * 3600},
    ).scalar_one()
    return live.LiveCursor(since_xid=0, alert_floor=int(floor), recent_alerts={})


def picture(
    *, session: Session, principal: Principal, types: Sequence[str], alert_hours: float, stale_after: timedelta
) -> list[bytes]:
    """The caller's current picture as CoT events (scope and limits of the live feed)."""
    cursor = picture_cursor(session=session, principal=principal, alert_hours=alert_hours)
    changes = live.live_changes(session=session, principal=principal, cursor=cursor, types=types, clock=0.0, via="cot")
    return events(changes, now=datetime.now(timezone.utc), stale_after=stale_after)
