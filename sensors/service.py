"""What the sensor domain does: the gateway/sensor registry, broker credentials, storing detections."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from audit import service as audit
from core import topics
from core.errors import Conflict, NotFound
from core.models import Agency
from core.permissions import ACCOUNT_ADMINS, require_role
from core.security import Principal, mosquitto_password_hash
from core.settings import get_settings
from sensors.models import Gateway, IngestSubscription, Sensor
from sensors.schemas import DetectionRow, GatewayCreate, SensorCreate


@dataclass(frozen=True)
class RegisteredSensor:
    id: str
    agency_code: str
    gateway_id: str
    kind: str = "other"
    lon: float | None = None
    lat: float | None = None
    range_m: float | None = None  # None: the default range of its kind


def create_gateway(*, session: Session, gateway_in: GatewayCreate, password: str | None = None) -> tuple[Gateway, str]:
    """Register a gateway; returns it with its MQTT password (shown once, stored only hashed)."""
    if session.get(Agency, gateway_in.agency_code) is None:
        raise NotFound(f"agency {gateway_in.agency_code} does not exist")
    if session.get(Gateway, gateway_in.id) is not None:
        raise Conflict(f"gateway {gateway_in.id} already exists")
    password = password or secrets.token_urlsafe(24)
    gateway = Gateway(
        id=gateway_in.id,
        agency_code=gateway_in.agency_code,
        name=gateway_in.name,
        mqtt_password_hash=mosquitto_password_hash(password),
    )
    session.add(gateway)
    session.flush()
    return gateway, password


# A password-file hash no password matches: the gateway's credential is withdrawn (no broker entry).
WITHDRAWN = "!"


def gateway_for_admin(*, session: Session, principal: Principal, gateway_id: str, action: str) -> Gateway:
    """A gateway of the caller's agency, locked, for an admin (another agency's gateways are not found)."""
    require_role(principal, ACCOUNT_ADMINS, action)
    gateway = session.get(Gateway, gateway_id, with_for_update=True)
    if gateway is None or gateway.agency_code != principal.agency_code:
        raise NotFound(f"gateway {gateway_id} does not exist in {principal.agency_code}")
    return gateway


def _gateway(session: Session, gateway_id: str) -> Gateway:
    gateway = session.get(Gateway, gateway_id, with_for_update=True)
    if gateway is None:
        raise NotFound(f"gateway {gateway_id} does not exist")
    return gateway


def rotate_gateway_credential(*, session: Session, gateway_id: str, actor: str) -> str:
    """A new broker password for the gateway (returned once, stored hashed); the old one stops working
    once the broker files are rewritten (``broker.service.sync_broker``)."""
    gateway = _gateway(session, gateway_id)
    password = secrets.token_urlsafe(24)
    restored = not gateway.mqtt_password_hash.startswith("$7$")
    gateway.mqtt_password_hash = mosquitto_password_hash(password)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="gateway.credential.rotate",
        entity_type="gateway",
        entity_id=gateway.id,
        agencies=[gateway.agency_code],
        details={"restored": restored},
    )
    return password


def revoke_gateway_credential(*, session: Session, gateway_id: str, actor: str) -> Gateway:
    """Withdraw the gateway's broker credential: once the broker files are rewritten it can neither
    connect nor publish. A new one is issued by rotating. Revoking a revoked gateway changes nothing."""
    gateway = _gateway(session, gateway_id)
    if gateway.mqtt_password_hash == WITHDRAWN:
        return gateway
    gateway.mqtt_password_hash = WITHDRAWN
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="gateway.credential.revoke",
        entity_type="gateway",
        entity_id=gateway.id,
        agencies=[gateway.agency_code],
    )
    return gateway


def create_sensor(*, session: Session, sensor_in: SensorCreate) -> Sensor:
    gateway = session.get(Gateway, sensor_in.gateway_id)
    if gateway is None:
        raise NotFound(f"gateway {sensor_in.gateway_id} does not exist")
    if session.get(Sensor, sensor_in.id) is not None:
        raise Conflict(f"sensor {sensor_in.id} already exists")
    sensor = Sensor(
        id=sensor_in.id,
        agency_code=gateway.agency_code,
        gateway_id=gateway.id,
        kind=sensor_in.kind,
        name=sensor_in.name,
        location=from_shape(Point(sensor_in.lon, sensor_in.lat), srid=4326),
        range_m=sensor_in.coverage_radius_m,
    )
    session.add(sensor)
    session.flush()
    if sensor_in.coverage_radius_m:
        session.execute(
            text("UPDATE sensors SET coverage = ST_Multi(ST_Buffer(location::geography, :r)::geometry) WHERE id = :id"),
            {"r": sensor_in.coverage_radius_m, "id": sensor.id},
        )
    return sensor


def sensors_by_id(*, session: Session) -> dict[str, RegisteredSensor]:
    """Every registered sensor with its agency, gateway, location and range."""
    query = select(
        Sensor.id,
        Sensor.agency_code,
        Sensor.gateway_id,
        Sensor.kind,
        func.ST_X(Sensor.location).label("lon"),
        func.ST_Y(Sensor.location).label("lat"),
        Sensor.range_m,
    )
    return {
        row.id: RegisteredSensor(row.id, row.agency_code, row.gateway_id, row.kind, row.lon, row.lat, row.range_m)
        for row in session.execute(query)
    }


def gateway_agencies(*, session: Session) -> dict[str, str]:
    """Every gateway's owning agency."""
    return {gateway_id: agency for gateway_id, agency in session.execute(select(Gateway.id, Gateway.agency_code))}


