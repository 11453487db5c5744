"""Watch-list hit: a plate, MMSI, IMO or vessel name (from the detection or the vessel's AIS static
data) on the detecting agency's watch-list; once per track and entry within ``watchlist_repeat_s``, counted
in observed time within a batch as across batches (``alerts.statements.cooldown_kept``)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from alerts.statements import ALERT_COLUMNS, VESSELS_OR_IDENTIFIED, cooldown_kept, run
from core.settings import Settings

# per track and entry, from the last hit stored
_KEPT = cooldown_kept(
    "h.observed_at", "ac.last_observed_at", ":repeat_s", "h.cooldown_key, h.entry_id", "h.observed_at, h.id"
)

_WATCHLIST = text(
    f"""
    WITH {VESSELS_OR_IDENTIFIED},
    vessel AS (
        SELECT n.id, v.imo, v.name
        FROM new n
        JOIN vessels v ON v.mmsi = CAST(n.identifiers ->> 'mmsi' AS bigint)
        WHERE n.identifiers ->> 'mmsi' ~ '^[0-9]{{1,9}}$'
    ),
    ids AS (
        SELECT n.id, 'plate'::text AS kind, n.identifiers ->> 'plate' AS value FROM new n
        WHERE n.identifiers ? 'plate'
        UNION ALL
        SELECT n.id, 'mmsi', n.identifiers ->> 'mmsi' FROM new n WHERE n.identifiers ? 'mmsi'
        UNION ALL
        SELECT n.id, 'imo', coalesce(n.identifiers ->> 'imo', v.imo::text)
        FROM new n LEFT JOIN vessel v ON v.id = n.id
        WHERE coalesce(n.identifiers ->> 'imo', v.imo::text) IS NOT NULL
        UNION ALL
        SELECT n.id, 'vessel_name', coalesce(n.identifiers ->> 'name', v.name)
        FROM new n LEFT JOIN vessel v ON v.id = n.id
        WHERE coalesce(n.identifiers ->> 'name', v.name) IS NOT NULL
    ),
    hits AS (
        SELECT DISTINCT n.id, n.cooldown_key, n.observed_at, w.id AS entry_id, w.kind AS entry_kind,
               w.display_value, w.reason, w.severity AS entry_severity
        FROM ids i
        JOIN new n ON n.id = i.id
        JOIN watchlist_entries w
          ON w.kind = i.kind AND w.value = bw_watchlist_value(i.kind, i.value)
         AND w.agency_code = n.agency_code AND w.active AND (w.expires_at IS NULL OR w.expires_at > now())
    ),
    ranked AS (
        SELECT * FROM (
            SELECT h.*, {_KEPT}
            FROM hits h
            LEFT JOIN alert_cooldowns ac ON ac.track_key = h.cooldown_key AND ac.target = 'watch:' || h.entry_id
        ) k WHERE k.kept
    ),
    cooled AS (
        INSERT INTO alert_cooldowns (track_key, target, last_observed_at)
        SELECT cooldown_key, 'watch:' || entry_id, max(observed_at) FROM ranked GROUP BY cooldown_key, entry_id
        ON CONFLICT (track_key, target) DO UPDATE SET last_observed_at = EXCLUDED.last_observed_at
        WHERE alert_cooldowns.last_observed_at <= EXCLUDED.last_observed_at - make_interval(secs => :repeat_s)
        RETURNING track_key, target
    ),
    per_detection AS (
        SELECT r.id,
               max(r.entry_severity) FILTER (WHERE r.entry_severity = 'critical') AS critical,
               (array_agg(r.entry_kind || ' ' || r.display_value || ' (' || r.reason || ')'
                          ORDER BY r.entry_severity = 'critical' DESC, r.entry_id))[1] AS first_hit,
               jsonb_agg(jsonb_build_object('entry_id', r.entry_id, 'kind', r.entry_kind,
                                            'value', r.display_value, 'reason', r.reason,
                                            'severity', r.entry_severity) ORDER BY r.entry_id) AS entries
        FROM ranked r
        JOIN cooled c ON c.track_key = r.cooldown_key AND c.target = 'watch:' || r.entry_id
        GROUP BY r.id
    )
    INSERT INTO alerts (agency_code, kind, severity, title, observed_at, sensor_id, track_key, class,
                        detection_id, detection_ids, geom, details)
    SELECT n.agency_code, 'watchlist_hit', coalesce(p.critical, 'high'),
           format('watch-list hit: %s', p.first_hit), n.observed_at, n.sensor_id, n.track_key, n.class,
           n.id, ARRAY[n.id], n.geom, jsonb_build_object('entries', p.entries)
    FROM per_detection p JOIN new n ON n.id = p.id
    ON CONFLICT DO NOTHING
    RETURNING {ALERT_COLUMNS}
    """
)


def raise_hits(*, session: Session, batch: int, settings: Settings) -> list[dict]:
    """Watch-list hits of the new detections of ``batch`` that carry a plate or vessel identifier."""
    return run(session, _WATCHLIST, {"batch": batch, "repeat_s": settings.watchlist_repeat_s})
