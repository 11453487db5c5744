"""The rules as the ingest worker runs them, in the order they must run.

Per micro-batch, inside the batch's transaction (``Rules.run``): the geofence statement
(crossings and zone entries, alerts/geofence.py), then the track rules that concern the batch's
new detections (zone entries after a dwell time, watch-lists, the maritime rules), then sensor
health. On a timer, ``Rules.sweep`` runs the time-based rules (sensors offline, AIS gaps) in a
transaction of its own; one worker at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from alerts import geofence, health, maritime, watchlist, zone_dwell
from alerts.statements import IDENTIFIER_KEYS, VESSEL_CLASSES
from core.db import session_scope
from core.settings import Settings

log = logging.getLogger("borderwatch.rules")

_SWEEP_LOCK = 0x62770001  # one sweeping worker at a time


class Rules:
    """One per ingest worker: holds what must outlive a batch in memory (health write throttle)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # A sensor heard again within a quarter of the timeout need not be written again.
        self._heard: dict[str, float] = {}

    def run(
        self,
        *,
        session: Session,
        batch: int | None,
        rows: Sequence[Mapping],
        heard_sensors: set[str],
        statuses: dict[str, tuple[str, datetime]],
    ) -> list[dict]:
        """Every rule for one batch; returns the alerts written, in the order they were written.

        ``batch``: the number of the batch's new detections (``sensors.service.store_detections``),
        None when none of them is new; ``rows``: the batch's parsed detections, new or not;
        ``heard_sensors``: sensors heard without a detection (AIS sentences); ``statuses``: the
        gateways' status messages."""
        alerts: list[dict] = []
        if batch is not None:
            s = self.settings
            alerts += geofence.raise_alerts(
                session=session,
                batch=batch,
                cooldown_s=s.alert_cooldown_s,
                max_gap_s=s.track_max_gap_s,
                hysteresis_m=s.crossing_hysteresis_m,
                zone_dwell_s=s.zone_dwell_s,
            )
            if s.zone_dwell_s > 0:
                alerts += zone_dwell.raise_zone_entries_after_dwell(session=session, batch=batch, settings=s)
            if any(r["identifiers"] and not r["identifiers"].keys().isdisjoint(IDENTIFIER_KEYS) for r in rows):
                alerts += watchlist.raise_hits(session=session, batch=batch, settings=s)
            if any(r["class"] in VESSEL_CLASSES for r in rows):
                alerts += maritime.raise_alerts(session=session, batch=batch, settings=s)
        alerts += self._health(session, rows, heard_sensors, statuses)
        return alerts

    def _health(
        self,
        session: Session,
        rows: Sequence[Mapping],
        heard_sensors: set[str],
        statuses: dict[str, tuple[str, datetime]],
    ) -> list[dict]:
        now = time.monotonic()
        fresh = self.settings.sensor_timeout_s / 4
        heard = {r["sensor_id"] for r in rows} | heard_sensors
        due = sorted(s for s in heard if now - self._heard.get(s, -fresh - 1) > fresh)
        online = sorted(g for g, (status, _) in statuses.items() if status == "online")
        offline = sorted(g for g, (status, _) in statuses.items() if status == "offline")
        if not (due or online or offline):
            return []
        for s in due:
            self._heard[s] = now
        if offline:
            # after a last will, the next message of its sensors must be written (back online)
            self._heard.clear()
        return health.record_batch(session=session, sensors=due, online_gateways=online, offline_gateways=offline)

    def sweep(self, engine: Engine, *, also: Callable[[Session], None] | None = None) -> list[dict]:
        """Time-based rules in their own transaction, then ``also`` (the ingest's own housekeeping)
        in the same one; returns the alerts written (none while another worker sweeps, or while the
        database is unavailable)."""
        try:
            with session_scope(engine) as session:
                if not session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _SWEEP_LOCK}).scalar():
                    return []
                alerts = health.sweep(session=session, timeout_s=self.settings.sensor_timeout_s)
                if any(a["kind"] == "sensor_offline" for a in alerts):
                    self._heard.clear()
                alerts += maritime.sweep_ais_gaps(session=session, settings=self.settings)
                if also is not None:
                    also(session)
                return alerts
        except (OperationalError, DBAPIError) as exc:
            log.warning("analytics sweep skipped (%s); next time", exc.__class__.__name__)
            return []
        except Exception:
            # the batches must go on whatever a time-based rule does; the log says what failed
            log.exception("analytics sweep failed; next time")
            return []