def broker_entries(*, session: Session, topic_root: str) -> tuple[list[str], list[str]]:
    """Password-file lines and ACL blocks for every gateway with a credential (a Mosquitto ``$7$``
    hash; a gateway whose credential was withdrawn, e.g. ``!``, gets none and cannot log in): each
    may write only under its own topic."""
    passwd, acl = [], []
    for gw in session.scalars(select(Gateway).where(Gateway.mqtt_password_hash.like("$7$%")).order_by(Gateway.id)):
        passwd.append(f"{gw.id}:{gw.mqtt_password_hash}")
        acl.append(f"user {gw.id}\ntopic write {topics.gateway_prefix(topic_root, gw.agency_code, gw.id)}/#\n")
    return passwd, acl


# The new rows of a transaction's batch, for the steps after storing (geofence, track rules):
# a temporary table of the connection, emptied when the transaction ends. Handing the rows over
# inside PostgreSQL spares turning them into JSON and parsing it back.
_NEW_DETECTIONS = text(
    """
    CREATE TEMP TABLE IF NOT EXISTS new_detections (
        batch bigint NOT NULL, id bigint NOT NULL, observed_at timestamptz NOT NULL, sensor_id text NOT NULL,
        agency_code text NOT NULL, event_id text NOT NULL, track_key text, class text NOT NULL,
        confidence real NOT NULL, speed_mps real, identifiers jsonb NOT NULL, lon float8 NOT NULL,
        lat float8 NOT NULL, zone_ids int[] NOT NULL, edge_m float8
    ) ON COMMIT DELETE ROWS
    """
)

