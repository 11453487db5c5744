"""The coverage map: the border segments of the agency's state coloured by the time since its
units last patrolled them, the gaps (not patrolled within a day) highlighted, and where the
sensors saw activity over a chosen period (a heat map).

Pure: detection counts per grid cell in, a ``folium.Map`` out. The live layers drawn with it
are :data:`COVERAGE_LAYERS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import folium
from folium.plugins import HeatMap

from maps.cop import SEGMENTS, VIEW_LINKS
from maps.layers import LayerDef, Style, TitleBar, add_live_layers, new_map
from maps.overview import CENTRE, ZOOM

GAP_HOURS = 24
PATROL_AGE_STEPS = ((6 * 3600, "#2e7d32"), (GAP_HOURS * 3600, "#f9a825"))
NEVER_PATROLLED_COLOUR = "#c62828"
GAP_COLOUR = "#d50000"
_COVERAGE_POPUP = [
    ("Kind", "kind"),
    ("Impact", "impact_level"),
    ("Last patrol", "last_patrolled_at"),
    ("By", "last_callsign"),
    ("Coverage", "coverage"),
]
PATROLLED = LayerDef(
    key="patrolled",
    name="Segments by last patrol",
    endpoint="/api/v1/features/segment-coverage",
    params={"hours": str(GAP_HOURS)},
    geometry="shape",
    simplify=True,
    title="name",
    tooltip="name",
    popup=_COVERAGE_POPUP,
    style=Style(age_of="last_patrolled_at", age_steps=PATROL_AGE_STEPS, default=NEVER_PATROLLED_COLOUR, weight=6),
    refresh_s=60,
    limit=10000,
)
GAPS = LayerDef(
    key="gaps",
    name=f"Patrol gaps (not patrolled within {GAP_HOURS} h)",
    endpoint="/api/v1/features/segment-coverage",
    params={"hours": str(GAP_HOURS), "gaps": "true"},
    geometry="shape",
    simplify=True,
    title="name",
    tooltip="name",
    popup=_COVERAGE_POPUP,
    style=Style(default=GAP_COLOUR, weight=12, opacity=0.35),
    refresh_s=60,
    limit=10000,
)

COVERAGE_LAYERS: list[LayerDef] = [SEGMENTS, GAPS, PATROLLED]
PERIOD_LINKS = (
    ("6 h", "/maps/coverage?hours=6"),
    ("24 h", "/maps/coverage?hours=24"),
    ("7 d", "/maps/coverage?hours=168"),
    ("30 d", "/maps/coverage?hours=720"),
)


def build_coverage(
    cells: Sequence[tuple[float, float, int]],
    *,
    start: datetime,
    end: datetime,
    agency: str,
    layers: Sequence[LayerDef] | None = None,
    tile_url: str = "",
    tile_attribution: str = "",
) -> folium.Map:
    """A heat map of detections per grid cell (lat, lon, count) between ``start`` and ``end``,
    the busiest cell at full intensity, over the live ``COVERAGE_LAYERS``."""
    m = new_map(CENTRE, ZOOM)
    add_live_layers(
        m,
        list(COVERAGE_LAYERS if layers is None else layers),
        tile_url=tile_url,
        tile_attribution=tile_attribution,
        options={"legend": True},
    )
    busiest = max((n for _, _, n in cells), default=0)
    if busiest:
        HeatMap(
            [[lat, lon, n / busiest] for lat, lon, n in cells],
            name="Detections (heat)",
            min_opacity=0.5,
            radius=22,
            blur=15,
            max_zoom=10,
        ).add_to(m)
    total = sum(n for _, _, n in cells)
    title = f"Coverage · {total:,} detections · {start:%Y-%m-%d %H:%M}Z – {end:%Y-%m-%d %H:%M}Z · {agency}"
    TitleBar(title, [*VIEW_LINKS, *PERIOD_LINKS]).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    return m
