"""Border segments: shared geography, every authenticated caller sees them all."""

from __future__ import annotations

from features.filters import AnyOf
from features.layer import FeatureLayer, rfc3339

LAYER = FeatureLayer(
    name="segments",
    title="Border segments",
    description="Border lines between member states (shared geography).",
    source="border_segments s",
    key="s.id",
    geometry="s.geom",
    properties={
        "name": "s.name",
        "kind": "s.kind",
        "left_state": "s.left_state",
        "right_state": "s.right_state",
        "impact_level": "s.impact_level",
        "source": "s.source",
        "updated_at": rfc3339("s.updated_at"),
    },
    filters={"kinds": AnyOf("s.kind"), "impact_levels": AnyOf("s.impact_level")},
    ogc=True,
)
