"""A layer's features as one RFC 7946 FeatureCollection (text), built by PostGIS in one statement.

``ST_AsGeoJSON`` writes each feature and ``json_agg`` the document, so a read is one round trip
however many features it returns. The layer's scope is in the WHERE clause; a read that returns
partners' rows is recorded in the audit trail in the same request (``sharing.service``).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.security import Principal
from features.filters import DEFAULT_LIMIT, BBox, TimeRange
from features.layer import FeatureLayer, rfc3339
from sharing import service as sharing


def collection(
    layer: FeatureLayer,
    *,
    session: Session,
    principal: Principal,
    bbox: BBox | None = None,
    time_range: TimeRange | None = None,
    simplify: float | None = None,
    limit: int = DEFAULT_LIMIT,
    **filters,
) -> str:
    """The caller's visible features of ``layer`` in the layer's order, at most ``limit``:
    inside ``bbox``, within ``time_range`` (on the layer's time column), narrowed by the
    ``filters`` the layer declares; geometry simplified to ``simplify`` degrees if given."""
    unknown = set(filters) - set(layer.filters)
    if unknown:
        raise TypeError(f"layer {layer.name} has no filter {', '.join(sorted(unknown))}")
    where = layer.scoped(principal, limit=limit)
    where.time_range(layer.temporal, time_range)
    where.bbox(layer.geometry, bbox)
    for name, value in filters.items():
        layer.filters[name].apply(where, name, value)
    if simplify:
        where.params["simplify"] = simplify
    order_keys = layer.order or ((layer.key, "ASC"),)
    keys_sql = ", ".join(f"{expr} AS _o{i}" for i, (expr, _) in enumerate(order_keys))
    page = f"""
        SELECT {layer.key} AS fid, {layer.shared_by} AS shared_by, {keys_sql},
               {layer.feature_json(layer.geometry_json(simplified=bool(simplify)), layer.geojson_properties)} AS feature
        FROM {layer.source}
        WHERE {where.sql()}
        ORDER BY {layer.order_sql()}
        LIMIT :limit
    """
    order = ", ".join(f"_o{i} {direction}" for i, (_, direction) in enumerate(order_keys))
    audit_sql = (
        "array_agg(fid ORDER BY fid) FILTER (WHERE shared_by IS NOT NULL) AS shared_ids, "
        "array_agg(shared_by ORDER BY fid) FILTER (WHERE shared_by IS NOT NULL) AS owners"
        if layer.shared_entity
        else "NULL AS shared_ids, NULL AS owners"
    )
    sql = f"""
        WITH page AS ({page})
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'timeStamp', {rfc3339("now()")},
            'numberReturned', count(*),
            'features', coalesce(json_agg(feature ORDER BY {order}), '[]'::json)
        )::text AS body, {audit_sql}
        FROM page
    """
    row = session.execute(text(sql), where.params).one()
    if layer.shared_entity and row.shared_ids:
        sharing.record_shared_read(
            session=session,
            principal=principal,
            entity_type=layer.shared_entity,
            rows=zip(row.shared_ids, row.owners, strict=True),
            via=layer.name,
        )
    return row.body
