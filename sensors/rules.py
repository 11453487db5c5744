"""The maritime and track rules as the ingest worker runs them, beside the geofence statement.

Per micro-batch (inside the batch's transaction): AIS messages are decoded in the parse stage
(``parse_ais``); in the commit stage ``before_store`` assembles multi-part AIS messages across
batches and writes vessel static data, and ``after_geofence`` runs the track rules
(geo/analytics.py) and sensor health (sensors/health.py). On a timer, ``sweep`` runs the
time-based rules (AIS gaps, sensors offline, expired AIS fragments) in a transaction of its own;
one worker at a time.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from core.db import session_scope
from core.errors import InvalidPayload
from core.settings import Settings
from geo import analytics
from sensors import ais, health
from sensors.schemas import DetectionRow
from sensors.service import StoredBatch

log = logging.getLogger("borderwatch.rules")

_SWEEP_LOCK = 0x62770001  # one sweeping worker at a time


class Analytics:
    """One per ingest worker: holds what must outlive a batch in memory (health write throttle)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # A sensor heard again within a quarter of the timeout need not be written again.
        self._heard: dict[str, float] = {}

    # -- parse stage -------------------------------------------------------------------------
    def parse_ais(self, batch_ais: ais.AisBatch, *, registry, topic, message_topic: str, payload: bytes,
                  now: datetime) -> None:
        """Check an AIS message's topic against the registry and decode it into ``batch_ais``."""
        sensor = registry.sensor(topic.sensor)
        if sensor is None:
            raise InvalidPayload(f"sensor {topic.sensor!r} is not registered")
        if sensor.gateway_id != topic.gateway:
            raise InvalidPayload(f"sensor {topic.sensor!r} belongs to gateway {sensor.gateway_id!r}, not {topic.gateway!r}")
        if sensor.agency_code != topic.agency:
            raise InvalidPayload(f"sensor {topic.sensor!r} belongs to agency {sensor.agency_code!r}, not {topic.agency!r}")
        ais.add_message(batch_ais, topic=message_topic, payload=payload, sensor_id=sensor.id,
                        agency_code=sensor.agency_code, now=now, settings=self.settings)

    # -- commit stage ------------------------------------------------------------------------
    def before_store(self, *, session: Session, batch_ais: ais.AisBatch) -> ais.Assembled:
        return ais.store(session=session, batch=batch_ais, settings=self.settings)

    def after_geofence(self, *, session: Session, rows: list[DetectionRow], stored: StoredBatch,
                       heard_sensors: set[str], statuses: dict[str, tuple[str, datetime]]) -> list[dict]:
        """The track rules for the batch's new detections (``stored``; ``rows`` are the batch's
        parsed detections, new or not), then sensor health."""
        alerts: list[dict] = []
        if stored.count:
            if self.settings.zone_dwell_s > 0:
                alerts += analytics.raise_zone_entries_after_dwell(session=session, batch=stored.batch,
                                                                   settings=self.settings)
            vessels = any(r["class"] in analytics.VESSEL_CLASSES for r in rows)
            identified = any(r["identifiers"] and not r["identifiers"].keys().isdisjoint(analytics.IDENTIFIER_KEYS)
                             for r in rows)
            if vessels or identified:
                alerts += analytics.raise_alerts(session=session, batch=stored.batch, settings=self.settings,
                                                 vessels=vessels, identified=identified)
        alerts += self._health(session, rows, heard_sensors, statuses)
        return alerts

    def _health(self, session: Session, rows: list[DetectionRow], heard_sensors: set[str],
                statuses: dict[str, tuple[str, datetime]]) -> list[dict]:
        now = time.monotonic()
        fresh = self.settings.sensor_timeout_s / 4
        heard = ({r["sensor_id"] for r in rows} | heard_sensors)
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

    # -- timer -------------------------------------------------------------------------------
    def sweep(self, engine: Engine) -> list[dict]:
        """Time-based rules in their own transaction; returns the alerts written (none while
        another worker sweeps, or while the database is unavailable)."""
        try:
            with session_scope(engine) as session:
                if not session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _SWEEP_LOCK}).scalar():
                    return []
                alerts = health.sweep(session=session, timeout_s=self.settings.sensor_timeout_s)
                if any(a["kind"] == "sensor_offline" for a in alerts):
                    self._heard.clear()
                alerts += analytics.sweep_ais_gaps(session=session, settings=self.settings)
                ais.expire_fragments(session=session, settings=self.settings)
                return alerts
        except (OperationalError, DBAPIError) as exc:
            log.warning("analytics sweep skipped (%s); next time", exc.__class__.__name__)
            return []
        except Exception:
            # the batches must go on whatever a time-based rule does; the log says what failed
            log.exception("analytics sweep failed; next time")
            return []
