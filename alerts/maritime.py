"""The maritime rules, set-based: one statement per rule and batch of new detections.

- dark vessel: a boat or vessel seen by radar or camera with no AIS position of any vessel
  within ``dark_vessel_radius_m`` and ``dark_vessel_window_s``, as heard by the **agency's own**
  AIS receivers; once per track within ``dark_vessel_repeat_s``. Another agency's receivers do
  not count: their reports are that agency's data (the alert, or its absence, would tell of
  them) and a partner's gateway could otherwise hide a contact by reporting AIS next to it.
  Only what AIS receivers heard counts: an MMSI that a radar or camera gateway attached to its
  contact does not make it lit (the alert shows the claim as ``claimed_mmsi``);
- rendezvous: two vessel tracks of one agency (two AIS vessels, or two contacts of one radar or
  camera) within ``rendezvous_m`` of each other for at
  least ``rendezvous_s``, outside port zones; once per encounter (an encounter ends when the
  two are not seen together for ``rendezvous_break_s``);
- loitering: a vessel slower than ``loiter_speed_kn`` for longer than ``loiter_s`` inside a
  zone of its agency (ports excepted); once per stay;
- AIS gap: an AIS vessel silent for longer than ``ais_gap_s`` whose last position was within
  ``ais_gap_boundary_m`` of a maritime boundary or inside a territorial sea. ``sweep_ais_gaps``
  opens the gap while the vessel is silent; when the vessel reappears the gap is
  closed with its end point, duration and distance, or raised then if no sweep saw it.
  The sweep measures silence by arrival (a replay of old reports is not silence) and against
  the newest report heard from any vessel (a receiver outage does not make every vessel dark).

Every rule keeps its state per agency (the detecting sensor's owner) and reads only that agency's
detections and track positions: one agency's detections of a vessel neither raise nor hold back
another agency's alerts, and no alert shows another agency's fix.

Every rule writes alerts like the geofence statement and returns them in the same shape, and
counts its cooldown in observed time within a batch as across batches
(``alerts.statements.cooldown_kept``), so the alerts do not depend on how the fixes were grouped
on arrival.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from alerts.statements import ALERT_COLUMNS, VESSELS_OR_IDENTIFIED, alert_columns, cooldown_kept, run
from core.settings import Settings

# per track, from the last dark-vessel alert stored
_DARK_KEPT = cooldown_kept("d.observed_at", "ac.last_observed_at", ":repeat_s", "d.cooldown_key", "d.observed_at, d.id")

_DARK_VESSEL = text(
    f"""
    WITH {VESSELS_OR_IDENTIFIED},
    dark AS (
        SELECT n.*, s.kind AS sensor_kind
        FROM new n
        JOIN sensors s ON s.id = n.sensor_id
        WHERE n.class IN ('boat', 'vessel')
          AND s.kind IN ('radar', 'camera', 'other')
          -- an MMSI the radar or camera gateway attached (which puts the contact on that vessel's
          -- track) is a claim, not an AIS report: only the positions AIS receivers heard count
          AND NOT EXISTS (
              SELECT 1 FROM detections a
              WHERE a.track_key LIKE 'mmsi:%'
                AND a.agency_code = n.agency_code
                AND a.sensor_id IN (SELECT r.id FROM sensors r
                                    WHERE r.kind = 'ais_receiver' AND r.agency_code = n.agency_code)
                AND a.observed_at BETWEEN n.observed_at - make_interval(secs => :window_s)
                                      AND n.observed_at + make_interval(secs => :window_s)
                AND a.geom && ST_Expand(n.geom, :radius_m / (111320.0 * cos(radians(n.lat))))
                AND ST_DWithin(a.geom::geography, n.geom::geography, :radius_m))
    ),
    ranked AS (
        SELECT * FROM (
            SELECT d.*, {_DARK_KEPT}
            FROM dark d
            LEFT JOIN alert_cooldowns ac ON ac.track_key = d.cooldown_key AND ac.target = 'dark'
        ) k WHERE k.kept
    ),
    cooled AS (
        INSERT INTO alert_cooldowns (track_key, target, last_observed_at)
        SELECT cooldown_key, 'dark', max(observed_at) FROM ranked GROUP BY cooldown_key
        ON CONFLICT (track_key, target) DO UPDATE SET last_observed_at = EXCLUDED.last_observed_at
        WHERE alert_cooldowns.last_observed_at <= EXCLUDED.last_observed_at - make_interval(secs => :repeat_s)
        RETURNING track_key
    )
    INSERT INTO alerts (agency_code, kind, severity, title, observed_at, sensor_id, track_key, class,
                        detection_id, detection_ids, geom, details)
    SELECT r.agency_code, 'dark_vessel', 'high',
           format('dark %s: no AIS within %s m', r.class, round(CAST(:radius_m AS numeric)))
               || coalesce(format(' (claims MMSI %s, not heard on AIS)', r.identifiers ->> 'mmsi'), ''),
           r.observed_at, r.sensor_id, r.track_key, r.class, r.id, ARRAY[r.id], r.geom,
           jsonb_strip_nulls(jsonb_build_object('sensor_kind', r.sensor_kind, 'radius_m', :radius_m,
                                                'window_s', :window_s, 'claimed_mmsi', r.identifiers ->> 'mmsi'))
    FROM ranked r JOIN cooled c ON c.track_key = r.cooldown_key
    ON CONFLICT DO NOTHING
    RETURNING {ALERT_COLUMNS}
    """
)

_RENDEZVOUS = text(
    f"""
    WITH {VESSELS_OR_IDENTIFIED},
    -- the other vessels: their last known positions, and this batch's own fixes
    others AS (
        SELECT tp.track_key, tp.agency_code, tp.detection_id, tp.observed_at, tp.geom
        FROM track_positions tp
        WHERE tp.class IN ('boat', 'vessel')
          AND tp.agency_code IN (SELECT DISTINCT agency_code FROM new)
        UNION ALL
        SELECT track_key, agency_code, id, observed_at, geom FROM new
        WHERE track_key IS NOT NULL AND class IN ('boat', 'vessel')
    ),
    close_by AS (
        SELECT n.agency_code, least(n.track_key, o.track_key) AS track_a, greatest(n.track_key, o.track_key) AS track_b,
               n.id, n.observed_at, n.sensor_id, n.class, n.track_key, n.geom, o.detection_id AS other_id,
               ST_Distance(o.geom::geography, n.geom::geography) AS distance_m
        FROM new n
        JOIN others o
          ON o.track_key <> n.track_key AND o.agency_code = n.agency_code
         AND o.geom && ST_Expand(n.geom, :distance_m / (111320.0 * cos(radians(n.lat))))
         AND ST_DWithin(o.geom::geography, n.geom::geography, :distance_m)
         AND o.observed_at BETWEEN n.observed_at - make_interval(secs => :pair_s)
                               AND n.observed_at + make_interval(secs => :pair_s)
        WHERE n.track_key IS NOT NULL AND n.class IN ('boat', 'vessel')
          -- AIS with AIS, or two contacts of one radar/camera: a radar contact next to an AIS
          -- position is most often that same vessel
          AND CASE WHEN n.track_key LIKE 'mmsi:%' THEN o.track_key LIKE 'mmsi:%'
                   ELSE split_part(o.track_key, ':', 1) = n.sensor_id END
          AND NOT EXISTS (SELECT 1 FROM zones z WHERE z.kind = 'port' AND ST_Intersects(z.geom, n.geom))
    ),
    -- a batch may hold hours of fixes: split each pair's sightings where they were apart too long
    marked AS (
        SELECT c.*,
               CASE WHEN lag(observed_at) OVER p IS NULL
                      OR observed_at - lag(observed_at) OVER p > make_interval(secs => :break_s)
                    THEN 1 ELSE 0 END AS starts
        FROM close_by c
        WINDOW p AS (PARTITION BY agency_code, track_a, track_b ORDER BY observed_at, id)
    ),
    islands AS (
        SELECT m.*, sum(starts) OVER (PARTITION BY agency_code, track_a, track_b ORDER BY observed_at, id) AS island
        FROM marked m
    ),
    pairs AS (
        SELECT DISTINCT ON (agency_code, track_a, track_b, island) agency_code, track_a, track_b, island,
               min(observed_at) OVER i AS first_at, observed_at AS last_at, id, other_id, sensor_id, class,
               track_key, geom, distance_m
        FROM islands
        WINDOW i AS (PARTITION BY agency_code, track_a, track_b, island)
        ORDER BY agency_code, track_a, track_b, island, observed_at DESC, id DESC
    ),
    merged AS (
        SELECT p.*, e.started_at AS e_started, e.last_seen_at AS e_last, e.alert_id AS e_alert,
               (p.island > 1 OR e.last_seen_at IS NULL
                OR e.last_seen_at < p.first_at - make_interval(secs => :break_s)) AS fresh
        FROM pairs p
        LEFT JOIN encounters e USING (agency_code, track_a, track_b)
    ),
    computed AS (
        SELECT m.*,
               CASE WHEN fresh THEN first_at ELSE e_started END AS started_at,
               CASE WHEN fresh THEN last_at ELSE greatest(e_last, last_at) END AS seen_at,
               CASE WHEN fresh THEN NULL ELSE e_alert END AS alert_id
        FROM merged m
    ),
    inserted AS (
        INSERT INTO alerts (agency_code, kind, severity, title, observed_at, sensor_id, track_key, class,
                            detection_id, detection_ids, geom, details)
        SELECT c.agency_code, 'rendezvous', 'high',
               format('rendezvous: %s and %s within %s m for %s min', c.track_a, c.track_b,
                      round(CAST(:distance_m AS numeric)), round(extract(epoch FROM c.seen_at - c.started_at) / 60)),
               c.seen_at, c.sensor_id, c.track_key, c.class, c.id, ARRAY[c.other_id, c.id], c.geom,
               jsonb_build_object('track_a', c.track_a, 'track_b', c.track_b, 'started_at', c.started_at,
                                  'duration_s', round(extract(epoch FROM c.seen_at - c.started_at)),
                                  'distance_m', round(CAST(c.distance_m AS numeric), 1))
        FROM computed c
        WHERE c.alert_id IS NULL AND c.seen_at - c.started_at >= make_interval(secs => :min_s)
        ORDER BY c.seen_at, c.id  -- one batch's encounters get their alert ids in time order
        ON CONFLICT DO NOTHING
        RETURNING {ALERT_COLUMNS}
    ),
    kept AS (
        INSERT INTO encounters (agency_code, track_a, track_b, started_at, last_seen_at, alert_id)
        SELECT DISTINCT ON (c.agency_code, c.track_a, c.track_b)
               c.agency_code, c.track_a, c.track_b, c.started_at, c.seen_at,
               coalesce(c.alert_id, (SELECT i.id FROM inserted i
                                     WHERE i.detection_id = c.id AND i.details ->> 'track_a' = c.track_a
                                       AND i.details ->> 'track_b' = c.track_b))
        FROM computed c
        ORDER BY c.agency_code, c.track_a, c.track_b, c.island DESC
        ON CONFLICT (agency_code, track_a, track_b) DO UPDATE
            SET started_at = EXCLUDED.started_at, last_seen_at = EXCLUDED.last_seen_at, alert_id = EXCLUDED.alert_id
    )
    SELECT * FROM inserted
    """
)

_LOITERING = text(
    f"""
    WITH {VESSELS_OR_IDENTIFIED},
    fixes AS (
        SELECT n.*,
               coalesce(n.speed_mps,
                        -- no reported speed: the mean speed since the previous fix of the batch
                        ST_Distance((lag(n.geom) OVER w)::geography, n.geom::geography)
                            / nullif(extract(epoch FROM n.observed_at - lag(n.observed_at) OVER w), 0)) AS speed
        FROM new n
        WHERE n.track_key IS NOT NULL AND n.class IN ('boat', 'vessel')
        WINDOW w AS (PARTITION BY n.agency_code, n.track_key ORDER BY n.observed_at, n.id)
    ),
    candidates AS (
        SELECT DISTINCT f.agency_code, f.track_key, z.id AS zone_id
        FROM fixes f
        JOIN zones z ON ST_Intersects(z.geom, f.geom) AND z.kind <> 'port'
             AND (z.owner_agency = f.agency_code OR f.agency_code = ANY (z.member_agencies))
        UNION
        SELECT ls.agency_code, ls.track_key, ls.zone_id
        FROM loiter_states ls
        WHERE (ls.agency_code, ls.track_key) IN (SELECT agency_code, track_key FROM fixes)
    ),
    judged AS (
        SELECT c.agency_code, c.track_key, c.zone_id, f.id, f.observed_at, f.sensor_id, f.class, f.geom,
               f.speed IS NULL AS unknown,
               (f.speed < :speed_mps AND ST_Intersects(z.geom, f.geom)) AS slow_inside
        FROM candidates c
        JOIN zones z ON z.id = c.zone_id
        JOIN fixes f ON f.agency_code = c.agency_code AND f.track_key = c.track_key
    ),
    -- a batch may hold hours of fixes: each run of slow fixes between two others is a stay
    marked AS (
        SELECT j.*, sum(CASE WHEN slow_inside THEN 0 ELSE 1 END) OVER w AS run
        FROM judged j
        WHERE NOT unknown
        WINDOW w AS (PARTITION BY agency_code, track_key, zone_id ORDER BY observed_at, id)
    ),
    totals AS (
        SELECT agency_code, track_key, zone_id, max(run) AS runs FROM marked GROUP BY agency_code, track_key, zone_id
    ),
    runs AS (
        SELECT agency_code, track_key, zone_id, run, min(observed_at) AS first_slow, max(observed_at) AS last_slow
        FROM marked WHERE slow_inside
        GROUP BY agency_code, track_key, zone_id, run
    ),
    states AS (
        SELECT r.*, (r.run = t.runs) AS open,
               -- the first run continues the stay the last batch ended with
               CASE WHEN r.run = 0 AND ls.since IS NOT NULL THEN ls.since ELSE r.first_slow END AS since,
               (r.run = 0 AND coalesce(ls.alerted, false)) AS alerted_before
        FROM runs r
        JOIN totals t USING (agency_code, track_key, zone_id)
        LEFT JOIN loiter_states ls USING (agency_code, track_key, zone_id)
    ),
    due AS (
        SELECT s.*, j.id, j.sensor_id, j.class, j.geom, zn.name AS zone_name, zn.impact_level
        FROM states s
        JOIN judged j ON j.agency_code = s.agency_code AND j.track_key = s.track_key AND j.zone_id = s.zone_id
                     AND j.observed_at = s.last_slow AND j.slow_inside
        JOIN zones zn ON zn.id = s.zone_id
        WHERE NOT s.alerted_before AND s.last_slow - s.since >= make_interval(secs => :loiter_s)
    ),
    inserted AS (
        INSERT INTO alerts (agency_code, kind, severity, title, observed_at, sensor_id, track_key, class,
                            detection_id, detection_ids, zone_id, geom, details)
        SELECT DISTINCT ON (d.agency_code, d.track_key, d.zone_id, d.run)
               d.agency_code, 'loitering', bw_severity(d.impact_level, 'loitering', d.class, 1.0),
               format('%s loitering in %s for %s min', d.class, d.zone_name,
                      round(extract(epoch FROM d.last_slow - d.since) / 60)),
               d.last_slow, d.sensor_id, d.track_key, d.class, d.id, ARRAY[d.id], d.zone_id, d.geom,
               jsonb_build_object('since', d.since, 'duration_s', round(extract(epoch FROM d.last_slow - d.since)),
                                  'speed_below_kn', :speed_kn, 'target', d.zone_name)
        FROM due d
        ORDER BY d.agency_code, d.track_key, d.zone_id, d.run, d.id
        ON CONFLICT DO NOTHING
        RETURNING {ALERT_COLUMNS}
    ),
    kept AS (
        INSERT INTO loiter_states (agency_code, track_key, zone_id, since, last_at, alerted)
        SELECT s.agency_code, s.track_key, s.zone_id, s.since, s.last_slow,
               s.alerted_before OR EXISTS (SELECT 1 FROM due d WHERE d.agency_code = s.agency_code
                                           AND d.track_key = s.track_key AND d.zone_id = s.zone_id AND d.run = s.run)
        FROM states s WHERE s.open
        ON CONFLICT (agency_code, track_key, zone_id) DO UPDATE
            SET since = EXCLUDED.since, last_at = EXCLUDED.last_at, alerted = EXCLUDED.alerted
    ),
    ended AS (
        DELETE FROM loiter_states ls
        USING totals t
        WHERE ls.agency_code = t.agency_code AND ls.track_key = t.track_key AND ls.zone_id = t.zone_id
          AND NOT EXISTS (SELECT 1 FROM states s WHERE s.open AND s.agency_code = t.agency_code
                          AND s.track_key = t.track_key AND s.zone_id = t.zone_id)
    )
    SELECT * FROM inserted
    """
)

# Where a silent vessel counts: near a maritime boundary or inside a territorial sea.
_GAP_PLACE = """
    (EXISTS (SELECT 1 FROM border_segments bs
             WHERE bs.kind = 'maritime'
               AND bs.geom && ST_Expand({p}, :boundary_m / (111320.0 * cos(radians(ST_Y({p})))))
               AND ST_DWithin(bs.geom::geography, {p}::geography, :boundary_m))
     OR EXISTS (SELECT 1 FROM zones z WHERE z.kind = 'territorial_sea' AND ST_Intersects(z.geom, {p})))
