"""Unit positions: batches reported by a unit's device (stored once each), and a unit's track."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.security import Principal
from patrols import schemas
from patrols.pages import point
from patrols.units import get_unit, own_unit_for_update
from sharing import service as sharing

MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_POSITION_AGE = timedelta(days=30)

# What a partner sees of another agency's unit's track (binds :agency, the reader's): the positions
# inside a joint patrol sector both agencies are members of, observed while a joint patrol of that
# sector with both agencies was under way, or inside the window of a sharing agreement in force from
# the unit's agency to the reader (directly or to that sector). Nothing outside the sector, nothing
# from before or after the arrangement: the owner's patrol patterns stay the owner's.
PARTNER_POSITION_SQL = f"""EXISTS (
    SELECT 1 FROM zones z
    WHERE z.kind = 'joint_patrol_sector'
      AND z.member_agencies @> ARRAY[CAST(:agency AS varchar), CAST(p.agency_code AS varchar)]
      AND ST_Intersects(z.geom, p.geom)
      AND (EXISTS (SELECT 1 FROM joint_patrols jp
                   WHERE jp.zone_id = z.id
                     AND jp.agencies @> ARRAY[CAST(:agency AS varchar), CAST(p.agency_code AS varchar)]
                     AND p.observed_at >= jp.starts_at AND p.observed_at <= jp.ends_at)
           OR {sharing.agreement_covers("p.agency_code", "p.observed_at", "z.id")}))"""

_STORE_POSITIONS = text(
    """
    WITH input AS (
        SELECT DISTINCT ON (client_id) *
        FROM json_to_recordset(CAST(:batch AS json)) AS t(
            client_id text, observed_at timestamptz, lon float8, lat float8, speed_kmh float8, heading_deg float8,
            accuracy_m float8)
        ORDER BY client_id, observed_at DESC
    ),
    stored AS (
        INSERT INTO unit_positions (unit_id, agency_code, client_id, observed_at, geom, speed_kmh, heading_deg,
                                    accuracy_m)
        SELECT :unit, :agency, client_id, observed_at, ST_SetSRID(ST_MakePoint(lon, lat), 4326), speed_kmh,
               heading_deg, accuracy_m
        FROM input
        ON CONFLICT (unit_id, client_id) DO NOTHING
        RETURNING observed_at, geom
    ),
    latest AS (SELECT observed_at, geom FROM stored ORDER BY observed_at DESC LIMIT 1),
    moved AS (
        UPDATE patrol_units u SET geom = latest.geom, position_at = latest.observed_at
        FROM latest
        WHERE u.id = :unit AND (u.position_at IS NULL OR u.position_at < latest.observed_at)
        RETURNING u.id
    )
    SELECT (SELECT count(*) FROM stored) AS stored, (SELECT count(*) FROM moved) AS moved
    """
)


def record_positions(
    *, session: Session, principal: Principal, unit_id: int, batch: schemas.PositionBatch
) -> schemas.PositionBatchResult:
    """Store a batch of reports in one statement; reports already stored (same client id) change nothing."""
    unit = own_unit_for_update(session, principal, unit_id, "report positions")
    now = datetime.now(timezone.utc)
    for i, p in enumerate(batch.positions):
        if p.observed_at > now + MAX_CLOCK_SKEW:
            raise InvalidInput(f"positions[{i}].observed_at lies in the future", index=i)
        if p.observed_at < now - MAX_POSITION_AGE:
            raise InvalidInput(f"positions[{i}].observed_at is older than {MAX_POSITION_AGE.days} days", index=i)
    rows = [p.model_dump(mode="json") for p in batch.positions]
    result = session.execute(
        _STORE_POSITIONS, {"batch": orjson.dumps(rows).decode(), "unit": unit.id, "agency": unit.agency_code}
    ).one()
    session.expire(unit)
    received = len(batch.positions)
    return schemas.PositionBatchResult(
        received=received,
        stored=result.stored,
        duplicates=received - result.stored,
        position_updated=bool(result.moved),
    )


def unit_track_geojson(
    *, session: Session, principal: Principal, unit_id: int, start: datetime | None, end: datetime | None, limit: int
) -> dict:
    """The unit's position history as a GeoJSON FeatureCollection of points, newest first; a
    partner's unit's only as far as :data:`PARTNER_POSITION_SQL` shares it."""
    unit = get_unit(session=session, principal=principal, unit_id=unit_id)
    shared = "" if unit.agency_code == principal.agency_code else f"AND {PARTNER_POSITION_SQL}"
    rows = session.execute(
        text(
            f"""SELECT p.id, p.client_id, p.observed_at, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat, p.speed_kmh,
                  p.heading_deg, p.accuracy_m
           FROM unit_positions p WHERE p.unit_id = :u
             AND (CAST(:start AS timestamptz) IS NULL OR p.observed_at >= :start)
             AND (CAST(:end AS timestamptz) IS NULL OR p.observed_at <= :end)
             {shared}
           ORDER BY p.observed_at DESC, p.id DESC LIMIT :limit"""
        ),
        {"u": unit_id, "start": start, "end": end, "limit": limit, "agency": principal.agency_code},
    ).all()
    return {
        "type": "FeatureCollection",
        "numberReturned": len(rows),
        "features": [
            {
                "type": "Feature",
                "id": r.id,
                "geometry": point(r.lon, r.lat).model_dump(),
                "properties": {
                    "unit_id": unit_id,
                    "client_id": r.client_id,
                    "observed_at": r.observed_at,
                    "speed_kmh": r.speed_kmh,
                    "heading_deg": r.heading_deg,
                    "accuracy_m": r.accuracy_m,
                },
            }
            for r in rows
        ],
    }
