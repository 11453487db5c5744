"""OGC API - Features (Part 1: Core): the protocol around the feature layers of ``features``.

Every layer that says ``ogc=True`` is a collection, read from its one description (agency
scope, sharing and redaction included; ``features.pages``), so an OGC client sees exactly what
the caller's own feature endpoints show. This module reads the protocol's parameters (bbox,
datetime, limit, cursor): pages are keyset pages in id order, and the ``next`` link's cursor
carries the last id returned.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy.orm import Session

from api.errors import InvalidParameter
from api.params import parse_bbox, parse_datetime
from core.errors import NotFound
from core.security import Principal
from features import LAYERS, pages
from features.filters import BBox, TimeRange
from features.layer import FeatureLayer

DEFAULT_LIMIT = 100
MAX_LIMIT = 10000
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]


class InvalidOgcParameter(InvalidParameter):
    """OGC API - Features answers a query parameter it cannot use with 400 (Part 1, 7.15)."""

    status_code = 400


class CollectionNotFound(NotFound):
    code = "collection_not_found"


# The layers served as collections, in the catalogue's order.
COLLECTIONS: dict[str, FeatureLayer] = {name: layer for name, layer in LAYERS.items() if layer.ogc}


@dataclass
class Page:
    features: list[str]  # each one GeoJSON Feature, serialised by PostGIS
    next_cursor: str | None


def collection(collection_id: str) -> FeatureLayer:
    try:
        return COLLECTIONS[collection_id]
    except KeyError:
        raise CollectionNotFound(f"no collection {collection_id!r}; see /collections") from None


def parse_ogc_bbox(raw: str | None) -> BBox | None:
    """``minlon,minlat,maxlon,maxlat`` or the 3D form with heights (which are ignored)."""
    if raw is not None and raw.count(",") == 5:
        parts = raw.split(",")
        raw = ",".join([parts[0], parts[1], parts[3], parts[4]])
    try:
        return parse_bbox(raw)
    except InvalidParameter as exc:
        raise InvalidOgcParameter(exc.message, parameter="bbox") from None


def parse_interval(raw: str | None) -> TimeRange | None:
    """RFC 3339 instant (start == end), ``start/end``, ``start/..``, ``../end`` (an empty bound is open too)."""
    if raw is None or raw == "":
        return None
    if raw.count("/") > 1:
        raise InvalidOgcParameter("datetime must be an instant or one interval start/end", parameter="datetime")

    def bound(part: str) -> datetime | None:
        if part in ("", ".."):
            return None
        try:
            return parse_datetime(part, "datetime")
        except InvalidParameter as exc:
            raise InvalidOgcParameter(exc.message, parameter="datetime") from None

    if "/" not in raw:
        if raw == "..":
            raise InvalidOgcParameter("datetime '..' is only an open end of an interval", parameter="datetime")
        instant = bound(raw)
        return TimeRange(instant, instant)
    start, end = (bound(p) for p in raw.split("/"))
    if start is not None and end is not None and start > end:
        raise InvalidOgcParameter("datetime interval starts after it ends", parameter="datetime")
    return TimeRange(start, end)


def parse_limit(raw: str | None) -> int:
    """1..MAX_LIMIT; a larger limit is served as MAX_LIMIT (Part 1, 7.15.3 lets the server cap it)."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not re.fullmatch(r"[0-9]{1,9}", raw) or int(raw) < 1:
        raise InvalidOgcParameter("limit must be a positive integer", parameter="limit")
    return min(int(raw), MAX_LIMIT)


def encode_cursor(last_id: int | str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([last_id])).decode().rstrip("=")


def decode_cursor(spec: FeatureLayer, cursor: str | None) -> int | str | None:
    if cursor is None or cursor == "":
        return None
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        value = None
    after = pages.cast_key(spec, str(value[0])) if isinstance(value, list) and len(value) == 1 else None
    if after is None or isinstance(value[0], int) != spec.key_is_int:
        raise InvalidOgcParameter("cursor is not one this service handed out", parameter="cursor")
    return after


def items(
    *,
    session: Session,
    principal: Principal,
    spec: FeatureLayer,
    bbox: BBox | None = None,
    interval: TimeRange | None = None,
    limit: int = DEFAULT_LIMIT,
    after: int | str | None = None,
) -> Page:
    """One page of the collection's visible features in id order, after the cursor's id; layers
    without a time of their own (segments, zones, sensors) are not filtered by ``interval``."""
    page = pages.items(
        spec,
        session=session,
        principal=principal,
        bbox=bbox,
        time_range=interval,
        limit=limit,
        after=after,
        via=f"ogc/{spec.name}",
    )
    return Page(page.features, None if page.last_key is None else encode_cursor(page.last_key))


def item(*, session: Session, principal: Principal, spec: FeatureLayer, feature_id: str) -> str:
    """One visible feature as GeoJSON; FeatureNotFound if it does not exist or is not the caller's to see."""
    return pages.item(spec, session=session, principal=principal, feature_id=feature_id, via=f"ogc/{spec.name}")
