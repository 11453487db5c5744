"""Member states' land areas: shared geography, the maps' base layer."""

from __future__ import annotations

from features.layer import FeatureLayer

LAYER = FeatureLayer(
    name="states",
    title="Member states",
    description="Member states' land areas (shared geography).",
    source="states st",
    key="st.code",
    key_is_int=False,
    geometry="st.geom",
    polygons=True,
    properties={"code": "st.code", "name": "st.name"},
)
