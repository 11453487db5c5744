"""The common operating picture: every live layer of the operator's agency on one map.

What the COP shows is the list :data:`COP_LAYERS`, one :class:`~maps.layers.LayerDef` per
layer (endpoint, style, popup). Further layers plug in by appending to it, e.g. patrol units::

    COP_LAYERS.append(LayerDef(
        key="units", name="Patrol units", endpoint="/api/v1/units",
        style=Style(by="status", colours={"available": "#2e7d32", "en_route": "#1565c0"}),
        title="callsign", popup=[("Kind", "kind"), ("Status", "status"), ("Seen", "reported_at")],
        links=[Link("Open", "/maps/units/{id}")], refresh_s=3,
    ))

Each endpoint must return an RFC 7946 FeatureCollection with a feature ``id`` and a
``timeStamp``, scoped to the caller's agency, and accept ``bbox`` and ``limit`` (plus
``start``/``since``/``simplify`` when the definition asks for them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import folium

from maps.layers import LayerDef, Link, Style, TitleBar, add_live_layers, new_map
from maps.overview import CENTRE, IMPACT_COLOURS, SEVERITY_COLOURS, ZONE_COLOURS, ZOOM

# Sensor health from the time since the sensor was last heard: up to N seconds -> colour.
SENSOR_HEALTH_STEPS = ((15 * 60, "#2e7d32"), (6 * 3600, "#f9a825"), (7 * 86400, "#c62828"))
SENSOR_SILENT_COLOUR = "#757575"
DETECTION_CLASS_COLOURS = {
    "person": "#6a1b9a",
    "vehicle": "#1565c0",
    "boat": "#00838f",
    "vessel": "#00838f",
    "animal": "#8d6e63",
}
RECENT_DETECTIONS_S = 6 * 3600
OPEN_ALERTS_S = 7 * 86400
TRACK_LINK = Link("Track", "/maps/track?track_key={track_key}")

SEGMENTS = LayerDef(
    key="segments",
    name="Border segments",
    endpoint="/api/v1/segments",
    geometry="shape",
    style=Style(by="impact_level", colours=IMPACT_COLOURS, weight=4),
    title="name",
    tooltip="name",
    popup=[
        ("Kind", "kind"),
        ("Impact", "impact_level"),
        ("Left", "left_state"),
        ("Right", "right_state"),
        ("Source", "source"),
    ],
    simplify=True,
    refresh_s=300,
    limit=10000,
)
ZONES = LayerDef(
    key="zones",
    name="Zones",
    endpoint="/api/v1/zones",
    geometry="shape",
    style=Style(by="kind", colours=ZONE_COLOURS, weight=1, fill_opacity=0.12),
    title="name",
    tooltip="name",
    popup=[
        ("Kind", "kind"),
        ("State", "state"),
        ("Owner", "owner_agency"),
        ("Members", "member_agencies"),
        ("Impact", "impact_level"),
        ("Alerts on entry", "entry_alert"),
    ],
    simplify=True,
    refresh_s=300,
    limit=10000,
)
SENSORS = LayerDef(
    key="sensors",
    name="Sensors (health)",
    endpoint="/api/v1/sensors",
    style=Style(
        age_of="last_seen_at", age_steps=SENSOR_HEALTH_STEPS, default=SENSOR_SILENT_COLOUR, radius=5, fill_opacity=0.9
    ),
    title="name",
    tooltip="name",
    popup=[
        ("Sensor", "agency_code"),
        ("Kind", "kind"),
        ("Gateway", "gateway_id"),
        ("Gateway status", "gateway_status"),
        ("Last seen", "last_seen_at"),
    ],
    refresh_s=15,
    limit=10000,
)
DETECTIONS = LayerDef(
    key="detections",
    name="Recent detections",
    endpoint="/api/v1/detections",
    style=Style(by="class", colours=DETECTION_CLASS_COLOURS),
    title="class",
    popup=[
        ("Observed", "observed_at"),
        ("Sensor", "sensor_id"),
        ("Confidence", "confidence"),
        ("Track", "track_key"),
        ("Speed m/s", "speed_mps"),
        ("Heading", "heading_deg"),
        ("Identifiers", "identifiers"),
    ],
    links=[TRACK_LINK],
    window_s=RECENT_DETECTIONS_S,
    since=True,
    cluster=True,
    refresh_s=3,
    limit=10000,
)
OPEN_ALERTS = LayerDef(
    key="alerts",
    name="Open alerts",
    endpoint="/api/v1/alerts",
    params={"status": "open"},
    style=Style(by="severity", colours=SEVERITY_COLOURS, radius=9, fill_opacity=0.7),
    title="title",
    tooltip="title",
    popup=[
        ("Observed", "observed_at"),
        ("Severity", "severity"),
        ("Kind", "kind"),
        ("From", "from_state"),
        ("To", "to_state"),
        ("Class", "class"),
        ("Sensor", "sensor_id"),
        ("Shared by", "shared_by"),
        ("Personal data removed", "redacted"),
    ],
    links=[TRACK_LINK],
    window_s=OPEN_ALERTS_S,
    refresh_s=3,
    limit=1000,
    top=True,
)

UNIT_STATUS_COLOURS = {
    "available": "#2e7d32",
    "en_route": "#1565c0",
    "on_scene": "#6a1b9a",
    "returning": "#00838f",
    "off_duty": "#757575",
}
UNIT_KIND_ICONS = {"land": "fa-solid fa-car-side", "maritime": "fa-solid fa-ship", "air": "fa-solid fa-helicopter"}
PRIORITY_COLOURS = {"low": "#43a047", "medium": "#fbc02d", "high": "#ef6c00", "critical": "#b71c1c"}
OPEN_INCIDENT_STATUSES = ("new", "assigned", "en_route", "on_scene")
ROUTE_COLOUR = "#00695c"
INCIDENT_LINK = Link("Open the incident", "/maps/incident?id={id}")

UNITS = LayerDef(
    key="units",
    name="Patrol units",
    endpoint="/api/v1/features/units",
    style=Style(by="status", colours=UNIT_STATUS_COLOURS, icon_by="kind", icons=UNIT_KIND_ICONS),
    title="callsign",
    tooltip="callsign",
    popup=[
        ("Agency", "agency_code"),
        ("Kind", "kind"),
        ("Status", "status"),
        ("Since", "status_at"),
        ("Position at", "position_at"),
        ("Speed km/h", "cruising_speed_kmh"),
        ("Capabilities", "capabilities"),
        ("Tasked to incident", "incident_id"),
    ],
    links=[Link("Open its incident", "/maps/incident?id={incident_id}")],
    refresh_s=3,
    limit=1000,
    top=True,
)
INCIDENTS = LayerDef(
    key="incidents",
    name="Open incidents",
    endpoint="/api/v1/features/incidents",
    params={"status": list(OPEN_INCIDENT_STATUSES)},
    style=Style(by="priority", colours=PRIORITY_COLOURS, icons={"*": "fa-solid fa-triangle-exclamation"}),
    title="title",
    tooltip="title",
    popup=[
        ("Priority", "priority"),
        ("Status", "status"),
        ("Category", "category"),
        ("Domain", "domain"),
        ("State", "state"),
        ("Agency", "agency_code"),
        ("Opened", "created_at"),
        ("Units", "tasked_units"),
        ("Alerts", "alert_ids"),
        ("Shared by", "shared_by"),
        ("Personal data removed", "redacted"),
    ],
    links=[INCIDENT_LINK],
    refresh_s=3,
    limit=1000,
    top=True,
)
JOINT_PATROL_ROUTES = LayerDef(
    key="patrol_routes",
    name="Joint patrol routes",
    endpoint="/api/v1/features/joint-patrol-routes",
    geometry="shape",
    style=Style(default=ROUTE_COLOUR, weight=3, dash="8 6"),
    title="name",
    tooltip="name",
    popup=[
        ("Sector", "sector"),
        ("Agencies", "agencies"),
        ("Starts", "starts_at"),
        ("Ends", "ends_at"),
        ("Units", "units"),
        ("Hand-over points", "handover_points"),
    ],
    refresh_s=60,
    limit=500,
)
HANDOVER_POINTS = LayerDef(
    key="handovers",
    name="Hand-over points",
    endpoint="/api/v1/features/handover-points",
    style=Style(default=ROUTE_COLOUR, icons={"*": "fa-solid fa-right-left"}),
    title="name",
    tooltip="name",
    popup=[
        ("Patrol", "patrol"),
        ("From", "from_agency"),
        ("To", "to_agency"),
        ("Order", "seq"),
        ("Starts", "starts_at"),
        ("Ends", "ends_at"),
    ],
    refresh_s=60,
    limit=1000,
)
PROMOTE_LINK = Link("Promote to an incident", "/maps/promote?alert_id={id}")
OPEN_ALERTS = replace(OPEN_ALERTS, links=[TRACK_LINK, PROMOTE_LINK])

# The extension point: the COP draws these layers, in this order (later ones on top).
COP_LAYERS: list[LayerDef] = [
    ZONES,
    SEGMENTS,
    JOINT_PATROL_ROUTES,
    SENSORS,
    DETECTIONS,
    HANDOVER_POINTS,
    OPEN_ALERTS,
    INCIDENTS,
    UNITS,
]

VIEW_LINKS = (("COP", "/maps/cop"), ("Coverage", "/maps/coverage"), ("Overview", "/maps/overview"))


def build_cop(
    *,
    agency: str,
    layers: Sequence[LayerDef] | None = None,
    tile_url: str = "",
    tile_attribution: str = "",
    centre: tuple[float, float] = CENTRE,
    zoom: int = ZOOM,
) -> folium.Map:
    """The COP map: the base layer, the live layers (``COP_LAYERS`` unless given) and a layer control.

    The page holds no data of its own: the browser loads and refreshes every layer from the
    agency-scoped endpoints with the operator's session cookie.
    """
    m = new_map(centre, zoom)
    add_live_layers(
        m,
        list(COP_LAYERS if layers is None else layers),
        tile_url=tile_url,
        tile_attribution=tile_attribution,
        options={"legend": True},
    )
    TitleBar(f"Borderwatch · common operating picture · {agency}", VIEW_LINKS).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    return m
