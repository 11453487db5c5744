"""The live feed: alerts, incidents, units and taskings in the caller's scope that changed since a
cursor, for the server-sent events stream and the Cursor-on-Target feed."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.security import Principal
from patrols.incidents import INCIDENT_SELECT, INCIDENT_VISIBLE_SQL, incident_out
from patrols.pages import point, sync_token
from patrols.taskings import TASKING_SELECT, tasking_out
from patrols.units import UNIT_SELECT, UNIT_VISIBLE_SQL, unit_out
from sharing import service as sharing

# An alert id stays "recent" this long: a slower ingest transaction may commit a lower id later.
ALERT_ID_SETTLE_S = 10.0
MAX_LIVE_EVENTS = 500


@dataclass
class LiveCursor:
    """Where a live feed stands: a sync token for units, incidents and taskings; for alerts the id
    below which everything was delivered, and the ids above it already sent (with when)."""

    since_xid: int
    alert_floor: int
    recent_alerts: dict[int, float]

    def event_id(self) -> str:
        return f"{self.since_xid}-{self.alert_floor}"

    @classmethod
    def parse(cls, raw: str) -> "LiveCursor":
        match = re.fullmatch(r"([0-9]{1,18})-([0-9]{1,18})", raw or "")
        if not match:
            raise InvalidInput("Last-Event-ID is not an event id this feed sent", parameter="Last-Event-ID")
        return cls(int(match.group(1)), int(match.group(2)), {})


def live_start(*, session: Session, principal: Principal) -> LiveCursor:
    """A cursor at this moment: the feed sends what changes from now on."""
    # Any agency's: a partner's alert released to the caller later than this is sent too.
    floor = session.execute(text("SELECT coalesce(max(id), 0) FROM alerts")).scalar_one()
    return LiveCursor(int(sync_token(session=session)), int(floor), {})


_LIVE_ALERTS = f"""
    SELECT a.id, a.agency_code, a.kind, a.severity, a.status, a.title, a.observed_at, a.class AS object_class,
           a.from_state, a.to_state, a.segment_id, a.zone_id, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat,
           a.redacted, a.shared_by
    FROM {sharing.ALERTS_SEEN}
    WHERE {sharing.ALERT_VISIBLE_SQL} AND a.id > :floor ORDER BY a.id LIMIT :limit
"""
# The live feed's alert record: what a map marker and a CoT event need (no track key or details).
_LIVE_ALERT_FIELDS = (
    "id",
    "agency_code",
    "kind",
    "severity",
    "status",
    "title",
    "observed_at",
    "object_class",
    "from_state",
    "to_state",
    "segment_id",
    "zone_id",
    "redacted",
    "shared_by",
)


def live_changes(
    *, session: Session, principal: Principal, cursor: LiveCursor, types: Sequence[str], clock: float, via: str = "live"
) -> list[tuple[str, dict]]:
    """Alerts, incidents, units and taskings in the caller's scope that changed since ``cursor``
    (which moves forward). At least once: a client keys on type and id (and version). Partners'
    alerts and incidents sent are recorded in the audit trail (one entry per type and call)."""
    token = int(sync_token(session=session))
    params = {"agency": principal.agency_code, "since": cursor.since_xid, "limit": MAX_LIVE_EVENTS}
    events: list[tuple[str, dict]] = []
    if "alert" in types:
        rows = session.execute(text(_LIVE_ALERTS), {**params, "floor": cursor.alert_floor}).all()
        sent = []
        for r in rows:
            if r.id in cursor.recent_alerts:
                continue
            cursor.recent_alerts[r.id] = clock
            sent.append((r.id, r.shared_by))
            data = {k: getattr(r, k) for k in _LIVE_ALERT_FIELDS}
            events.append(("alert", {**data, "geometry": point(r.lon, r.lat).model_dump()}))
        sharing.record_shared_read(session=session, principal=principal, entity_type="alert", rows=sent, via=via)
        settled = [i for i, seen in cursor.recent_alerts.items() if clock - seen >= ALERT_ID_SETTLE_S]
        if settled:
            cursor.alert_floor = max(cursor.alert_floor, max(settled))
            cursor.recent_alerts = {i: t for i, t in cursor.recent_alerts.items() if i > cursor.alert_floor}
    if "incident" in types:
        rows = session.execute(
            text(
                f"{INCIDENT_SELECT} WHERE i.change_xid >= :since AND {INCIDENT_VISIBLE_SQL} ORDER BY i.id LIMIT :limit"
            ),
            params,
        ).all()
        events += [("incident", incident_out(r).model_dump(mode="json")) for r in rows]
        sharing.record_shared_read(
            session=session,
            principal=principal,
            entity_type="incident",
            rows=[(r.id, r.shared_by) for r in rows],
            via=via,
        )
    if "unit" in types:
        rows = session.execute(
            text(f"{UNIT_SELECT} WHERE u.change_xid >= :since AND {UNIT_VISIBLE_SQL} ORDER BY u.id LIMIT :limit"),
            params,
        ).all()
        events += [("unit", unit_out(r).model_dump(mode="json")) for r in rows]
    if "tasking" in types:
        rows = session.execute(
            text(
                f"{TASKING_SELECT} WHERE t.change_xid >= :since "
                "AND :agency IN (t.agency_code, t.unit_agency_code) ORDER BY t.id LIMIT :limit"
            ),
            params,
        ).all()
        events += [("tasking", tasking_out(r).model_dump(mode="json")) for r in rows]
    cursor.since_xid = token
    return events
