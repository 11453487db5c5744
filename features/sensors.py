"""Sensors: the caller's agency's only (raw sensor data is never shared), with the status of the
gateway they publish through."""

from __future__ import annotations

from features.filters import AnyOf
from features.layer import FeatureLayer, rfc3339

SCOPE = "s.agency_code = :agency"

LAYER = FeatureLayer(
    name="sensors",
    title="Sensors",
    description="The caller's agency's sensors at their locations.",
    # Every sensor has its gateway (NOT NULL, foreign key): one row per sensor.
    source="sensors s JOIN gateways g ON g.id = s.gateway_id",
    key="s.id",
    key_is_int=False,
    geometry="s.location",
    scope=SCOPE,
    properties={
        "name": "s.name",
        "kind": "s.kind",
        "agency_code": "s.agency_code",
        "gateway_id": "s.gateway_id",
        "gateway_status": "g.status",
        "has_coverage": "s.coverage IS NOT NULL",
        "last_seen_at": rfc3339("s.last_seen_at"),
        "created_at": rfc3339("s.created_at"),
    },
    filters={"kinds": AnyOf("s.kind")},
    ogc=True,
    ogc_properties=("name", "kind", "agency_code", "gateway_id", "last_seen_at", "created_at"),
)
