"""The paging cursor codec: opaque, URL-safe tokens that stand for the last key of a page.

A cursor is handed out by the service and only ever read back by it: anything else is refused
with ``InvalidInput`` (400) naming the ``cursor`` parameter. Keyset pages (``WHERE id > :after``)
need only the last key, so a cursor holds nothing else.
"""

from __future__ import annotations

import base64
import re

import orjson

from core.errors import InvalidInput

_NOT_OURS = "cursor is not one this service handed out"


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64decode(cursor: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except ValueError:
        return None


def encode_cursor(last_id: int, *, kind: str = "id") -> str:
    """A cursor for the page after the row whose positive integer key ``kind`` is ``last_id``."""
    return _b64encode(f"{kind}:{last_id}".encode())


def decode_cursor(cursor: str | None, *, kind: str = "id") -> int | None:
    """The key a cursor stands for (None for no cursor); InvalidInput for anything not handed out."""
    if not cursor:
        return None
    raw = _b64decode(cursor)
    try:
        text = raw.decode() if raw is not None else ""
    except UnicodeDecodeError:
        text = ""
    match = re.fullmatch(rf"{re.escape(kind)}:([1-9][0-9]{{0,17}})", text)
    if not match:
        raise InvalidInput(_NOT_OURS, parameter="cursor")
    return int(match.group(1))


def encode_key_cursor(last_key: int | str) -> str:
    """A cursor for a key that may be an integer or a string (feature collections keyed by code)."""
    return _b64encode(orjson.dumps([last_key]))


def decode_key_cursor(cursor: str) -> int | str | None:
    """The integer or string key of a cursor from ``encode_key_cursor``; None when it is not one."""
    raw = _b64decode(cursor)
    try:
        value = orjson.loads(raw) if raw is not None else None
    except orjson.JSONDecodeError:
        return None
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], (int, str)):
        return value[0]
    return None
