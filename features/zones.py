"""Zones: those the caller's agency owns, and those listing it among their members (joint sectors)."""

from __future__ import annotations

from features.filters import AnyOf
from features.layer import FeatureLayer, rfc3339

SCOPE = "(z.owner_agency = :agency OR z.member_agencies @> ARRAY[CAST(:agency AS varchar)])"

LAYER = FeatureLayer(
    name="zones",
    title="Zones",
    description="Zones the caller's agency owns or is a member of (joint sectors included).",
    source="zones z",
    key="z.id",
    geometry="z.geom",
    polygons=True,
    scope=SCOPE,
    field_scope=False,
    properties={
        "name": "z.name",
        "kind": "z.kind",
        "state": "z.state",
        "owner_agency": "z.owner_agency",
        "member_agencies": "z.member_agencies",
        "impact_level": "z.impact_level",
        "entry_alert": "z.entry_alert",
        "segment_id": "z.segment_id",
        "updated_at": rfc3339("z.updated_at"),
    },
    filters={"kinds": AnyOf("z.kind")},
    ogc=True,
)
