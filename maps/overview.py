"""The control-room overview map: segments, zones, sensors and open alerts on one folium map.

Pure: GeoJSON FeatureCollections (dicts) in, a ``folium.Map`` out; no HTTP, no database.
Every text that comes from data is escaped before it reaches the page, because folium
places tooltips and popups into HTML and JavaScript template strings as they are.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

import folium

from maps.layers import add_live_layers, new_map

# The Thai-Malaysian land border, between the Andaman Sea and the Gulf of Thailand.
CENTRE = (6.15, 101.2)
ZOOM = 8

IMPACT_COLOURS = {"low": "#2e7d32", "medium": "#f9a825", "high": "#c62828"}
ZONE_COLOURS = {
    "border_buffer": "#8e24aa",
    "territorial_sea": "#1565c0",
    "joint_patrol_sector": "#00897b",
    "restricted_area": "#d84315",
    "crossing_point": "#6d4c41",
}
SEVERITY_COLOURS = {
    "info": "#78909c",
    "low": "#43a047",
    "medium": "#fbc02d",
    "high": "#ef6c00",
    "critical": "#b71c1c",
}
SENSOR_COLOUR = "#0d47a1"
SENSOR_OFFLINE_COLOUR = "#9e9e9e"
FALLBACK_COLOUR = "#616161"


def safe(value: object) -> str:
    """Text inert in HTML and inside a JavaScript template literal (folium's popups and tooltips)."""
    if value is None:
        return ""
    return html.escape(str(value), quote=True).replace("`", "&#96;").replace("$", "&#36;").replace("\\", "&#92;")


def _features(fc: Mapping | None) -> list[dict]:
    return list((fc or {}).get("features") or [])


def _display_copy(features: Iterable[dict], fields: Iterable[str]) -> dict:
    """A FeatureCollection with only ``fields`` kept, each escaped for the tooltip."""
    fields = list(fields)
    out = []
    for i, f in enumerate(features):
        props = f.get("properties") or {}
        out.append(
            {
                "type": "Feature",
                "id": f.get("id", i),
                "geometry": f.get("geometry"),
                "properties": {k: safe(props.get(k)) for k in fields},
            }
        )
    return {"type": "FeatureCollection", "features": out}


def _add_segments(m: folium.Map, segments: list[dict]) -> None:
    fields = ["name", "kind", "impact_level", "left_state", "right_state"]
    layer = folium.FeatureGroup(name="Border segments", show=True)
    if segments:
        folium.GeoJson(
            _display_copy(segments, fields),
            name="Border segments",
            style_function=lambda f: {
                "color": IMPACT_COLOURS.get(f["properties"]["impact_level"], FALLBACK_COLOUR),
                "weight": 4,
                "opacity": 0.9,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=fields, aliases=["Segment", "Kind", "Impact", "Left", "Right"], sticky=True
            ),
        ).add_to(layer)
    layer.add_to(m)


def _add_zones(m: folium.Map, zones: list[dict]) -> None:
    fields = ["name", "kind", "owner_agency", "impact_level"]
    layer = folium.FeatureGroup(name="Zones", show=True)
    if zones:
        folium.GeoJson(
            _display_copy(zones, fields),
            name="Zones",
            style_function=lambda f: {
                "color": ZONE_COLOURS.get(f["properties"]["kind"], FALLBACK_COLOUR),
                "fillColor": ZONE_COLOURS.get(f["properties"]["kind"], FALLBACK_COLOUR),
                "weight": 1,
                "fillOpacity": 0.15,
            },
            tooltip=folium.GeoJsonTooltip(fields=fields, aliases=["Zone", "Kind", "Owner", "Impact"], sticky=True),
        ).add_to(layer)
    layer.add_to(m)


def _point(feature: dict) -> tuple[float, float] | None:
    geom = feature.get("geometry") or {}
    if geom.get("type") != "Point":
        return None
    lon, lat = geom["coordinates"][:2]
    return lat, lon


def _add_sensors(m: folium.Map, sensors: list[dict]) -> None:
    layer = folium.FeatureGroup(name="Sensors", show=True)
    for f in sensors:
        at = _point(f)
        if at is None:
            continue
        p = f.get("properties") or {}
        offline = p.get("gateway_status") == "offline"
        colour = SENSOR_OFFLINE_COLOUR if offline else SENSOR_COLOUR
        label = f"{safe(p.get('name') or f.get('id'))} ({safe(p.get('kind'))})"
        if offline:
            label += " &ndash; gateway offline"
        folium.CircleMarker(
            location=at,
            radius=5,
            color=colour,
            weight=2,
            fill=True,
            fill_color=colour,
            fill_opacity=0.8,
            tooltip=folium.Tooltip(label),
        ).add_to(layer)
    layer.add_to(m)


def _direction(p: Mapping) -> str:
    if p.get("from_state") or p.get("to_state"):
        return f"{safe(p.get('from_state') or '?')} &rarr; {safe(p.get('to_state') or '?')}"
    return "&ndash;"


def _add_alerts(m: folium.Map, alerts: list[dict]) -> None:
    layer = folium.FeatureGroup(name="Open alerts", show=True)
    # Oldest first, so the newest marker is drawn on top.
    for f in reversed(alerts):
        at = _point(f)
        if at is None:
            continue
        p = f.get("properties") or {}
        colour = SEVERITY_COLOURS.get(p.get("severity"), FALLBACK_COLOUR)
        popup = (
            f"<b>{safe(p.get('title'))}</b><br>"
            f"Time: {safe(p.get('observed_at'))}<br>"
            f"Severity: {safe(p.get('severity'))}<br>"
            f"Direction: {_direction(p)}<br>"
            f"Kind: {safe(p.get('kind'))} &middot; class: {safe(p.get('class'))} &middot; "
            f"sensor: {safe(p.get('sensor_id'))}"
        )
        folium.CircleMarker(
            location=at,
            radius=8,
            color=colour,
            weight=2,
            fill=True,
            fill_color=colour,
            fill_opacity=0.7,
            popup=folium.Popup(popup, max_width=320),
            tooltip=folium.Tooltip(f"{safe(p.get('severity'))}: {safe(p.get('title'))}"),
        ).add_to(layer)
    layer.add_to(m)


def build_overview(
    segments_fc: Mapping | None,
    zones_fc: Mapping | None,
    sensors_fc: Mapping | None,
    alerts_fc: Mapping | None,
    *,
    tile_url: str = "",
    tile_attribution: str = "",
) -> folium.Map:
    """The overview map centred on the Thai-Malaysian border, one toggleable layer per collection.

    Segments are coloured by impact level, zones by kind, alerts by severity (popups give
    title, time, severity and crossing direction). The base layer is the local Natural Earth
    countries layer, or the tile server at ``tile_url`` where one is configured.
    """
    m = new_map(CENTRE, ZOOM)
    add_live_layers(m, [], tile_url=tile_url, tile_attribution=tile_attribution)
    _add_zones(m, _features(zones_fc))
    _add_segments(m, _features(segments_fc))
    _add_sensors(m, _features(sensors_fc))
    _add_alerts(m, _features(alerts_fc))
    folium.LayerControl(collapsed=False).add_to(m)
    return m