# The batch arrives as one array per column, in PostgreSQL's binary format (``%(name)b``): no
# text to parse, not even the raw payloads, which are only checked to be JSON.
_INSERT_DETECTIONS = """
    WITH input AS (
        SELECT DISTINCT ON (sensor_id, event_id) *
        FROM unnest(%(sensor_id)b::text[], %(agency_code)b::text[], %(event_id)b::text[],
                    %(observed_at)b::timestamptz[], %(lon)b::float8[], %(lat)b::float8[], %(class)b::text[],
                    %(confidence)b::float8[], %(track_id)b::text[], %(track_key)b::text[],
                    %(speed_mps)b::float8[], %(heading_deg)b::float8[], %(identifiers)b::text[], %(raw)b::text[])
             AS t(sensor_id, agency_code, event_id, observed_at, lon, lat, class, confidence, track_id,
                  track_key, speed_mps, heading_deg, identifiers, raw)
        ORDER BY sensor_id, event_id
    ),
    fresh AS (
        INSERT INTO detection_keys (sensor_id, event_id, observed_at)
        SELECT sensor_id, event_id, observed_at FROM input
        ON CONFLICT DO NOTHING
        RETURNING sensor_id, event_id
    ),
    inserted AS (
        INSERT INTO detections (observed_at, sensor_id, agency_code, event_id, geom, located_by, class,
                                confidence, track_id, track_key, speed_mps, heading_deg, identifiers, raw)
        SELECT i.observed_at, i.sensor_id, i.agency_code, i.event_id,
               CASE WHEN i.lon IS NULL THEN s.location ELSE ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326) END,
               CASE WHEN i.lon IS NULL THEN 'sensor' ELSE 'payload' END,
               i.class, i.confidence, i.track_id, i.track_key, i.speed_mps, i.heading_deg,
               coalesce(i.identifiers::jsonb, '{}'::jsonb), i.raw::json
        FROM input i
        JOIN fresh f USING (sensor_id, event_id)
        JOIN sensors s ON s.id = i.sensor_id
        RETURNING id, observed_at, sensor_id, agency_code, event_id, track_key, class, confidence, speed_mps,
                  identifiers, geom, ST_X(geom) AS lon, ST_Y(geom) AS lat
    ),
    -- Where each new detection lies, for the geofence step (alerts/geofence.py), found here so that it
    -- is done while the batch before is still being geofenced: the zones it is in (zone_ids), and
    -- its distance in metres to the nearest border line or entry-zone edge when under about 1 km
    -- (edge_m; the hysteresis band). Both read the point's own cell of the grid.
    placed AS (
        INSERT INTO new_detections
        SELECT CAST(%(batch)s AS bigint), d.id, d.observed_at, d.sensor_id, d.agency_code, d.event_id,
               d.track_key, d.class, d.confidence, d.speed_mps, d.identifiers, d.lon, d.lat,
               ARRAY(SELECT DISTINCT c.zone_id FROM zone_cells c
                     WHERE c.i = bw_cell(d.lon) AND c.j = bw_cell(d.lat)
                       AND (c.inside OR ST_Intersects(c.geom, d.geom))),
               (SELECT min(ST_Distance(f.geom, d.geom)) FROM fence_cells f
                WHERE f.i = bw_cell(d.lon) AND f.j = bw_cell(d.lat)) * 111320.0 * cos(radians(d.lat))
        FROM inserted d
        RETURNING 1
    )
    SELECT count(*) FROM placed
"""
_FLOAT_COLUMNS = ("lon", "lat", "confidence", "speed_mps", "heading_deg")
_TEXT_COLUMNS = ("sensor_id", "agency_code", "event_id", "class", "track_id", "track_key", "raw")
_batches = itertools.count(1)


@dataclass(frozen=True)
class StoredBatch:
    """How many detections of a batch were new; those rows wait in ``new_detections`` (with the
    zones each is in and its distance to the nearest fence edge) under the number ``batch`` until
    the transaction ends."""

    count: int
    batch: int


def store_detections(*, session: Session, rows: Sequence[DetectionRow], into: StoredBatch | None = None) -> StoredBatch:
    """Insert a batch in one statement; an event already stored (same sensor and event id) is skipped.
    ``into``: a batch stored earlier in this transaction that these rows join."""
    batch = into.batch if into is not None else next(_batches)
    before = into.count if into is not None else 0
    if not rows:
        return StoredBatch(before, batch)
    params: dict[str, object] = {c: [r[c] for r in rows] for c in _TEXT_COLUMNS}
    for c in _FLOAT_COLUMNS:  # one element type per array (a JSON 3 is an int)
        params[c] = [None if r[c] is None else float(r[c]) for r in rows]
    params["observed_at"] = [r["observed_at"] for r in rows]
    params["identifiers"] = [orjson.dumps(r["identifiers"]).decode() if r["identifiers"] else None for r in rows]
    params["batch"] = batch
    session.execute(_NEW_DETECTIONS)  # a round trip: the table may have gone with a rollback
    return StoredBatch(before + session.connection().exec_driver_sql(_INSERT_DETECTIONS, params).scalar_one(), batch)


def newest_per_sensor(rows: Sequence[DetectionRow], into: dict[str, datetime] | None = None) -> dict[str, datetime]:
    """Each sensor's newest observation time among ``rows``, merged into a copy of ``into``."""
    newest = dict(into or {})
    for row in rows:
        seen = newest.get(row["sensor_id"])
        if seen is None or row["observed_at"] > seen:
            newest[row["sensor_id"]] = row["observed_at"]
    return newest