"""

_GAP_TITLE = (
    "format('AIS gap: %s silent since %s', {track}, to_char({at} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS\"Z\"'))"
)

_AIS_GAP_CLOSE = text(
    f"""
    WITH {VESSELS_OR_IDENTIFIED},
    ais AS (SELECT * FROM new WHERE track_key LIKE 'mmsi:%'),
    firsts AS (SELECT agency_code, track_key, min(observed_at) AS first_at FROM ais GROUP BY agency_code, track_key),
    before AS (
        SELECT p.* FROM firsts f
        CROSS JOIN LATERAL (
            SELECT d.id, d.observed_at, d.track_key, d.agency_code, d.geom, d.sensor_id, d.class
            FROM detections d
            WHERE d.track_key = f.track_key AND d.agency_code = f.agency_code AND d.observed_at < f.first_at
              AND d.observed_at > f.first_at - interval '7 days'
            ORDER BY d.observed_at DESC LIMIT 1) p
    ),
    seq AS (
        SELECT id, observed_at, track_key, agency_code, geom, sensor_id, class, true AS is_new FROM ais
        UNION ALL
        SELECT id, observed_at, track_key, agency_code, geom, sensor_id, class, false FROM before
    ),
    legs AS (
        SELECT s.*, lag(id) OVER w AS prev_id, lag(observed_at) OVER w AS prev_at, lag(geom) OVER w AS prev_geom
        FROM seq s
        WINDOW w AS (PARTITION BY agency_code, track_key ORDER BY observed_at, id)
    ),
    gaps AS (
        SELECT l.*, g.id AS gap_id, g.alert_id AS gap_alert_id,
               ST_Distance(l.prev_geom::geography, l.geom::geography) AS distance_m,
               extract(epoch FROM l.observed_at - l.prev_at) AS duration_s
        FROM legs l
        LEFT JOIN ais_gaps g ON g.agency_code = l.agency_code AND g.track_key = l.track_key
                            AND g.started_at = l.prev_at AND g.ended_at IS NULL
        WHERE l.is_new AND l.prev_at IS NOT NULL
          AND l.observed_at - l.prev_at > make_interval(secs => :gap_s)
          AND {_GAP_PLACE.format(p="l.prev_geom")}
    ),
    closed AS (
        UPDATE ais_gaps g SET ended_at = x.observed_at, end_detection_id = x.id, end_geom = x.geom
        FROM gaps x WHERE g.id = x.gap_id
        RETURNING g.id
    ),
    updated AS (
        UPDATE alerts a
        SET details = a.details || jsonb_build_object(
                'ended_at', x.observed_at, 'end_lon', ST_X(x.geom), 'end_lat', ST_Y(x.geom),
                'duration_s', round(x.duration_s), 'distance_m', round(CAST(x.distance_m AS numeric), 1)),
            detection_ids = a.detection_ids || x.id
        FROM gaps x
        WHERE a.id = x.gap_alert_id
        RETURNING {alert_columns("a")}
    ),
    inserted AS (
        INSERT INTO alerts (agency_code, kind, severity, title, observed_at, sensor_id, track_key, class,
                            detection_id, detection_ids, geom, details)
        SELECT x.agency_code, 'ais_gap', 'high', {_GAP_TITLE.format(track="x.track_key", at="x.prev_at")},
               x.prev_at, x.sensor_id, x.track_key, x.class, x.prev_id, ARRAY[x.prev_id, x.id], x.prev_geom,
               jsonb_build_object('started_at', x.prev_at, 'start_lon', ST_X(x.prev_geom), 'start_lat', ST_Y(x.prev_geom),
                                  'ended_at', x.observed_at, 'end_lon', ST_X(x.geom), 'end_lat', ST_Y(x.geom),
                                  'duration_s', round(x.duration_s), 'distance_m', round(CAST(x.distance_m AS numeric), 1))
        FROM gaps x WHERE x.gap_id IS NULL
        ON CONFLICT DO NOTHING
        RETURNING {ALERT_COLUMNS}
    ),
    recorded AS (
        INSERT INTO ais_gaps (agency_code, track_key, started_at, start_detection_id, start_geom,
                              ended_at, end_detection_id, end_geom, alert_id)
        SELECT x.agency_code, x.track_key, x.prev_at, x.prev_id, x.prev_geom, x.observed_at, x.id, x.geom,
               (SELECT i.id FROM inserted i WHERE i.detection_id = x.prev_id)
        FROM gaps x WHERE x.gap_id IS NULL
        ON CONFLICT DO NOTHING
    )
    SELECT * FROM updated UNION ALL SELECT * FROM inserted
    """
)

_AIS_GAP_SWEEP = text(
    f"""
    -- per agency: the newest report its own receivers heard (another agency's stream says nothing
    -- of whether this agency's receivers are up)
    WITH watermark AS (
        SELECT agency_code, least(now(), max(updated_at)) AS at FROM track_positions WHERE track_key LIKE 'mmsi:%'
        GROUP BY agency_code
    ),
    silent AS (
        SELECT tp.*, w.at AS watermark_at FROM track_positions tp JOIN watermark w USING (agency_code)
        WHERE tp.track_key LIKE 'mmsi:%'
          AND tp.updated_at < w.at - make_interval(secs => :gap_s)
          AND tp.updated_at > w.at - interval '7 days'
          AND NOT EXISTS (SELECT 1 FROM ais_gaps g WHERE g.agency_code = tp.agency_code AND g.track_key = tp.track_key
                          AND g.started_at = tp.observed_at)
          -- a newer fix that did not move the track (too close to a line to count) is not silence
          AND NOT EXISTS (SELECT 1 FROM detections d WHERE d.track_key = tp.track_key AND d.agency_code = tp.agency_code
                          AND d.observed_at > tp.observed_at)
          AND {_GAP_PLACE.format(p="tp.geom")}
    ),
    inserted AS (
        INSERT INTO alerts (agency_code, kind, severity, title, observed_at, sensor_id, track_key, class,
                            detection_id, detection_ids, geom, details)
        SELECT s.agency_code, 'ais_gap', 'high', {_GAP_TITLE.format(track="s.track_key", at="s.observed_at")},
               s.observed_at, s.sensor_id, s.track_key, s.class, s.detection_id, ARRAY[s.detection_id], s.geom,
               jsonb_build_object('started_at', s.observed_at, 'start_lon', ST_X(s.geom), 'start_lat', ST_Y(s.geom),
                                  'silent_s', round(extract(epoch FROM s.watermark_at - s.updated_at)))
        FROM silent s
        ON CONFLICT DO NOTHING
        RETURNING {ALERT_COLUMNS}
    ),
    recorded AS (
        INSERT INTO ais_gaps (agency_code, track_key, started_at, start_detection_id, start_geom, alert_id)
        SELECT s.agency_code, s.track_key, s.observed_at, s.detection_id, s.geom,
               (SELECT i.id FROM inserted i WHERE i.detection_id = s.detection_id)
        FROM silent s
        ON CONFLICT DO NOTHING
    )
    SELECT * FROM inserted
    """
)


# Two fixes of different vessels are compared when at most this far apart in time (AIS reports a
# vessel at anchor every 3 minutes, one under way every few seconds).
_PAIR_S = 180


def raise_alerts(*, session: Session, batch: int, settings: Settings) -> list[dict]:
    """Evaluate the maritime rules for the new detections of ``batch``
    (``alerts.statements.new_detections``) when some of them are boats or vessels."""
    alerts: list[dict] = []
    base = {"batch": batch}
    alerts += run(
        session,
        _DARK_VESSEL,
        {
            **base,
            "radius_m": settings.dark_vessel_radius_m,
            "window_s": settings.dark_vessel_window_s,
            "repeat_s": settings.dark_vessel_repeat_s,
        },
    )
    alerts += run(
        session,
        _AIS_GAP_CLOSE,
        {
            **base,
            "gap_s": settings.ais_gap_s,
            "boundary_m": settings.ais_gap_boundary_m,
        },
    )
    alerts += run(
        session,
        _RENDEZVOUS,
        {
            **base,
            "distance_m": settings.rendezvous_m,
            "min_s": settings.rendezvous_s,
            "break_s": settings.rendezvous_break_s,
            "pair_s": _PAIR_S,
        },
    )
    alerts += run(
        session,
        _LOITERING,
        {
            **base,
            "speed_mps": settings.loiter_speed_kn * 0.514444,
            "speed_kn": settings.loiter_speed_kn,
            "loiter_s": settings.loiter_s,
        },
    )
    return alerts


def sweep_ais_gaps(*, session: Session, settings: Settings) -> list[dict]:
    """Open an AIS gap (and alert) for every qualifying vessel silent longer than ``ais_gap_s``."""
    return run(session, _AIS_GAP_SWEEP, {"gap_s": settings.ais_gap_s, "boundary_m": settings.ais_gap_boundary_m})
