"""The incident map: one incident, its alerts, the units recommended for it with lines to it
labelled with their ETA, the track of the unit tasked to it, and its evidence with the state of
each item's chain of custody.

Pure: the incident, its alerts (a GeoJSON FeatureCollection), the recommendation's candidates,
the tasked unit with its position history and the evidence items in; a ``folium.Map`` out. Every text from the
data is escaped (``maps.overview.safe``) before folium places it in the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import folium

from maps.cop import PRIORITY_COLOURS, SEGMENTS, UNIT_STATUS_COLOURS, VIEW_LINKS
from maps.layers import TitleBar, add_live_layers, fc_features, new_map
from maps.overview import SEVERITY_COLOURS, safe

CANDIDATE_COLOUR = "#1565c0"
TRACK_COLOUR = "#6a1b9a"
EVIDENCE_COLOUR = "#00695c"
BROKEN_CHAIN_COLOUR = "#c62828"


def _latlon(geometry: Mapping | None) -> tuple[float, float] | None:
    if not geometry or geometry.get("type") != "Point":
        return None
    lon, lat = geometry["coordinates"][:2]
    return lat, lon


def eta_text(seconds: float) -> str:
    """An ETA as an operator reads it: ``45 s``, ``12 min``, ``2 h 05 min``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _evidence_text(evidence: Sequence[Mapping]) -> str:
    if not evidence:
        return ""
    broken = sorted(e.get("id") for e in evidence if not e.get("chain_verified"))
    state = f"chain broken: items {', '.join(map(str, broken))}" if broken else "chains verified"
    return f" · evidence: {len(evidence)} ({state})"


