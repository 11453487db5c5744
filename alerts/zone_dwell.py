"""Zone entry after a dwell time (``zone_dwell_s`` > 0): a tracked object inside an entry-alert zone
of its agency for that long; the geofence statement (alerts/geofence.py) leaves these entries to
this rule."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from alerts.statements import ALERT_COLUMNS, cooldown_kept, new_detections, run
from core.settings import Settings

# per track and zone, from the last entry stored
_KEPT = cooldown_kept(
    "j.observed_at", "ac.last_observed_at", ":cooldown_s", "d.cooldown_key, d.zone_id", "j.observed_at, d.id"
)

_ZONE_DWELL = text(
    f"""
    WITH {new_detections()},
    fixes AS (
        SELECT n.*,
               EXISTS (SELECT 1 FROM fence_edges f
                       WHERE ST_DWithin(f.geom, n.geom, :hysteresis_m / (111320.0 * cos(radians(n.lat))))) AS in_band
        FROM new n
        WHERE n.track_key IS NOT NULL
    ),
    candidates AS (
        SELECT DISTINCT f.cooldown_key, z.id AS zone_id
        FROM fixes f
        JOIN zones z ON z.entry_alert AND ST_Intersects(z.geom, f.geom)
             AND (z.owner_agency = f.agency_code OR f.agency_code = ANY (z.member_agencies))
        WHERE NOT f.in_band
        UNION
        SELECT zp.cooldown_key, zp.zone_id FROM zone_presence zp
        WHERE zp.cooldown_key IN (SELECT cooldown_key FROM fixes)
    ),
    judged AS (
        SELECT c.cooldown_key, c.zone_id, f.id, f.observed_at, f.sensor_id, f.agency_code, f.track_key, f.class,
               f.confidence, f.geom, f.in_band, ST_Intersects(z.geom, f.geom) AS inside
        FROM candidates c
        JOIN zones z ON z.id = c.zone_id
        JOIN fixes f ON f.cooldown_key = c.cooldown_key
    ),
    -- a position in the hysteresis band says nothing; a clear one outside ends a stay
    marked AS (
        SELECT j.*, sum(CASE WHEN inside THEN 0 ELSE 1 END) OVER w AS run
        FROM judged j
        WHERE NOT in_band
        WINDOW w AS (PARTITION BY cooldown_key, zone_id ORDER BY observed_at, id)
    ),
    totals AS (SELECT cooldown_key, zone_id, max(run) AS runs FROM marked GROUP BY cooldown_key, zone_id),
    runs AS (
        SELECT cooldown_key, zone_id, run, min(observed_at) AS first_in, max(observed_at) AS last_in
        FROM marked WHERE inside
        GROUP BY cooldown_key, zone_id, run
    ),
    states AS (
        SELECT r.*, (r.run = t.runs) AS open,
               CASE WHEN r.run = 0 AND zp.since IS NOT NULL THEN zp.since ELSE r.first_in END AS since,
               (r.run = 0 AND coalesce(zp.alerted, false)) AS alerted_before
        FROM runs r
        JOIN totals t USING (cooldown_key, zone_id)
        LEFT JOIN zone_presence zp USING (cooldown_key, zone_id)
    ),
    due AS (
        SELECT DISTINCT ON (s.cooldown_key, s.zone_id, s.run) s.*, j.id, j.sensor_id, j.agency_code, j.track_key,
               j.class, j.confidence, j.geom
        FROM states s
        JOIN marked j ON j.cooldown_key = s.cooldown_key AND j.zone_id = s.zone_id AND j.run = s.run AND j.inside
                     AND j.observed_at >= s.since + make_interval(secs => :dwell_s)
        WHERE NOT s.alerted_before
        ORDER BY s.cooldown_key, s.zone_id, s.run, j.observed_at, j.id
    ),
    ranked AS (
        SELECT * FROM (
            SELECT d.*, j.observed_at AS at, {_KEPT}
            FROM due d
            JOIN marked j ON j.id = d.id AND j.zone_id = d.zone_id
            LEFT JOIN alert_cooldowns ac ON ac.track_key = d.cooldown_key AND ac.target = 'zone:' || d.zone_id
        ) k WHERE k.kept
    ),
    cooled AS (
        INSERT INTO alert_cooldowns (track_key, target, last_observed_at)
        SELECT cooldown_key, 'zone:' || zone_id, max(at) FROM ranked GROUP BY cooldown_key, zone_id
        ON CONFLICT (track_key, target) DO UPDATE SET last_observed_at = EXCLUDED.last_observed_at
        WHERE alert_cooldowns.last_observed_at <= EXCLUDED.last_observed_at - make_interval(secs => :cooldown_s)
        RETURNING track_key, target
    ),
    inserted AS (
        INSERT INTO alerts (agency_code, kind, severity, title, observed_at, sensor_id, track_key, class,
                            detection_id, detection_ids, zone_id, to_state, geom, details)
        SELECT r.agency_code, 'zone_entry', bw_severity(z.impact_level, 'zone_entry', r.class, r.confidence),
               format('%s entered %s', r.class, z.name), r.at, r.sensor_id, r.track_key, r.class, r.id, ARRAY[r.id],
               z.id, z.state, r.geom,
               jsonb_build_object('impact_level', z.impact_level, 'target', z.name, 'inside_since', r.since,
                                  'dwell_s', :dwell_s)
        FROM ranked r
        JOIN cooled c ON c.track_key = r.cooldown_key AND c.target = 'zone:' || r.zone_id
        JOIN zones z ON z.id = r.zone_id
        ON CONFLICT DO NOTHING
        RETURNING {ALERT_COLUMNS}
    ),
    kept AS (
        INSERT INTO zone_presence (cooldown_key, zone_id, since, last_at, alerted)
        SELECT s.cooldown_key, s.zone_id, s.since, s.last_in,
               s.alerted_before OR EXISTS (SELECT 1 FROM due d WHERE d.cooldown_key = s.cooldown_key
                                           AND d.zone_id = s.zone_id AND d.run = s.run)
        FROM states s WHERE s.open
        ON CONFLICT (cooldown_key, zone_id) DO UPDATE
            SET since = EXCLUDED.since, last_at = EXCLUDED.last_at, alerted = EXCLUDED.alerted
    ),
    ended AS (
        DELETE FROM zone_presence zp
        USING totals t
        WHERE zp.cooldown_key = t.cooldown_key AND zp.zone_id = t.zone_id
          AND NOT EXISTS (SELECT 1 FROM states s WHERE s.open AND s.cooldown_key = t.cooldown_key
                          AND s.zone_id = t.zone_id)
    )
    SELECT * FROM inserted
    """
)


def raise_zone_entries_after_dwell(*, session: Session, batch: int, settings: Settings) -> list[dict]:
    """Zone entries of tracked objects once they have been inside for ``zone_dwell_s``
    (positions in the hysteresis band neither start nor end a stay); once per stay and zone,
    within the geofence's alert cooldown, counted in observed time within a batch as across batches.
    Used only when ``zone_dwell_s`` > 0."""
    return run(
        session,
        _ZONE_DWELL,
        {
            "batch": batch,
            "dwell_s": settings.zone_dwell_s,
            "hysteresis_m": settings.crossing_hysteresis_m,
            "cooldown_s": settings.alert_cooldown_s,
        },
    )
