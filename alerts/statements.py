"""The SQL every rule's statement shares: the new detections of a batch, the cooldown walked in
observed time (within a batch as across batches) and the columns of a written alert (the shape in
which every rule returns its alerts for publication)."""

from __future__ import annotations

from sqlalchemy.orm import Session

_COLUMNS = (
    "id",
    "agency_code",
    "kind",
    "severity",
    "title",
    "observed_at",
    "created_at",
    "sensor_id",
    "track_key",
    "class",
    "detection_id",
    "detection_ids",
    "segment_id",
    "zone_id",
    "from_state",
    "to_state",
    "details",
)


def alert_columns(alias: str = "") -> str:
    """The columns of a written alert as the geofence statement returns them (for publication)."""
    p = f"{alias}." if alias else ""
    return ", ".join(f"{p}{c}" for c in _COLUMNS) + f", ST_X({p}geom) AS lon, ST_Y({p}geom) AS lat"


ALERT_COLUMNS = alert_columns()

# What makes a new detection concern the track rules other than the dwell rule.
VESSEL_CLASSES = ("boat", "vessel")
IDENTIFIER_KEYS = ("plate", "mmsi", "imo", "name")


def new_detections(where: str = "") -> str:
    """The CTE ``new``: the new detections of the batch ``:batch`` (``bw_new_detections``:
    sensors.service.store_detections keeps them until the transaction ends), with the fields the rules need."""
    return f"""
    new AS (
        SELECT n.id, n.observed_at, n.sensor_id, n.agency_code, n.track_key, n.class, n.confidence,
               n.speed_mps, n.identifiers, n.lat, ST_SetSRID(ST_MakePoint(n.lon, n.lat), 4326) AS geom,
               n.agency_code || '|' || coalesce(n.track_key, 'sensor:' || n.sensor_id || ':' || n.class)
                   AS cooldown_key
        FROM bw_new_detections(:batch) n{where}
    )
"""


VESSELS_OR_IDENTIFIED = new_detections(
    f" WHERE (n.class IN ({', '.join(repr(c) for c in VESSEL_CLASSES)})"
    f" OR n.identifiers ?| ARRAY[{', '.join(repr(k) for k in IDENTIFIER_KEYS)}])"
)


def cooldown_kept(at: str, stored: str, cooldown: str, per: str, order: str) -> str:
    """The column ``kept``: whether a candidate alert passes its cooldown. The candidates are taken per
    ``per`` (track and target) in observed time (``order``), starting from the ``stored`` time of the last
    alert (``alert_cooldowns.last_observed_at``, NULL for none), and each that comes at least ``cooldown``
    seconds after the last one kept is kept (``bw_cooldown_passes``, migration 0012). A batch holding several
    alerts' worth of one track (a backlog, a replayed buffer, a worker catching up) gives each of them, as the
    same fixes sent one by one do."""
    return (
        f"bw_cooldown_passes({at}, {stored}, make_interval(secs => {cooldown})) OVER (PARTITION BY {per} "
        f"ORDER BY {order} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS kept"
    )


def run(session: Session, statement, params: dict) -> list[dict]:
    """Execute one rule's statement; the alerts it wrote, as dicts."""
    return [dict(r) for r in session.execute(statement, params).mappings()]
