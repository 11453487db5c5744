"""Stored responses to creating requests, per caller and ``Idempotency-Key``.

A retried request (same caller, same key, same method, path and body) gets the stored response
back and changes nothing; the same key with a different request is refused. The key is claimed
in the request's own transaction, so a concurrent retry waits for the first to commit (and then
replays it) or to roll back (and then runs itself).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.errors import InvalidInput

# Kept this long; a retry after that runs as a new request.
RETENTION_HOURS = 24


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: bytes


def request_hash(method: str, path: str, body: bytes) -> str:
    """The same JSON in another key order or spacing is the same request."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


def claim(*, session: Session, username: str, key: str, fingerprint: str) -> StoredResponse | None:
    """None if the key is new (now claimed by this transaction), else the stored response to replay."""
    session.execute(
        text(
            "DELETE FROM idempotent_requests WHERE username = :u AND key = :k "
            "AND created_at < now() - make_interval(hours => :h)"
        ),
        {"u": username, "k": key, "h": RETENTION_HOURS},
    )
    claimed = session.execute(
        text(
            "INSERT INTO idempotent_requests (username, key, request_hash, status_code, body) "
            "VALUES (:u, :k, :h, 0, '') ON CONFLICT DO NOTHING RETURNING 1"
        ),
        {"u": username, "k": key, "h": fingerprint},
    ).scalar()
    if claimed:
        return None
    row = session.execute(
        text("SELECT request_hash, status_code, body FROM idempotent_requests WHERE username = :u AND key = :k"),
        {"u": username, "k": key},
    ).one()
    if row.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used for a different request; use a new key for a new request"
        )
    return StoredResponse(row.status_code, bytes(row.body))


def store(*, session: Session, username: str, key: str, status_code: int, body: bytes) -> None:
    session.execute(
        text("UPDATE idempotent_requests SET status_code = :s, body = :b WHERE username = :u AND key = :k"),
        {"s": status_code, "b": body, "u": username, "k": key},
    )
