"""Geofencing rules, evaluated set-based: one statement per batch of new detections.

Rules:
- crossing: the leg from a track's previous position to the new one crosses a border
  segment (``ST_LineCrossingDirection`` gives the side it ends on, so the direction
  from state -> to state follows from the segment's left/right states);
- zone entry: a detection inside a zone that alerts on entry, whose track was outside it
  before (or that has no track).
Zone entries count only for zones of the detection's agency (owner or agreement member).
Which zones a point is in and how far it is from the nearest fence edge are found when it is
stored (``sensors.service.store_detections``, on the geofencing grid); a track's last position
keeps its zones (``track_positions.zone_ids``).
One alert per agency, track (or untracked sensor+class) and segment/zone within the cooldown,
counted in observed time and applied within a batch exactly as across batches
(``bw_cooldown_passes``, migration 0012): how fixes are grouped on arrival (one by one, a burst,
a backlog after an outage, a restart in the middle) changes nothing in the alerts raised.
The same statement moves each track's last known position forward.

Hysteresis: a tracked position within ``hysteresis_m`` of a border segment or of the edge of a
zone that alerts on entry (table ``fence_edges``) neither ends a leg nor enters a zone nor moves
the track; GPS noise near a line cannot flap, and the crossing is seen on the first fix clearly
past it, however many minutes later. With ``zone_dwell_s`` > 0 a tracked object's zone entry
is left to ``alerts.zone_dwell.raise_zone_entries_after_dwell``.

A late fix (not newer than its track's last known position: delivered out of order, e.g. by
another worker or resent after a reconnect) is judged between its true neighbours, the stored
fixes just before and after it, so a leg's direction is the track's real one. What a late fix
would report again is held back by the cooldown, which refuses an alert for a track and
segment/zone that already has one at a later time.

Several workers may hold fixes of one track at once: ``lock_tracks`` serialises them per track
(transaction-level advisory locks, taken in sorted order in a statement of their own before the
batch's statements), so each batch's geofence statement sees the track positions the previous
batch of that track committed.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

_RAISE_ALERTS = text(
    """
    WITH new AS (
        SELECT d.id, d.observed_at, d.sensor_id, d.agency_code, d.event_id, d.track_key, d.class, d.confidence,
               ST_SetSRID(ST_MakePoint(d.lon, d.lat), 4326) AS geom, d.zone_ids,
               -- per agency: a vessel seen by two agencies' receivers alerts each of them
               d.agency_code || '|' || coalesce(d.track_key, 'sensor:' || d.sensor_id || ':' || d.class)
                   AS cooldown_key,
               -- a late fix: its track has already moved past it (out-of-order delivery)
               -- (a look-up per fix in the primary key: the table holds every track ever seen)
               coalesce(d.observed_at <= (SELECT tp.observed_at FROM track_positions tp
                                          WHERE tp.agency_code = d.agency_code AND tp.track_key = d.track_key),
                        false) AS late,
               -- hysteresis: a tracked position this close to a border line or an entry zone's edge
               -- counts only once the track is clearly on one side again (it never ends a leg)
               d.track_key IS NOT NULL AND coalesce(d.edge_m <= :hysteresis_m, false) AS in_band
        FROM bw_new_detections(:batch) d
    ),
    -- A late fix is judged between its true neighbours: the stored fixes just before and just
    -- after it (index on track_key, observed_at). In-order fixes need only the last position.
    neighbours AS (
        SELECT DISTINCT ON (x.id) x.id, x.observed_at, x.agency_code, x.track_key, x.geom,
               ARRAY(SELECT DISTINCT c.zone_id FROM zone_cells c
                     WHERE c.i = bw_cell(ST_X(x.geom)) AND c.j = bw_cell(ST_Y(x.geom))
                       AND (c.inside OR ST_Intersects(c.geom, x.geom))) AS zone_ids
        FROM (SELECT * FROM new WHERE late AND NOT in_band) n
        CROSS JOIN LATERAL (
            (SELECT d.id, d.observed_at, d.agency_code, d.track_key, d.geom FROM detections d
             WHERE d.track_key = n.track_key AND d.agency_code = n.agency_code AND d.observed_at < n.observed_at
               AND NOT EXISTS (SELECT 1 FROM fence_edges f WHERE ST_DWithin(
                   f.geom, d.geom, :hysteresis_m / (111320.0 * cos(radians(ST_Y(d.geom))))))
             ORDER BY d.observed_at DESC, d.id DESC LIMIT 1)
            UNION ALL
            (SELECT d.id, d.observed_at, d.agency_code, d.track_key, d.geom FROM detections d
             WHERE d.track_key = n.track_key AND d.agency_code = n.agency_code AND d.observed_at > n.observed_at
               AND NOT EXISTS (SELECT 1 FROM fence_edges f WHERE ST_DWithin(
                   f.geom, d.geom, :hysteresis_m / (111320.0 * cos(radians(ST_Y(d.geom))))))
             ORDER BY d.observed_at, d.id LIMIT 1)
        ) x
    ),
    -- A track is an agency's own (track_agency): another agency's fixes of the same vessel or
    -- identifier never start, end or move it.
    seq AS (
        -- new fixes carry what an alert on them needs (the other rows are only the legs' ends)
        SELECT n.id, n.observed_at, n.agency_code AS track_agency, n.track_key, n.geom, n.zone_ids, true AS is_new,
               n.sensor_id, n.agency_code, n.class, n.confidence, n.cooldown_key, n.event_id
        FROM new n
        WHERE n.track_key IS NOT NULL AND NOT n.in_band
        UNION ALL
        SELECT tp.detection_id, tp.observed_at, tp.agency_code, tp.track_key, tp.geom, tp.zone_ids, false, NULL,
               NULL, NULL, NULL, NULL, NULL
        FROM track_positions tp
        WHERE (tp.agency_code, tp.track_key) IN (SELECT DISTINCT agency_code, track_key FROM new
                                                 WHERE track_key IS NOT NULL)
        UNION ALL
        SELECT nb.id, nb.observed_at, nb.agency_code, nb.track_key, nb.geom, nb.zone_ids, false, NULL, NULL, NULL,
               NULL, NULL, NULL
        FROM neighbours nb
        WHERE nb.id NOT IN (SELECT id FROM new)
          AND NOT EXISTS (SELECT FROM track_positions tp WHERE tp.agency_code = nb.agency_code
                          AND tp.track_key = nb.track_key AND tp.detection_id = nb.id)
    ),
    legs AS (
        SELECT id, observed_at, track_agency, track_key, geom, is_new, sensor_id, agency_code, class, confidence,
               cooldown_key, event_id, lag(sensor_id) OVER w AS prev_sensor_id, lag(agency_code) OVER w AS prev_agency_code,
               lag(class) OVER w AS prev_class, lag(confidence) OVER w AS prev_confidence,
               lag(cooldown_key) OVER w AS prev_cooldown_key, lag(event_id) OVER w AS prev_event_id,
               lag(id) OVER w AS prev_id, lag(geom) OVER w AS prev_geom, lag(observed_at) OVER w AS prev_at,
               lag(is_new) OVER w AS prev_new, lag(zone_ids) OVER w AS prev_zone_ids
        FROM seq
        WINDOW w AS (PARTITION BY track_agency, track_key ORDER BY observed_at, id)
    ),
    -- Every leg with a new end; a leg from a late fix to a stored one is reported on the late fix.
    -- The leg carries that new fix's detection (det_*) for the rules below.
    recent_legs AS (
        SELECT l.id, l.prev_id, l.prev_geom, ST_MakeLine(l.prev_geom, l.geom) AS line, l.track_key,
               CASE WHEN l.is_new THEN l.id ELSE l.prev_id END AS det_id,
               CASE WHEN l.is_new THEN l.observed_at ELSE l.prev_at END AS det_observed_at,
               CASE WHEN l.is_new THEN l.sensor_id ELSE l.prev_sensor_id END AS det_sensor_id,
               CASE WHEN l.is_new THEN l.agency_code ELSE l.prev_agency_code END AS det_agency_code,
               CASE WHEN l.is_new THEN l.class ELSE l.prev_class END AS det_class,
               CASE WHEN l.is_new THEN l.confidence ELSE l.prev_confidence END AS det_confidence,
               CASE WHEN l.is_new THEN l.cooldown_key ELSE l.prev_cooldown_key END AS det_cooldown_key,
               CASE WHEN l.is_new THEN l.event_id ELSE l.prev_event_id END AS det_event_id
        FROM legs l
        WHERE (l.is_new OR l.prev_new) AND l.prev_geom IS NOT NULL
          AND l.observed_at - l.prev_at <= make_interval(secs => :max_gap_s)
          AND NOT l.prev_geom = l.geom  -- exact coordinate equality (PostGIS 3), cheaper than ST_Equals
    ),
    crossings AS (
        SELECT l.*, s.id AS segment_id, s.name, s.impact_level, s.left_state, s.right_state,
               ST_LineCrossingDirection(s.geom, l.line) AS direction,
               ST_PointOnSurface(ST_Intersection(s.geom, l.line)) AS at_point
        FROM recent_legs l
        JOIN border_segments s ON ST_Intersects(s.geom, l.line)
    ),
    candidates AS (
        SELECT 'crossing'::text AS kind, c.det_id AS detection_id, ARRAY[c.prev_id, c.id] AS detection_ids,
               c.segment_id, NULL::int AS zone_id, c.name AS target_name, c.impact_level,
               CASE WHEN c.direction < 0 THEN c.right_state ELSE c.left_state END AS from_state,
               CASE WHEN c.direction < 0 THEN c.left_state ELSE c.right_state END AS to_state,
               'segment:' || c.segment_id AS target, c.at_point, c.direction, c.det_observed_at AS observed_at,
               c.det_sensor_id AS sensor_id, c.det_agency_code AS agency_code, c.track_key, c.det_class AS class,
               c.det_confidence AS confidence, c.det_cooldown_key AS cooldown_key, c.det_event_id AS event_id
        FROM crossings c
        WHERE c.direction IN (-2, -1, 1, 2)
        UNION ALL
        SELECT 'zone_entry', n.id, ARRAY[n.id], NULL, z.id, z.name, z.impact_level, NULL, z.state,
               'zone:' || z.id, n.geom, NULL, n.observed_at, n.sensor_id, n.agency_code, n.track_key, n.class,
               n.confidence, n.cooldown_key, n.event_id
        -- the zones the point is in (found when it was stored), against those of the track's
        -- position before
        FROM new n
        CROSS JOIN LATERAL unnest(n.zone_ids) AS hit(zone_id)
        JOIN zones z ON z.id = hit.zone_id AND z.entry_alert
             -- only zones of the detection's own agency, or of an agreement that includes it
             AND (z.owner_agency = n.agency_code OR n.agency_code = ANY (z.member_agencies))
        LEFT JOIN legs l ON l.id = n.id AND l.is_new
        WHERE (l.prev_geom IS NULL OR NOT hit.zone_id = ANY (l.prev_zone_ids)) AND NOT n.in_band
          -- with a dwell time, tracked entries are raised by alerts/zone_dwell.py once it has passed
          AND (:zone_dwell_s = 0 OR n.track_key IS NULL)
    ),
    -- The cooldown in observed time, within the batch as across batches: per track (agency) and
    -- target the candidates are taken in time order, and each one a full cooldown after the last
    -- one kept (starting from the stored one) is kept: a backlog holding two crossings 13 minutes
    -- apart raises both, as the same fixes sent one by one do.
    ranked AS (
        SELECT * FROM (
            SELECT c.*, bw_cooldown_passes(c.observed_at, c.stored_at, make_interval(secs => :cooldown_s))
                            OVER (PARTITION BY c.cooldown_key, c.target ORDER BY c.observed_at, c.detection_id
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS kept
            FROM (
                -- a look-up per candidate in the primary key (the table grows with every track and target)
                SELECT c.*, (SELECT ac.last_observed_at FROM alert_cooldowns ac
                             WHERE ac.track_key = c.cooldown_key AND ac.target = c.target) AS stored_at
                FROM candidates c
            ) c
        ) k
        WHERE k.kept
    ),
    cooled AS (
        INSERT INTO alert_cooldowns (track_key, target, last_observed_at)
        SELECT cooldown_key, target, max(observed_at) FROM ranked GROUP BY cooldown_key, target
        ON CONFLICT (track_key, target) DO UPDATE SET last_observed_at = EXCLUDED.last_observed_at
        WHERE alert_cooldowns.last_observed_at
              <= EXCLUDED.last_observed_at - make_interval(secs => :cooldown_s)
        RETURNING track_key, target
    ),
    inserted AS (
        INSERT INTO alerts (agency_code, kind, severity, title, observed_at, sensor_id, track_key, class,
                            detection_id, detection_ids, segment_id, zone_id, from_state, to_state, geom, details)
        SELECT r.agency_code, r.kind, bw_severity(r.impact_level, r.kind, r.class, r.confidence),
               CASE r.kind
                   WHEN 'crossing' THEN format('%s crossed %s -> %s on %s', r.class, r.from_state, r.to_state,
                                               r.target_name)
                   ELSE format('%s entered %s', r.class, r.target_name)
               END,
               r.observed_at, r.sensor_id, r.track_key, r.class, r.detection_id, r.detection_ids,
               r.segment_id, r.zone_id, r.from_state, r.to_state, r.at_point,
               jsonb_strip_nulls(jsonb_build_object('event_id', r.event_id, 'impact_level', r.impact_level, 'target', r.target_name,
                                                    'crossing_direction', r.direction))
        FROM ranked r
        JOIN cooled c ON c.track_key = r.cooldown_key AND c.target = r.target
        ON CONFLICT DO NOTHING
        RETURNING id, agency_code, kind, severity, title, observed_at, created_at, sensor_id, track_key, class,
                  detection_id, detection_ids, segment_id, zone_id, from_state, to_state, details,
                  ST_X(geom) AS lon, ST_Y(geom) AS lat
    ),
    moved AS (
        INSERT INTO track_positions (track_key, agency_code, sensor_id, detection_id, observed_at, class, geom,
                                     zone_ids)
        SELECT DISTINCT ON (agency_code, track_key) track_key, agency_code, sensor_id, id, observed_at, class, geom,
               zone_ids
        FROM new
        WHERE track_key IS NOT NULL AND NOT in_band
        ORDER BY agency_code, track_key, observed_at DESC, id DESC
        ON CONFLICT (agency_code, track_key) DO UPDATE
            SET sensor_id = EXCLUDED.sensor_id,
                detection_id = EXCLUDED.detection_id, observed_at = EXCLUDED.observed_at,
                class = EXCLUDED.class, geom = EXCLUDED.geom, zone_ids = EXCLUDED.zone_ids, updated_at = now()
            WHERE track_positions.observed_at < EXCLUDED.observed_at
    )
    SELECT * FROM inserted ORDER BY observed_at, id
    """
)


_LOCK_TRACKS = text(
    """
    SELECT pg_advisory_xact_lock(k)
    FROM (SELECT DISTINCT hashtextextended(t, 0) AS k FROM unnest(CAST(:keys AS text[])) AS t) s
    ORDER BY k
    """
)


def lock_tracks(*, session: Session, track_keys: Iterable[str]) -> None:
    """Hold each track of a batch until the transaction ends; keys (``agency|track``: tracks are per
    agency) are taken in sorted order, so two batches that share tracks wait for each other instead
    of deadlocking."""
    keys = sorted(set(track_keys))
    if keys:
        session.execute(_LOCK_TRACKS, {"keys": keys}).all()


def raise_alerts(
    *, session: Session, batch: int, cooldown_s: int, max_gap_s: int, hysteresis_m: float = 0.0, zone_dwell_s: int = 0
) -> list[dict]:
    """Evaluate every rule for the new detections of ``batch``: rows of the temporary table
    ``new_detections`` that ``sensors.service.store_detections`` filled in this transaction (with
    the zones each point is in and its distance to the nearest fence edge). Returns the alerts
    written."""
    rows = session.execute(
        _RAISE_ALERTS,
        {
            "batch": batch,
            "cooldown_s": cooldown_s,
            "max_gap_s": max_gap_s,
            "hysteresis_m": hysteresis_m,
            "zone_dwell_s": zone_dwell_s,
        },
    ).mappings()
    return [dict(r) for r in rows]
