"""Sensor health: online while heard of, offline after the gateway's last will or when nothing
(no detection, AIS sentence or gateway heartbeat) arrived for ``sensor_timeout_s``.

Each change of state raises exactly one alert (``sensor_offline`` / ``sensor_online``); a sensor
that stays offline is not reported again. A gateway heartbeat is its retained status
``online``, published again at intervals shorter than the timeout. Times are the server's
clock: health is about the link now, not about when the objects were observed.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from alerts.statements import ALERT_COLUMNS

_ALERT_INSERT = """
    INSERT INTO alerts (agency_code, kind, severity, title, observed_at, sensor_id, class, detection_id,
                        detection_ids, geom, details)
"""

_HEARD = text(
    f"""
    WITH heard AS (
        SELECT s.id AS sensor_id FROM sensors s
        WHERE s.id = ANY (CAST(:sensors AS text[])) OR s.gateway_id = ANY (CAST(:gateways AS text[]))
    ),
    before AS (
        SELECT h.sensor_id, sh.state FROM heard h LEFT JOIN sensor_health sh USING (sensor_id)
    ),
    kept AS (
        INSERT INTO sensor_health (sensor_id, state, last_heard_at, changed_at)
        SELECT sensor_id, 'online', now(), now() FROM heard
        ON CONFLICT (sensor_id) DO UPDATE
            SET last_heard_at = now(), state = 'online',
                changed_at = CASE WHEN sensor_health.state = 'offline' THEN now() ELSE sensor_health.changed_at END
    )
    {_ALERT_INSERT}
    SELECT s.agency_code, 'sensor_online', 'low', format('sensor %s back online', s.id), now(), s.id, 'unknown', 0,
           '{{}}', s.location, jsonb_build_object('gateway_id', s.gateway_id, 'sensor_kind', s.kind)
    FROM before b JOIN sensors s ON s.id = b.sensor_id
    WHERE b.state = 'offline'
    RETURNING {ALERT_COLUMNS}
    """
)

_OFFLINE = f"""
    {_ALERT_INSERT}
    SELECT s.agency_code, 'sensor_offline', 'medium', format('sensor %s offline (%s)', s.id, g.reason), now(), s.id,
           'unknown', 0, '{{}}', s.location,
           jsonb_strip_nulls(jsonb_build_object(
               'gateway_id', s.gateway_id, 'sensor_kind', s.kind, 'reason', g.reason,
               'last_heard_at', g.last_heard_at,
               -- the area the sensor no longer watches: a hole in the coverage picture
               'coverage_hole', CAST(ST_AsGeoJSON(s.coverage, 6) AS jsonb)))
    FROM gone g JOIN sensors s ON s.id = g.sensor_id
    RETURNING {ALERT_COLUMNS}
"""

_LAST_WILL = text(
    f"""
    WITH gone AS (
        SELECT s.id AS sensor_id, sh.state, sh.last_heard_at, 'gateway last will' AS reason
        FROM sensors s LEFT JOIN sensor_health sh ON sh.sensor_id = s.id
        WHERE s.gateway_id = ANY (CAST(:gateways AS text[])) AND sh.state IS DISTINCT FROM 'offline'
    ),
    kept AS (
        INSERT INTO sensor_health (sensor_id, state, last_heard_at, changed_at)
        SELECT sensor_id, 'offline', coalesce(last_heard_at, now()), now() FROM gone
        ON CONFLICT (sensor_id) DO UPDATE SET state = 'offline', changed_at = now()
    )
    {_OFFLINE}
    """
)

_TIMEOUT = text(
    f"""
    WITH gone AS (
        UPDATE sensor_health sh SET state = 'offline', changed_at = now()
        WHERE sh.state = 'online' AND sh.last_heard_at < now() - make_interval(secs => :timeout_s)
        RETURNING sh.sensor_id, sh.last_heard_at, format('nothing heard for %s s', :timeout_s) AS reason
    )
    {_OFFLINE}
    """
)


def record_batch(
    *, session: Session, sensors: list[str], online_gateways: list[str], offline_gateways: list[str]
) -> list[dict]:
    """Mark what a batch heard from as online (alerting those that were offline), then apply
    last wills (alerting those that were not offline yet)."""
    alerts: list[dict] = []
    if sensors or online_gateways:
        alerts += [
            dict(r) for r in session.execute(_HEARD, {"sensors": sensors, "gateways": online_gateways}).mappings()
        ]
    if offline_gateways:
        alerts += [dict(r) for r in session.execute(_LAST_WILL, {"gateways": offline_gateways}).mappings()]
    return alerts


def sweep(*, session: Session, timeout_s: int) -> list[dict]:
    """Mark sensors not heard of for ``timeout_s`` offline, one alert each."""
    return [dict(r) for r in session.execute(_TIMEOUT, {"timeout_s": timeout_s}).mappings()]
