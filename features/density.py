"""A point layer's features counted per grid cell (the coverage heat map)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.security import Principal
from features.filters import MAX_LIMIT, BBox, TimeRange
from features.layer import FeatureLayer


def cells(
    layer: FeatureLayer,
    *,
    session: Session,
    principal: Principal,
    time_range: TimeRange,
    cell_deg: float,
    bbox: BBox | None = None,
    limit: int = MAX_LIMIT,
) -> list[tuple[float, float, int]]:
    """The caller's visible features counted per grid cell of ``cell_deg`` degrees: (lat, lon, count)
    at each cell's centre of mass, busiest cells first. One grouped statement however many there are."""
    where = layer.scoped(principal, limit=limit, cell=cell_deg)
    where.time_range(layer.temporal, time_range)
    where.bbox(layer.geometry, bbox)
    geom = layer.geometry
    sql = f"""
        SELECT ST_Y(ST_Centroid(ST_Collect({geom}))) AS lat, ST_X(ST_Centroid(ST_Collect({geom}))) AS lon,
               count(*) AS n
        FROM {layer.source}
        WHERE {where.sql()}
        GROUP BY ST_SnapToGrid({geom}, :cell)
        ORDER BY n DESC
        LIMIT :limit
    """
    return [(r.lat, r.lon, r.n) for r in session.execute(text(sql), where.params)]
