"""Routes of the joint patrols the caller's agency takes part in."""

from __future__ import annotations

from features.filters import After
from features.layer import FeatureLayer, rfc3339

_UNITS = """ARRAY(SELECT u.callsign FROM joint_patrol_units pu JOIN patrol_units u ON u.id = pu.unit_id
                     WHERE pu.patrol_id = p.id ORDER BY u.callsign)"""

LAYER = FeatureLayer(
    name="patrol_routes",
    title="Joint patrol routes",
    description="Routes of the joint patrols the caller's agency takes part in.",
    source="joint_patrols p JOIN zones z ON z.id = p.zone_id",
    key="p.id",
    geometry="p.route",
    # A patrol planned without a route is no feature of this layer.
    scope="p.agencies @> ARRAY[CAST(:agency AS varchar)] AND p.route IS NOT NULL",
    order=(("p.starts_at", "ASC"), ("p.id", "ASC")),
    properties={
        "name": "p.name",
        "owner_agency": "p.owner_agency",
        "agencies": "array_to_string(p.agencies, ', ')",
        "sector": "z.name",
        "starts_at": rfc3339("p.starts_at"),
        "ends_at": rfc3339("p.ends_at"),
        "units": f"array_to_string({_UNITS}, ', ')",
        "handover_points": "(SELECT count(*) FROM handover_points h WHERE h.patrol_id = p.id)",
    },
    # Patrols that have not ended by this time.
    filters={"at": After("p.ends_at")},
)