def mark_sensors_seen(*, session: Session, newest: dict[str, datetime]) -> None:
    """Move each sensor's ``last_seen_at`` forward to the time given (one statement; never back).

    Kept apart from ``store_detections``: these rows are shared by every batch of a sensor, so the
    ingest takes their locks only in its ordered commit step, never while a batch is stored ahead.
    """
    if not newest:
        return
    session.execute(
        text(
            "UPDATE sensors s SET last_seen_at = greatest(s.last_seen_at, m.at) "
            "FROM unnest(CAST(:ids AS text[]), CAST(:ats AS timestamptz[])) AS m(id, at) WHERE s.id = m.id"
        ),
        {"ids": list(newest), "ats": list(newest.values())},
    )


def session_filters(*, session: Session, client_id: str) -> set[str]:
    """The topic filters recorded for an ingest worker's broker session."""
    return set(
        session.scalars(select(IngestSubscription.topic_filter).where(IngestSubscription.client_id == client_id))
    )


def record_session_filters(*, session: Session, client_id: str, filters: Sequence[str]) -> None:
    """Record exactly these filters for the worker's session (after the stale ones were unsubscribed)."""
    session.execute(delete(IngestSubscription).where(IngestSubscription.client_id == client_id))
    session.add_all(IngestSubscription(client_id=client_id, topic_filter=f) for f in filters)
    session.flush()


# The letters of one batch, numbered per gateway (the gateway is read from the topic,
# ROOT/gw/<agency>/<gateway>/...): each gateway's count of the day is moved on first, under its row
# lock, so that the numbers of concurrent batches never overlap. A letter is kept whole while its
# number is within the quota, and past it only every ``sample``-th one (the count records them all).
_DEAD_LETTERS = text(
    """
    WITH x AS (
        SELECT t, p, r, coalesce(substring(t FROM '/gw/[^/]+/([^/]+)'), '') AS gw, o
        FROM unnest(CAST(:topics AS text[]), CAST(:payloads AS bytea[]), CAST(:reasons AS text[]))
             WITH ORDINALITY AS u(t, p, r, o)
    ), counted AS (
        INSERT INTO dead_letter_counts AS c (gateway_id, day, received, first_at, last_at)
        SELECT gw, CAST(now() AT TIME ZONE 'UTC' AS date), count(*), now(), now() FROM x GROUP BY gw
        ON CONFLICT (gateway_id, day) DO UPDATE SET received = c.received + EXCLUDED.received, last_at = now()
        RETURNING gateway_id, received
    ), numbered AS (
        SELECT x.t, x.p, x.r,
               counted.received - count(*) OVER (PARTITION BY x.gw)
                   + row_number() OVER (PARTITION BY x.gw ORDER BY x.o) AS n
        FROM x JOIN counted ON counted.gateway_id = x.gw
    )
    INSERT INTO dead_letters (topic, payload, reason, payload_size)
    SELECT t, p, r, octet_length(p) FROM numbered
    WHERE n <= :quota OR (n - :quota) % :sample = 0
    """
)


def record_dead_letters(
    *, session: Session, letters: Sequence[tuple[str, bytes, str]], quota: int | None = None, sample: int | None = None
) -> None:
    """Keep rejected messages (topic, raw bytes, reason): every one of them is counted per gateway and
    day (``dead_letter_counts``); the first ``quota`` of a gateway's day are kept whole, and past it one
    in ``sample``, so a gateway that floods bad messages cannot fill the database."""
    if not letters:
        return
    settings = get_settings()
    session.execute(
        _DEAD_LETTERS,
        {
            "topics": [t for t, _, _ in letters],
            "payloads": [p for _, p, _ in letters],
            "reasons": [r for _, _, r in letters],
            "quota": settings.dead_letter_gateway_quota if quota is None else quota,
            "sample": settings.dead_letter_sample_every if sample is None else sample,
        },
    )


def set_gateway_status(*, session: Session, statuses: dict[str, tuple[str, datetime]]) -> None:
    """Record each gateway's latest status in one statement (an older report never overwrites a newer one)."""
    if not statuses:
        return
    session.execute(
        text(
            "UPDATE gateways g SET status = x.status, status_at = x.at "
            "FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[]), CAST(:ats AS timestamptz[])) "
            "AS x(id, status, at) WHERE g.id = x.id AND (g.status_at IS NULL OR g.status_at <= x.at)"
        ),
        {
            "ids": list(statuses),
            "statuses": [status for status, _ in statuses.values()],
            "ats": [at for _, at in statuses.values()],
        },
    )
