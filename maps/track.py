"""The track map: one tracked object's path, where it crossed a border and in which direction.

Pure: the track's detections and alerts (GeoJSON FeatureCollections) in, a ``folium.Map`` out.
Every text from the data is escaped (``maps.overview.safe``) before folium places it in the page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import folium

from maps.cop import SEGMENTS, VIEW_LINKS
from maps.layers import TitleBar, add_live_layers, fc_features, new_map
from maps.overview import CENTRE, SEVERITY_COLOURS, ZOOM, safe

PATH_COLOUR = "#0d47a1"
FIX_COLOUR = "#1e88e5"
MAX_ARROWS = 40


def _latlon(feature: dict) -> tuple[float, float] | None:
    geom = feature.get("geometry") or {}
    if geom.get("type") != "Point":
        return None
    lon, lat = geom["coordinates"][:2]
    return lat, lon


def bearing(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Initial bearing in degrees (0 = north, clockwise) from a to b, both (lat, lon)."""
    lat1, lat2 = math.radians(a[0]), math.radians(b[0])
    dlon = math.radians(b[1] - a[1])
    y = math.sin(dlon) * math.cos(lat2)
    x = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(dlon)
    return (math.degrees(math.atan2(y, x)) + 360) % 360


def _arrow(at: tuple[float, float], degrees: float) -> folium.Marker:
    # A CSS-rotated arrow; the glyph points east (90 degrees) before rotation.
    html = (
        f'<div class="bw-arrow" style="transform: rotate({degrees - 90:.0f}deg); color: {PATH_COLOUR};'
        f' font-size: 16px; line-height: 16px;">&#10148;</div>'
    )
    return folium.Marker(
        at, icon=folium.DivIcon(html=html, icon_size=(16, 16), icon_anchor=(8, 8), class_name="bw-arrow-icon")
    )


def build_track(
    track_key: str,
    detections_fc: Mapping | None,
    alerts_fc: Mapping | None,
    *,
    agency: str,
    tile_url: str = "",
    tile_attribution: str = "",
) -> folium.Map:
    """The track's fixes in time order joined into a path with arrows for the direction of travel,
    the first and last fix marked, and each crossing alert labelled ``from → to`` at its place."""
    fixes = [(f, at) for f in fc_features(detections_fc) if (at := _latlon(f)) is not None]
    fixes.sort(key=lambda pair: ((pair[0].get("properties") or {}).get("observed_at") or "", str(pair[0].get("id"))))
    alerts = [(f, at) for f in fc_features(alerts_fc) if (at := _latlon(f)) is not None]

    m = new_map(fixes[-1][1] if fixes else CENTRE, 12 if fixes else ZOOM)
    add_live_layers(m, [SEGMENTS], tile_url=tile_url, tile_attribution=tile_attribution)

    path = folium.FeatureGroup(name="Path", show=True).add_to(m)
    points = [at for _, at in fixes]
    if len(points) > 1:
        folium.PolyLine(points, color=PATH_COLOUR, weight=3, opacity=0.85, class_name="bw-track-path").add_to(path)
        step = max(1, math.ceil((len(points) - 1) / MAX_ARROWS))
        for i in range(0, len(points) - 1, step):
            a, b = points[i], points[i + 1]
            if a != b:
                _arrow(((a[0] + b[0]) / 2, (a[1] + b[1]) / 2), bearing(a, b)).add_to(path)
    for i, (f, at) in enumerate(fixes):
        p = f.get("properties") or {}
        first, last = i == 0, i == len(fixes) - 1
        label = "start" if first else "latest" if last else f"fix {i + 1}"
        popup = (
            f"<b>{label}</b><br>Time: {safe(p.get('observed_at'))}<br>Class: {safe(p.get('class'))}"
            f"<br>Sensor: {safe(p.get('sensor_id'))}<br>Confidence: {safe(p.get('confidence'))}"
            f"<br>Speed: {safe(p.get('speed_mps'))} m/s, heading {safe(p.get('heading_deg'))}"
        )
        folium.CircleMarker(
            at,
            radius=7 if first or last else 4,
            color="#fff" if first or last else FIX_COLOUR,
            weight=2,
            fill=True,
            fill_color="#2e7d32" if first else "#c62828" if last else FIX_COLOUR,
            fill_opacity=1,
            popup=folium.Popup(popup, max_width=300),
            class_name="bw-track-fix",
            tooltip=folium.Tooltip(f"{label}: {safe(p.get('observed_at'))}"),
        ).add_to(path)

    crossings = folium.FeatureGroup(name="Crossings and alerts", show=True).add_to(m)
    for f, at in alerts:
        p = f.get("properties") or {}
        direction = f"{safe(p.get('from_state') or '?')} &rarr; {safe(p.get('to_state') or '?')}"
        is_crossing = p.get("kind") == "crossing"
        colour = SEVERITY_COLOURS.get(p.get("severity"), "#616161")
        popup = (
            f"<b>{safe(p.get('title'))}</b><br>Time: {safe(p.get('observed_at'))}<br>"
            f"Severity: {safe(p.get('severity'))}<br>Kind: {safe(p.get('kind'))}"
            + (f"<br>Direction: {direction}" if is_crossing else "")
        )
        folium.CircleMarker(
            at,
            radius=10,
            color=colour,
            weight=3,
            fill=True,
            fill_color=colour,
            fill_opacity=0.5,
            popup=folium.Popup(popup, max_width=320),
            class_name="bw-track-alert",
        ).add_to(crossings)
        if is_crossing:
            folium.Marker(
                at,
                icon=folium.DivIcon(
                    html=f'<div class="bw-crossing-label">{direction} · {safe((p.get("observed_at") or "")[11:19])}Z</div>',
                    icon_size=(150, 20),
                    icon_anchor=(-12, 10),
                    class_name="bw-crossing",
                ),
            ).add_to(crossings)

    if points:
        lats, lons = [p[0] for p in points], [p[1] for p in points]
        m.fit_bounds([[min(lats), min(lons)], [max(lats), max(lons)]], padding=(40, 40), max_zoom=15)
    n_crossings = sum(1 for f, _ in alerts if (f.get("properties") or {}).get("kind") == "crossing")
    title = (
        f"Track {track_key} · {len(fixes)} fix{'es' if len(fixes) != 1 else ''} · "
        f"{n_crossings} crossing{'s' if n_crossings != 1 else ''} · {agency}"
    )
    links = list(VIEW_LINKS)
    if points:
        lat, lon = points[-1]
        links.insert(1, ("Latest fix on the COP", f"/maps/cop?lat={lat:.5f}&lon={lon:.5f}&zoom=13"))
    TitleBar(title, links).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    return m
