"""Alerts: the caller's agency's, and those partners release to it by a sharing agreement, newest
first. A partner's alert names who shared it (``shared_by``); without personal data granted, its
personal fields are removed in SQL (``redacted``; ``sharing.service``), and reading it is audited."""

from __future__ import annotations

from features.filters import AnyOf, OnlyIf
from features.layer import FeatureLayer, rfc3339
from sharing import service as sharing

LAYER = FeatureLayer(
    name="alerts",
    title="Alerts",
    description="Alerts of the caller's agency, and of partners that share them by agreement (datetime: observed_at).",
    source=sharing.ALERTS_SEEN,
    key="a.id",
    geometry="a.geom",
    scope=sharing.ALERT_VISIBLE_SQL,
    temporal="a.observed_at",
    order=(("a.observed_at", "DESC"), ("a.id", "DESC")),
    properties={
        "kind": "a.kind",
        "severity": "a.severity",
        "status": "a.status",
        "title": "a.title",
        "observed_at": rfc3339("a.observed_at"),
        "created_at": rfc3339("a.created_at"),
        "agency_code": "a.agency_code",
        "sensor_id": "a.sensor_id",
        "track_key": "a.track_key",
        "class": "a.class",
        "from_state": "a.from_state",
        "to_state": "a.to_state",
        "segment_id": "a.segment_id",
        "zone_id": "a.zone_id",
        "detection_id": "a.detection_id",
        "detection_ids": "a.detection_ids",
        "details": "a.details",
        "redacted": "a.redacted",
        "shared_by": "a.shared_by",
    },
    filters={
        "own_only": OnlyIf("a.agency_code = :agency"),
        "kinds": AnyOf("a.kind"),
        "severities": AnyOf("a.severity"),
        "statuses": AnyOf("a.status"),
        "classes": AnyOf("a.class"),
        "sensor_ids": AnyOf("a.sensor_id"),
        # On the field as the caller may see it: a redacted alert cannot be found by its track key.
        "track_keys": AnyOf("a.track_key"),
        "ids": AnyOf("a.id", "bigint"),
    },
    shared_entity="alert",
    shared_by="a.shared_by",
    ogc=True,
    ogc_properties=(
        "kind",
        "severity",
        "status",
        "title",
        "observed_at",
        "created_at",
        "agency_code",
        "sensor_id",
        "track_key",
        "class",
        "from_state",
        "to_state",
        "segment_id",
        "zone_id",
        "detection_id",
        "redacted",
        "shared_by",
    ),
)
