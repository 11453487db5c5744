"""A layer's features one keyset page at a time, in key order, and single features by key: what
OGC API - Features serves (``api.ogc_features``).

A page starts after the last key of the one before, so it never repeats or skips a feature when
rows are added while a client pages through. PostGIS writes each feature (``ST_AsGeoJSON``); a
page is one statement. Features carry the layer's OGC properties.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.errors import NotFound
from core.security import Principal
from features.filters import BBox, TimeRange
from features.layer import FeatureLayer
from sharing import service as sharing


class FeatureNotFound(NotFound):
    code = "feature_not_found"


@dataclass
class Page:
    features: list[str]  # each one GeoJSON Feature, serialised by PostGIS
    last_key: int | str | None  # the key to continue after; None when this is the last page


def cast_key(layer: FeatureLayer, raw: str) -> int | str | None:
    """A feature key from a URL or cursor, or None if it cannot be one of the layer's keys."""
    if layer.key_is_int:
        return int(raw) if re.fullmatch(r"[1-9][0-9]{0,17}", raw) else None
    return raw if 0 < len(raw) <= 64 and "\x00" not in raw else None


def _feature_sql(layer: FeatureLayer) -> str:
    return f"{layer.feature_json(layer.geometry_json(), layer.ogc_properties)}::text"


def items(
    layer: FeatureLayer,
    *,
    session: Session,
    principal: Principal,
    bbox: BBox | None = None,
    time_range: TimeRange | None = None,
    limit: int,
    after: int | str | None = None,
    via: str,
) -> Page:
    """One page of the layer's visible features in key order, after the key ``after``; ``via``
    names the read in the audit of partners' rows."""
    where = layer.scoped(principal, limit=limit + 1)
    where.bbox(layer.geometry, bbox)
    where.time_range(layer.temporal, time_range)
    if after is not None:
        where.add(f"{layer.key} > :after", after=after)
    sql = f"""
        SELECT {layer.key} AS fid, {layer.shared_by} AS shared_by, {_feature_sql(layer)} AS feature
        FROM {layer.source}
        WHERE {where.sql()}
        ORDER BY {layer.key}
        LIMIT :limit
    """
    rows = session.execute(text(sql), where.params).all()
    last_key = None
    if len(rows) > limit:
        rows = rows[:limit]
        last_key = rows[-1].fid
    if layer.shared_entity:
        sharing.record_shared_read(
            session=session,
            principal=principal,
            entity_type=layer.shared_entity,
            rows=[(r.fid, r.shared_by) for r in rows],
            via=via,
        )
    return Page([r.feature for r in rows], last_key)


def item(layer: FeatureLayer, *, session: Session, principal: Principal, feature_id: str, via: str) -> str:
    """One visible feature as GeoJSON; FeatureNotFound if it does not exist or is not the caller's to see."""
    key = cast_key(layer, feature_id)
    row = None
    if key is not None:
        where = layer.scoped(principal)
        where.add(f"{layer.key} = :key", key=key)
        row = session.execute(
            text(
                f"SELECT {layer.shared_by} AS shared_by, {_feature_sql(layer)} AS feature "
                f"FROM {layer.source} WHERE {where.sql()}"
            ),
            where.params,
        ).one_or_none()
    if row is None:
        raise FeatureNotFound(
            f"feature {feature_id} of {layer.name} does not exist or is not visible to {principal.agency_code}"
        )
    if layer.shared_entity:
        sharing.record_shared_read(
            session=session, principal=principal, entity_type=layer.shared_entity, rows=[(key, row.shared_by)], via=via
        )
    return row.feature
