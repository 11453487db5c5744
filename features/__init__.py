"""Feature layers, each described once (a module per layer, its ``LAYER``), and served from that
description in every format: GeoJSON collections (``features.geojson``, behind the feature
endpoints and the maps), OGC API Features pages and items (``features.pages``), grid counts
(``features.density``). A vector tile would be ``ST_AsMVT`` over the same description: its
:attr:`~features.layer.FeatureLayer.geometry` and :meth:`~features.layer.FeatureLayer.scoped`
conditions. The idea is pygeoapi's providers.

A description names its source table, key, geometry, time column, properties, the filters it
accepts and the caller's scope: the agency's own rows, or the sharing and joint-sector
visibility of ``sharing.service`` and ``patrols.units`` with their redaction of personal
fields. This package knows nothing of HTTP; ``api`` routes call it.

A new layer: a module here with its ``LAYER``, listed in :data:`LAYERS` (an OGC collection from
then on if it says ``ogc=True``), and its GeoJSON route in ``api.geo``.
"""

from __future__ import annotations

from features import (
    alerts,
    detections,
    handover_points,
    incidents,
    patrol_routes,
    segments,
    sensors,
    states,
    units,
    zones,
)
from features.layer import FeatureLayer

# In this order in catalogues (the OGC collections).
LAYERS: dict[str, FeatureLayer] = {
    layer.name: layer
    for layer in (
        states.LAYER,
        segments.LAYER,
        zones.LAYER,
        sensors.LAYER,
        detections.LAYER,
        alerts.LAYER,
        incidents.LAYER,
        units.LAYER,
        patrol_routes.LAYER,
        handover_points.LAYER,
    )
}
