"""How patrol records go out: pages of rows with the cursor of the next page, points as GeoJSON
geometry, and the sync token a client keeps to ask later for what changed since."""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.paging import encode_cursor
from patrols import schemas

DEFAULT_PAGE = 100
MAX_PAGE = 500


def page_of(rows: list, limit: int) -> tuple[list, str | None]:
    """The first ``limit`` rows (of ``limit + 1`` fetched) and the cursor of the next page, if there is one."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1].id)
    return rows, None


def point(lon: float, lat: float) -> schemas.PointGeometry:
    """A GeoJSON point, to the 7th decimal (about a centimetre)."""
    return schemas.PointGeometry(coordinates=[round(lon, 7), round(lat, 7)])


def sync_token(*, session: Session) -> str:
    """Every transaction with an id below this had finished when it was taken (so nothing is missed)."""
    return str(session.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")).scalar_one())


def decode_sync_token(token: str | None) -> int | None:
    if token is None or token == "":
        return None
    if not re.fullmatch(r"[0-9]{1,19}", token) or int(token) >= 2**63:
        raise InvalidInput("since must be a sync_token this service handed out", parameter="since")
    return int(token)
