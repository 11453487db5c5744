"""The description of one feature layer: where its rows come from, who may see which, what each
feature carries. Every format is built from it (``features.geojson``, ``features.pages``,
``features.density``; a vector tile would be ``ST_AsMVT`` over :meth:`FeatureLayer.scoped`
and :attr:`FeatureLayer.geometry`).

All SQL fragments name the columns of ``source`` through its alias and bind the caller's agency
as ``:agency``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from core.permissions import FIELD_ROLES
from core.security import Principal
from features.filters import Filter, Where
from patrols.field import nearby, nearby_params


def rfc3339(column: str) -> str:
    """A timestamp column as RFC 3339 text in UTC with microseconds (``2026-11-22T07:00:00.000000Z``)."""
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


@dataclass(frozen=True)
class FeatureLayer:
    """One feature layer.

    name        the layer's name: the OGC collection id, the audit's ``via``
    title, description   for catalogues (OGC collections)
    source      FROM clause with the alias every other fragment uses; for alerts and incidents the
                table as the caller sees it (``sharing.service``: personal fields redacted)
    key         the feature id column (unique, indexed); ``key_is_int`` its type
    geometry    the geometry column (EPSG:4326)
    scope       WHERE condition on ``:agency``: the rows the caller may see; None for shared geography
    properties  name -> SQL expression: every property the layer's features may carry
    geojson_properties  the names GeoJSON collections carry, in order (None: every property, in order)
    temporal    the time column ``time_range``/``datetime`` filter on; None for a layer without one
    order       GeoJSON collections' order, as (expression, ASC|DESC) pairs; () for ``key`` ascending
    filters     keyword -> condition: the filters a GeoJSON read of the layer accepts
    polygons    RFC 7946 section 3.1.6: exterior rings counterclockwise
    shared_entity, shared_by   for layers partners share into: the audit's entity type, and the
                column naming the owning partner (null for the caller's own rows)
    field_scope for a layer with a ``scope``: a patrol unit's device (``core.permissions.FIELD_ROLES``)
                gets only the rows near it (``patrols.field.nearby``); False for geography every
                role reads whole (zones)
    ogc         served as an OGC API Features collection; ``ogc_properties`` the names it carries, in
                order (None: every property); OGC clients read a fixed schema, kept as published
                (GDAL's OAPIF driver reads it from the first page)
    """

    name: str
    title: str
    description: str
    source: str
    key: str
    geometry: str
    properties: Mapping[str, str]
    scope: str | None = None
    temporal: str | None = None
    order: Sequence[tuple[str, str]] = ()
    filters: Mapping[str, Filter] = field(default_factory=dict)
    key_is_int: bool = True
    polygons: bool = False
    shared_entity: str | None = None
    shared_by: str = "NULL"
    geojson_properties: Sequence[str] | None = None
    field_scope: bool = True
    ogc: bool = False
    ogc_properties: Sequence[str] | None = None

    def __post_init__(self) -> None:
        unknown = (set(self.geojson_properties or ()) | set(self.ogc_properties or ())) - set(self.properties)
        if unknown:
            raise ValueError(f"layer {self.name}: properties named but not described: {sorted(unknown)}")

    def scoped(self, principal: Principal, **params) -> Where:
        """The conditions every read of the layer starts from: the caller's scope, ``:agency`` bound."""
        where = Where(params={**params, "agency": principal.agency_code})
        if self.scope:
            where.add(self.scope)
            if self.field_scope and principal.role in FIELD_ROLES:
                where.add(nearby(self.geometry), **nearby_params(principal))
        return where

    def order_sql(self) -> str:
        return ", ".join(f"{expr} {direction}" for expr, direction in self.order) if self.order else self.key

    def geometry_json(self, simplified: bool = False) -> str:
        """The geometry as a GeoJSON geometry (6 decimals, about 0.1 m); ``simplified``: to the
        tolerance bound as ``:simplify`` (degrees), topology preserved."""
        column = self.geometry
        if simplified:
            column = f"ST_SimplifyPreserveTopology({column}, :simplify)"
        if self.polygons:
            column = f"ST_ForcePolygonCCW({column})"
        return f"ST_AsGeoJSON({column}, 6)::json"

    def feature_json(self, geometry: str, names: Sequence[str] | None = None) -> str:
        """One RFC 7946 Feature (json) with the named properties (all when None), in that order."""
        names = list(self.properties) if names is None else names
        properties = ", ".join(f"'{name}', {self.properties[name]}" for name in names)
        return (
            f"json_build_object('type', 'Feature', 'id', {self.key}, 'geometry', {geometry}, "
            f"'properties', json_build_object({properties}))"
        )
