"""Outbound webhooks: an agency's alerts POSTed to the URLs it subscribes, signed, retried, logged.

Delivery never runs in the ingest transaction. A deliverer (``borderwatch webhooks-deliver``)
reads new alerts by id and queues one delivery per matching subscription in one set-based
statement, then claims due deliveries (``FOR UPDATE SKIP LOCKED``, so several deliverers split
the work), POSTs them outside any transaction, and records each outcome.

Signing (receivers verify it): the body is the JSON document as sent; the headers are
``X-Borderwatch-Timestamp`` (Unix seconds) and ``X-Borderwatch-Signature: v1=<hex>`` where
``<hex>`` is HMAC-SHA256 with the subscription's secret over ``"{timestamp}.{body}"``.
A receiver recomputes it, compares in constant time, and refuses timestamps more than a few
minutes old (replays). ``X-Borderwatch-Delivery`` is the delivery id, the same on every retry
(receivers de-duplicate on it).

Destinations: a subscription's host must resolve to public addresses only, unless the network is
listed in ``BW_WEBHOOK_ALLOWED_NETWORKS`` (receivers on an agency's own closed network); loopback,
private, link-local (cloud metadata), carrier-grade NAT and reserved addresses are refused at
subscription and again before every attempt, and the POST goes to the address that was checked
(the URL's host name still travels in ``Host`` and, for https, in SNI and the certificate check),
so a name that changes its answer in between cannot send the deliverer elsewhere. Redirects are
not followed.

Retries: a timeout, a connection error, 408, 429 or a 5xx is tried again after
``backoff_s * 2**(attempts-1)`` (capped at an hour) until ``max_attempts``; any other
4xx is final. Every outcome is in the delivery log (status, attempts, last status code, last
error) that the agency's supervisors read.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.errors import InvalidInput, NotFound
from core.permissions import MANAGERS, require_role
from core.security import Principal
from core.vocabulary import ALERT_KINDS, SEVERITIES

SIGNATURE_HEADER = "X-Borderwatch-Signature"
TIMESTAMP_HEADER = "X-Borderwatch-Timestamp"
DELIVERY_HEADER = "X-Borderwatch-Delivery"
MAX_BACKOFF_S = 3600.0
# Alert ids commit out of order across ingest workers: the watermark waits this long behind.
ALERT_ID_SETTLE_S = 10
RETRYABLE_STATUS = {408, 429}

log = logging.getLogger("borderwatch.webhooks")


class WebhookNotFound(NotFound):
    code = "webhook_not_found"


class WebhookDestinationRefused(InvalidInput):
    code = "webhook_destination_refused"


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _refusal(address: str, allowed: Sequence[Network]) -> str | None:
    """Why a receiver at ``address`` may not be called (the kind of address, not the address: a
    caller must not learn what a name resolves to on the deliverer's network), or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope ("fe80::1%eth0") aside
    if ip.version == 6 and ip.ipv4_mapped is not None:  # ::ffff:127.0.0.1 is 127.0.0.1
        ip = ip.ipv4_mapped
    if any(ip in network for network in allowed):
        return None
    for test, what in (
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_private, "private"),
        (not ip.is_global, "non-public"),
    ):
        if test:
            return f"a {what} address"
    return None


