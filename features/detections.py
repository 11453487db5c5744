"""Detections: the caller's agency's only (raw sensor data is never shared), newest first."""

from __future__ import annotations

from features.filters import AnyOf, AtLeast
from features.layer import FeatureLayer, rfc3339

SCOPE = "d.agency_code = :agency"

LAYER = FeatureLayer(
    name="detections",
    title="Detections",
    description="The caller's agency's sensor detections (datetime: observed_at).",
    source="detections d",
    key="d.id",
    geometry="d.geom",
    scope=SCOPE,
    temporal="d.observed_at",
    order=(("d.observed_at", "DESC"), ("d.id", "DESC")),
    properties={
        "observed_at": rfc3339("d.observed_at"),
        "received_at": rfc3339("d.received_at"),
        "sensor_id": "d.sensor_id",
        "agency_code": "d.agency_code",
        "event_id": "d.event_id",
        "located_by": "d.located_by",
        "class": "d.class",
        "confidence": "d.confidence",
        "track_id": "d.track_id",
        "track_key": "d.track_key",
        "speed_mps": "d.speed_mps",
        "heading_deg": "d.heading_deg",
        "identifiers": "d.identifiers",
    },
    filters={
        # Stored at or after this time (polling clients ask for what arrived since their last
        # poll, whatever the observation time says).
        "received_since": AtLeast("d.received_at"),
        "track_keys": AnyOf("d.track_key"),
        "sensor_ids": AnyOf("d.sensor_id"),
        "classes": AnyOf("d.class"),
    },
    ogc=True,
    ogc_properties=(
        "observed_at",
        "received_at",
        "sensor_id",
        "agency_code",
        "event_id",
        "located_by",
        "class",
        "confidence",
        "track_id",
        "track_key",
        "speed_mps",
        "heading_deg",
    ),
)
