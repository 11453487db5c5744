"""Hand-over points of the joint patrols the caller's agency takes part in."""

from __future__ import annotations

from features.filters import After
from features.layer import FeatureLayer, rfc3339

LAYER = FeatureLayer(
    name="handover_points",
    title="Hand-over points",
    description="Hand-over points of the joint patrols the caller's agency takes part in.",
    source="handover_points h JOIN joint_patrols p ON p.id = h.patrol_id",
    key="h.id",
    geometry="h.geom",
    scope="p.agencies @> ARRAY[CAST(:agency AS varchar)]",
    order=(("p.id", "ASC"), ("h.seq", "ASC")),
    properties={
        "name": "h.name",
        "seq": "h.seq",
        "from_agency": "h.from_agency",
        "to_agency": "h.to_agency",
        "patrol_id": "p.id",
        "patrol": "p.name",
        "starts_at": rfc3339("p.starts_at"),
        "ends_at": rfc3339("p.ends_at"),
    },
    # Patrols that have not ended by this time.
    filters={"at": After("p.ends_at")},
)