def resolve_destination(
    url: str, allowed: Sequence[Network], *, resolve: Callable[..., list] = socket.getaddrinfo
) -> str:
    """The address to call ``url``'s receiver at; raises ``WebhookDestinationRefused`` if its host
    does not resolve or any of its addresses is not a public one (nor in ``allowed``)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise WebhookDestinationRefused(f"webhook host {host!r} does not resolve: {exc}") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise WebhookDestinationRefused(f"webhook host {host!r} does not resolve")
    for address in addresses:
        if (reason := _refusal(address, allowed)) is not None:
            # The host as the caller wrote it, and what kind of address it leads to; never the
            # address a name resolved to (that would map the internal network for the caller).
            log.info("webhook host %r refused: %s is %s", host, address, reason)
            raise WebhookDestinationRefused(
                f"webhook host {host!r} resolves to {reason}; a receiver on the agency's own network must be "
                "allowed with BW_WEBHOOK_ALLOWED_NETWORKS",
                host=host,
            )
    return addresses[0]


def _pinned(url: str, address: str) -> str:
    """``url`` with its host replaced by ``address`` (user, port, path and query kept)."""
    parts = urlsplit(url)
    literal = f"[{address}]" if ":" in address else address
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (userinfo + "@" if userinfo else "") + literal + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class WebhookCreate(BaseModel):
    url: str = Field(min_length=8, max_length=2000)
    kinds: list[str] = Field(default_factory=list, max_length=len(ALERT_KINDS))
    severities: list[str] = Field(default_factory=list, max_length=len(SEVERITIES))

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or "\x00" in value:
            raise ValueError("url must be an absolute http or https URL")
        return value

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(ALERT_KINDS))
        if unknown:
            raise ValueError(f"unknown alert kinds {unknown}; known: {', '.join(ALERT_KINDS)}")
        return sorted(set(value))

    @field_validator("severities")
    @classmethod
    def _severities(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SEVERITIES))
        if unknown:
            raise ValueError(f"unknown severities {unknown}; known: {', '.join(SEVERITIES)}")
        return sorted(set(value))


class WebhookOut(BaseModel):
    id: int
    agency_code: str
    url: str
    kinds: list[str]
    severities: list[str]
    active: bool
    created_by: str
    created_at: str


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The HMAC-SHA256 key; shown only now")


class DeliveryOut(BaseModel):
    id: int
    alert_id: int
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: str
    created_at: str
    delivered_at: str | None


_WEBHOOK_SELECT = """SELECT id, agency_code, url, kinds, severities, active, created_by,
                            to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at
                     FROM webhook_subscriptions"""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Borderwatch-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, *, tolerance_s: float = 300, now: float | None = None
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    if not timestamp.isdigit() or abs((now or time.time()) - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


def create(
    *, session: Session, principal: Principal, webhook_in: WebhookCreate, allowed_networks: Sequence[Network] = ()
) -> WebhookCreated:
    """A subscription of the caller's agency; it receives alerts raised from now on. Its host must
    resolve to public addresses, or to ones in ``allowed_networks``."""
    require_role(principal, MANAGERS, "manage webhooks")
    resolve_destination(webhook_in.url, allowed_networks)
    secret = secrets.token_urlsafe(32)
    row = session.execute(
        text(
            """INSERT INTO webhook_subscriptions (agency_code, url, secret, kinds, severities, created_by, last_alert_id)
           VALUES (:agency, :url, :secret, CAST(:kinds AS varchar[]), CAST(:severities AS varchar[]), :user,
                   (SELECT coalesce(max(id), 0) FROM alerts))
           RETURNING id"""
        ),
        {
            "agency": principal.agency_code,
            "url": webhook_in.url,
            "secret": secret,
            "kinds": webhook_in.kinds,
            "severities": webhook_in.severities,
            "user": principal.username,
        },
    ).scalar_one()
    return WebhookCreated(**get(session=session, principal=principal, webhook_id=row).model_dump(), secret=secret)


def get(*, session: Session, principal: Principal, webhook_id: int) -> WebhookOut:
    require_role(principal, MANAGERS, "read webhooks")
    row = session.execute(
        text(f"{_WEBHOOK_SELECT} WHERE id = :id AND agency_code = :agency"),
        {"id": webhook_id, "agency": principal.agency_code},
    ).one_or_none()
    if row is None:
        raise WebhookNotFound(f"webhook {webhook_id} does not exist or is not {principal.agency_code}'s")
    return WebhookOut(**row._mapping)


def list_webhooks(*, session: Session, principal: Principal) -> list[WebhookOut]:
    require_role(principal, MANAGERS, "read webhooks")
    rows = session.execute(
        text(f"{_WEBHOOK_SELECT} WHERE agency_code = :agency ORDER BY id"), {"agency": principal.agency_code}
    ).all()
    return [WebhookOut(**r._mapping) for r in rows]


def deactivate(*, session: Session, principal: Principal, webhook_id: int) -> WebhookOut:
    """No new deliveries; the log stays readable."""
    get(session=session, principal=principal, webhook_id=webhook_id)
    session.execute(text("UPDATE webhook_subscriptions SET active = false WHERE id = :id"), {"id": webhook_id})
    session.execute(
        text(
            "UPDATE webhook_deliveries SET status = 'failed', last_error = 'subscription deactivated' "
            "WHERE subscription_id = :id AND status = 'pending'"
        ),
        {"id": webhook_id},
    )
    return get(session=session, principal=principal, webhook_id=webhook_id)


def deliveries(
    *, session: Session, principal: Principal, webhook_id: int, limit: int = 100, before: int | None = None
) -> list[DeliveryOut]:
    """The delivery log of one of the agency's subscriptions, newest first."""
    get(session=session, principal=principal, webhook_id=webhook_id)
    ts = """to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
    rows = session.execute(
        text(
            f"""SELECT id, alert_id, status, attempts, last_status_code, last_error,
                   {ts.format("next_attempt_at")} AS next_attempt_at, {ts.format("created_at")} AS created_at,
                   {ts.format("delivered_at")} AS delivered_at
            FROM webhook_deliveries
            WHERE subscription_id = :id AND (CAST(:before AS bigint) IS NULL OR id < :before)
            ORDER BY id DESC LIMIT :limit"""
        ),
        {"id": webhook_id, "before": before, "limit": limit},
    ).all()
    return [DeliveryOut(**r._mapping) for r in rows]


# -- the deliverer ------------------------------------------------------------------------------
_ENQUEUE = text(
    """
    WITH subs AS (
        SELECT id, agency_code, kinds, severities, last_alert_id FROM webhook_subscriptions WHERE active FOR UPDATE
    ),
    queued AS (
        INSERT INTO webhook_deliveries (subscription_id, alert_id)
        SELECT s.id, a.id
        FROM subs s
        JOIN alerts a ON a.agency_code = s.agency_code AND a.id > s.last_alert_id
        WHERE (cardinality(s.kinds) = 0 OR a.kind = ANY(s.kinds))
          AND (cardinality(s.severities) = 0 OR a.severity = ANY(s.severities))
        ON CONFLICT (subscription_id, alert_id) DO NOTHING
        RETURNING 1
    ),
    advanced AS (
        UPDATE webhook_subscriptions w
        SET last_alert_id = m.settled
        FROM (SELECT s.id, max(a.id) AS settled
              FROM subs s JOIN alerts a ON a.agency_code = s.agency_code AND a.id > s.last_alert_id
              WHERE a.created_at < now() - make_interval(secs => :settle)
              GROUP BY s.id) m
        WHERE w.id = m.id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM queued) AS queued
    """
)

_CLAIM = text(
    """
    WITH due AS (
        SELECT d.id FROM webhook_deliveries d
        WHERE d.status = 'pending' AND d.next_attempt_at <= now()
        ORDER BY d.next_attempt_at, d.id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE webhook_deliveries d
    SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => :lease)
    FROM due, webhook_subscriptions s, alerts a
    WHERE d.id = due.id AND s.id = d.subscription_id AND a.id = d.alert_id
    RETURNING d.id, d.attempts, s.url, s.secret,
        json_build_object(
            'event', 'alert', 'delivery_id', d.id, 'subscription_id', s.id,
            'alert', json_build_object(
                'id', a.id, 'agency_code', a.agency_code, 'kind', a.kind, 'severity', a.severity,
                'status', a.status, 'title', a.title,
                'observed_at', to_char(a.observed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                'created_at', to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                'sensor_id', a.sensor_id, 'track_key', a.track_key, 'class', a.class,
                'from_state', a.from_state, 'to_state', a.to_state, 'segment_id', a.segment_id,
                'zone_id', a.zone_id, 'geometry', ST_AsGeoJSON(a.geom, 6)::json))::text AS body
    """
)


@dataclass(frozen=True)
class Claimed:
    id: int
    attempts: int
    url: str
    secret: str
    body: bytes


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    attempts: int
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        return self.status_code is None or self.status_code >= 500 or self.status_code in RETRYABLE_STATUS


def enqueue(*, session: Session) -> int:
    """Queue a delivery for every new alert of every active subscription it matches; how many."""
    return session.execute(_ENQUEUE, {"settle": ALERT_ID_SETTLE_S}).scalar_one()


def claim(*, session: Session, limit: int, lease_s: float) -> list[Claimed]:
    """Due deliveries, leased for ``lease_s`` (another deliverer takes them up if this one dies)."""
    rows = session.execute(_CLAIM, {"limit": limit, "lease": lease_s}).all()
    return [Claimed(r.id, r.attempts, r.url, r.secret, r.body.encode()) for r in rows]


def post(client: httpx.Client, delivery: Claimed, allowed_networks: Sequence[Network] = ()) -> Outcome:
    """One attempt: the signed POST and what came of it (never raises for the receiver's failures).
    The receiver's address is checked again and the POST goes to that very address."""
    try:
        address = resolve_destination(delivery.url, allowed_networks)
    except WebhookDestinationRefused as exc:
        return Outcome(delivery.id, delivery.attempts, None, f"refused: {exc.message}"[:500])
    timestamp = int(time.time())
    host = urlsplit(delivery.url)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Borderwatch-Webhooks/1",
        "Host": host.netloc.rpartition("@")[2],
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(delivery.secret, timestamp, delivery.body),
        DELIVERY_HEADER: str(delivery.id),
    }
    try:
        response = client.post(
            _pinned(delivery.url, address),
            content=delivery.body,
            headers=headers,
            extensions={"sni_hostname": host.hostname},
        )
    except httpx.HTTPError as exc:
        return Outcome(delivery.id, delivery.attempts, None, f"{type(exc).__name__}: {exc}"[:500])
    error = None if response.is_success else f"HTTP {response.status_code}: {response.text[:200]}"
    return Outcome(delivery.id, delivery.attempts, response.status_code, error)


def record(*, session: Session, outcomes: Sequence[Outcome], max_attempts: int, backoff_s: float) -> None:
    """Write the attempts' outcomes in one statement: delivered, retry later, or failed for good."""
    if not outcomes:
        return
    batch = [
        {
            "id": o.delivery_id,
            "code": o.status_code,
            "error": o.error,
            "status": "delivered"
            if o.delivered
            else ("pending" if o.retryable and o.attempts < max_attempts else "failed"),
            "delay": min(MAX_BACKOFF_S, backoff_s * 2 ** (o.attempts - 1)),
        }
        for o in outcomes
    ]
    session.execute(
        text(
            """UPDATE webhook_deliveries d
           SET status = o.status, last_status_code = o.code, last_error = o.error,
               delivered_at = CASE WHEN o.status = 'delivered' THEN now() END,
               next_attempt_at = CASE WHEN o.status = 'pending' THEN now() + make_interval(secs => o.delay)
                                      ELSE d.next_attempt_at END
           FROM jsonb_to_recordset(CAST(:batch AS jsonb)) AS o(id bigint, code int, error text, status text,
                                                               delay float8)
           WHERE d.id = o.id"""
        ),
        {"batch": orjson.dumps(batch).decode()},
    )


@dataclass
class Deliverer:
    """One deliverer's loop; ``run_once`` is a full cycle (queue, claim, post, record)."""

    sessions: Callable[[], AbstractContextManager[Session]]
    allowed_networks: Sequence[Network] = ()
    timeout_s: float = 10.0
    max_attempts: int = 6
    backoff_s: float = 30.0
    batch: int = 50

    def __post_init__(self) -> None:
        self.client = httpx.Client(timeout=self.timeout_s, follow_redirects=False)

    def run_once(self) -> tuple[int, list[Outcome]]:
        with self.sessions() as session:
            queued = enqueue(session=session)
        with self.sessions() as session:
            claimed = claim(session=session, limit=self.batch, lease_s=self.timeout_s * 2 + 5)
        outcomes = [post(self.client, d, self.allowed_networks) for d in claimed]
        with self.sessions() as session:
            record(session=session, outcomes=outcomes, max_attempts=self.max_attempts, backoff_s=self.backoff_s)
        return queued, outcomes

    def close(self) -> None:
        self.client.close()