def build_incident(
    incident: Mapping,
    alerts_fc: Mapping | None,
    candidates: Sequence[Mapping],
    *,
    agency: str,
    recommendation_note: str = "",
    tasked_unit: Mapping | None = None,
    track_fc: Mapping | None = None,
    evidence: Sequence[Mapping] = (),
    tile_url: str = "",
    tile_attribution: str = "",
) -> folium.Map:
    """The incident at its place, its alerts, a dashed line from each recommended unit with its
    ETA, the tasked unit's path (oldest to newest position) up to where it is now, and the
    evidence collected at a known place (each item with ``chain_verified``); the title counts the
    evidence and names the items whose chain of custody is broken."""
    at = _latlon(incident.get("geometry"))
    m = new_map(at, 12)
    add_live_layers(m, [SEGMENTS], tile_url=tile_url, tile_attribution=tile_attribution)
    points = [at]

    colour = PRIORITY_COLOURS.get(incident.get("priority"), "#616161")
    place = folium.FeatureGroup(name="Incident and alerts", show=True).add_to(m)
    for f in fc_features(alerts_fc):
        p = f.get("properties") or {}
        where = _latlon(f.get("geometry"))
        if where is None:
            continue
        points.append(where)
        popup = (
            f"<b>{safe(p.get('title'))}</b><br>Alert {safe(f.get('id'))} · {safe(p.get('kind'))}"
            f"<br>Observed: {safe(p.get('observed_at'))}<br>Severity: {safe(p.get('severity'))}"
            f"<br>Sensor: {safe(p.get('sensor_id'))}"
        )
        alert_colour = SEVERITY_COLOURS.get(p.get("severity"), "#616161")
        folium.CircleMarker(
            where,
            radius=8,
            color=alert_colour,
            weight=2,
            fill=True,
            fill_color=alert_colour,
            fill_opacity=0.6,
            popup=folium.Popup(popup, max_width=320),
            class_name="bw-incident-alert",
        ).add_to(place)
    popup = (
        f"<b>{safe(incident.get('title'))}</b><br>Incident {safe(incident.get('id'))} · "
        f"{safe(incident.get('category'))}<br>Priority: {safe(incident.get('priority'))}<br>"
        f"Status: {safe(incident.get('status'))}<br>Domain: {safe(incident.get('domain'))} "
        f"({safe(incident.get('state'))})<br>Opened: {safe(incident.get('created_at'))} by "
        f"{safe(incident.get('created_by') or incident.get('agency_code'))}"
        + (
            f"<br>Shared by {safe(incident.get('shared_by'))}"
            f"{' (personal data removed)' if incident.get('redacted') else ''}"
            if incident.get("shared_by")
            else ""
        )
    )
    folium.CircleMarker(
        at,
        radius=13,
        color="#fff",
        weight=3,
        fill=True,
        fill_color=colour,
        fill_opacity=1,
        popup=folium.Popup(popup, max_width=320),
        class_name="bw-incident",
        tooltip=folium.Tooltip(safe(incident.get("title"))),
    ).add_to(place)

    recommended = folium.FeatureGroup(name="Recommended units (ETA)", show=True).add_to(m)
    for rank, c in enumerate(candidates, start=1):
        where = _latlon(c.get("geometry"))
        if where is None:
            continue
        points.append(where)
        label = f"{rank}. {safe(c.get('callsign'))} · {eta_text(float(c.get('eta_s') or 0))}"
        folium.PolyLine(
            [where, at],
            color=CANDIDATE_COLOUR,
            weight=2,
            opacity=0.8,
            dash_array="6 6",
            class_name="bw-eta-line",
            tooltip=folium.Tooltip(label),
        ).add_to(recommended)
        popup = (
            f"<b>{safe(c.get('callsign'))}</b> ({safe(c.get('agency_code'))}, {safe(c.get('kind'))})"
            f"<br>ETA: {eta_text(float(c.get('eta_s') or 0))}<br>Distance: "
            f"{float(c.get('distance_m') or 0) / 1000:.1f} km (travel {float(c.get('travel_distance_m') or 0) / 1000:.1f} km)"
            f"<br>Speed: {safe(c.get('cruising_speed_kmh'))} km/h<br>Authority: {safe(c.get('authority'))}"
            f"<br>Capabilities: {safe(', '.join(c.get('capabilities') or []))}"
        )
        folium.CircleMarker(
            where,
            radius=7,
            color="#fff",
            weight=2,
            fill=True,
            fill_color=CANDIDATE_COLOUR,
            fill_opacity=1,
            popup=folium.Popup(popup, max_width=320),
            class_name="bw-candidate",
        ).add_to(recommended)
        folium.Marker(
            where,
            icon=folium.DivIcon(
                html=f'<div class="bw-eta-label">{label}</div>',
                icon_size=(170, 20),
                icon_anchor=(-10, 10),
                class_name="bw-eta",
            ),
        ).add_to(recommended)

    if tasked_unit is not None:
        tasked = folium.FeatureGroup(name="Tasked unit's track", show=True).add_to(m)
        fixes = [(f, w) for f in fc_features(track_fc) if (w := _latlon(f.get("geometry"))) is not None]
        fixes.sort(
            key=lambda pair: ((pair[0].get("properties") or {}).get("observed_at") or "", str(pair[0].get("id")))
        )
        path = [w for _, w in fixes]
        now_at = _latlon(tasked_unit.get("geometry"))
        if now_at is not None and (not path or path[-1] != now_at):
            path.append(now_at)
        points.extend(path)
        if len(path) > 1:
            folium.PolyLine(path, color=TRACK_COLOUR, weight=4, opacity=0.85, class_name="bw-unit-track").add_to(tasked)
        for f, w in fixes:
            p = f.get("properties") or {}
            folium.CircleMarker(
                w,
                radius=3,
                color=TRACK_COLOUR,
                weight=1,
                fill=True,
                fill_opacity=1,
                class_name="bw-unit-fix",
                tooltip=folium.Tooltip(safe(p.get("observed_at"))),
            ).add_to(tasked)
        if now_at is not None:
            status_colour = UNIT_STATUS_COLOURS.get(tasked_unit.get("status"), "#616161")
            popup = (
                f"<b>{safe(tasked_unit.get('callsign'))}</b> ({safe(tasked_unit.get('kind'))})<br>"
                f"Status: {safe(tasked_unit.get('status'))}<br>Position at: "
                f"{safe(tasked_unit.get('position_at'))}<br>Tasking: {safe(tasked_unit.get('tasking_status'))}"
            )
            folium.CircleMarker(
                now_at,
                radius=9,
                color="#fff",
                weight=3,
                fill=True,
                fill_color=status_colour,
                fill_opacity=1,
                popup=folium.Popup(popup, max_width=300),
                class_name="bw-tasked-unit",
                tooltip=folium.Tooltip(safe(tasked_unit.get("callsign"))),
            ).add_to(tasked)

    if evidence:
        held = folium.FeatureGroup(name="Evidence", show=True).add_to(m)
        for e in evidence:
            where = _latlon(e.get("location"))
            if where is None:
                continue
            points.append(where)
            chain = "verified" if e.get("chain_verified") else "BROKEN"
            popup = (
                f"<b>Evidence {safe(e.get('id'))}</b> · {safe(e.get('kind'))}<br>{safe(e.get('description'))}"
                f"<br>Held by: {safe(e.get('custodian'))} ({safe(e.get('custodian_agency'))})<br>"
                f"Status: {safe(e.get('status'))}<br>Chain of custody: {chain} ({safe(e.get('events'))} events)"
            )
            folium.CircleMarker(
                where,
                radius=6,
                color="#fff",
                weight=2,
                fill=True,
                fill_opacity=1,
                fill_color=EVIDENCE_COLOUR if e.get("chain_verified") else BROKEN_CHAIN_COLOUR,
                popup=folium.Popup(popup, max_width=320),
                class_name="bw-evidence",
                tooltip=folium.Tooltip(f"Evidence {safe(e.get('id'))} · {safe(e.get('kind'))}"),
            ).add_to(held)

    if len(points) > 1:
        lats, lons = [p[0] for p in points], [p[1] for p in points]
        m.fit_bounds([[min(lats), min(lons)], [max(lats), max(lons)]], padding=(50, 50), max_zoom=14)
    title = (
        f"Incident {incident.get('id')} · {incident.get('title')} · {incident.get('priority')} · "
        f"{incident.get('status')} · {len(candidates)} recommended"
        + (f" · tasked: {tasked_unit.get('callsign')}" if tasked_unit else "")
        + (f" · {recommendation_note}" if recommendation_note else "")
        + _evidence_text(evidence)
        + f" · {agency}"
    )
    lat, lon = at
    TitleBar(title, [("On the COP", f"/maps/cop?lat={lat:.5f}&lon={lon:.5f}&zoom=12"), *VIEW_LINKS]).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    return m
