"""Incidents: the caller's agency's, and those partners release to it by a sharing agreement (personal
fields removed where not granted, reads of partners' incidents audited), newest first, with the
alerts they were opened from and the callsigns of the units tasked to them."""

from __future__ import annotations

from features.filters import AnyOf
from features.layer import FeatureLayer, rfc3339
from sharing import service as sharing

_ALERT_IDS = "ARRAY(SELECT ia.alert_id FROM incident_alerts ia WHERE ia.incident_id = i.id ORDER BY ia.alert_id)"
_TASKED_UNITS = """ARRAY(SELECT u.callsign FROM taskings t JOIN patrol_units u ON u.id = t.unit_id
                     WHERE t.incident_id = i.id AND t.status IN ('assigned', 'accepted') ORDER BY t.id)"""

LAYER = FeatureLayer(
    name="incidents",
    title="Incidents",
    description="Incidents of the caller's agency, and of partners that share them by agreement (datetime: created_at).",
    source=sharing.INCIDENTS_SEEN,
    key="i.id",
    geometry="i.geom",
    scope=sharing.INCIDENT_VISIBLE_SQL,
    temporal="i.created_at",
    order=(("i.id", "DESC"),),
    properties={
        "title": "i.title",
        "agency_code": "i.agency_code",
        "category": "i.category",
        "priority": "i.priority",
        "status": "i.status",
        "domain": "i.domain",
        "state": "i.state",
        "created_by": "i.created_by",
        "created_at": rfc3339("i.created_at"),
        "updated_at": rfc3339("i.updated_at"),
        "closed_at": rfc3339("i.closed_at"),
        "alert_ids": _ALERT_IDS,
        "tasked_units": _TASKED_UNITS,
        "redacted": "i.redacted",
        "shared_by": "i.shared_by",
    },
    filters={"statuses": AnyOf("i.status"), "priorities": AnyOf("i.priority"), "ids": AnyOf("i.id", "bigint")},
    geojson_properties=(
        "title",
        "agency_code",
        "category",
        "priority",
        "status",
        "domain",
        "state",
        "created_by",
        "created_at",
        "updated_at",
        "alert_ids",
        "tasked_units",
        "redacted",
        "shared_by",
    ),
    shared_entity="incident",
    shared_by="i.shared_by",
    ogc=True,
    ogc_properties=(
        "agency_code",
        "title",
        "category",
        "priority",
        "status",
        "domain",
        "state",
        "created_at",
        "updated_at",
        "closed_at",
        "redacted",
        "shared_by",
    ),
)
