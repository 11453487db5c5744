"""The coverage map: where the sensors saw activity over a chosen period (a heat map).

Pure: detection counts per grid cell in, a ``folium.Map`` out. The layers drawn with it are
:data:`COVERAGE_LAYERS`; segments coloured by the time since they were last patrolled plug in
there once patrol positions exist, as a :class:`~maps.layers.LayerDef` whose ``Style(age_of=...)``
colours each segment by the age of its last patrol, e.g.::

    COVERAGE_LAYERS.append(LayerDef(
        key="patrolled", name="Segments by last patrol", endpoint="/api/v1/segments/patrolled",
        geometry="shape", simplify=True, title="name", popup=[("Last patrol", "last_patrolled_at")],
        style=Style(age_of="last_patrolled_at", age_steps=((6 * 3600, "#2e7d32"), (86400, "#f9a825")),
                    default="#c62828", weight=5),
    ))
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import folium
from folium.plugins import HeatMap

from maps.cop import SEGMENTS, VIEW_LINKS
from maps.layers import LayerDef, TitleBar, add_live_layers, new_map
from maps.overview import CENTRE, ZOOM

COVERAGE_LAYERS: list[LayerDef] = [SEGMENTS]
PERIOD_LINKS = (("6 h", "/maps/coverage?hours=6"), ("24 h", "/maps/coverage?hours=24"),
                ("7 d", "/maps/coverage?hours=168"), ("30 d", "/maps/coverage?hours=720"))


def build_coverage(cells: Sequence[tuple[float, float, int]], *, start: datetime, end: datetime, agency: str,
                   layers: Sequence[LayerDef] | None = None, tile_url: str = "",
                   tile_attribution: str = "") -> folium.Map:
    """A heat map of detections per grid cell (lat, lon, count) between ``start`` and ``end``,
    the busiest cell at full intensity, over the live ``COVERAGE_LAYERS``."""
    m = new_map(CENTRE, ZOOM)
    add_live_layers(m, list(COVERAGE_LAYERS if layers is None else layers), tile_url=tile_url,
                    tile_attribution=tile_attribution)
    busiest = max((n for _, _, n in cells), default=0)
    if busiest:
        HeatMap([[lat, lon, n / busiest] for lat, lon, n in cells], name="Detections (heat)", min_opacity=0.5,
                radius=22, blur=15, max_zoom=10).add_to(m)
    total = sum(n for _, _, n in cells)
    title = (f"Coverage · {total:,} detections · {start:%Y-%m-%d %H:%M}Z – {end:%Y-%m-%d %H:%M}Z · {agency}")
    TitleBar(title, [*VIEW_LINKS, *PERIOD_LINKS]).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    return m
