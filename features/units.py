"""Patrol units at their last reported position: the caller's agency's, and partners' inside a joint
sector shared with it (``patrols.units``), with their open tasking if any."""

from __future__ import annotations

from features.filters import AnyOf
from features.layer import FeatureLayer, rfc3339
from patrols.units import UNIT_VISIBLE_SQL

LAYER = FeatureLayer(
    name="units",
    title="Patrol units",
    description="Units of the caller's agency, and of partners inside a shared joint sector, at their last position "
    "(datetime: position_at).",
    # A unit has at most one open tasking (unique index uq_taskings_open_unit): one row per unit.
    source="patrol_units u LEFT JOIN taskings t ON t.unit_id = u.id AND t.status IN ('assigned', 'accepted')",
    key="u.id",
    geometry="u.geom",
    scope=UNIT_VISIBLE_SQL,
    temporal="u.position_at",
    properties={
        "callsign": "u.callsign",
        "agency_code": "u.agency_code",
        "kind": "u.kind",
        "status": "u.status",
        "status_at": rfc3339("u.status_at"),
        "capabilities": "u.capabilities",
        "cruising_speed_kmh": "u.cruising_speed_kmh",
        "position_at": rfc3339("u.position_at"),
        "updated_at": rfc3339("u.updated_at"),
        "tasking_id": "t.id",
        "incident_id": "t.incident_id",
    },
    filters={"statuses": AnyOf("u.status"), "kinds": AnyOf("u.kind")},
    ogc=True,
    ogc_properties=(
        "agency_code",
        "callsign",
        "kind",
        "capabilities",
        "status",
        "status_at",
        "position_at",
        "cruising_speed_kmh",
    ),
)
