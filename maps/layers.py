"""Live map layers: what a layer shows (a GeoJSON endpoint), how it is drawn, and the element
that keeps it current in the browser.

A :class:`LayerDef` is plain data: the endpoint it polls (same origin, agency-scoped by the
API), the query parameters, how features are coloured and what their popups say.
:func:`add_live_layers` adds one folium group per definition (so each has its place in the
layer control) and one script call that polls the endpoints (``maps/static/live.js``): only
the visible layers, for the visible area (``bbox``), the recent period (``start``) and, for
big point layers, only what arrived since the last poll (``since``); features that are new or
changed are drawn, those the endpoint no longer returns are removed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import folium
from branca.element import MacroElement
from folium.elements import JSCSSMixin
from folium.plugins import MarkerCluster
from folium.template import Template

from maps.assets import static_url

FALLBACK_COLOUR = "#616161"


@dataclass(frozen=True)
class Style:
    """How a feature is coloured: by the value of one property (``by`` + ``colours``), or by the
    age of a timestamp property (``age_of`` + ``age_steps``: up to N seconds old -> colour)."""

    by: str | None = None
    colours: Mapping[str, str] = field(default_factory=dict)
    age_of: str | None = None
    age_steps: Sequence[tuple[int, str]] = ()
    default: str = FALLBACK_COLOUR
    fill: str | None = None  # polygons' fill; None: the feature's colour
    weight: float = 2
    opacity: float = 0.9
    fill_opacity: float = 0.6
    radius: float = 6
    dash: str | None = None
    # Points drawn as a badge with a Font Awesome glyph: the glyph's classes by the value of
    # ``icon_by`` ("*" for every feature), the badge in the feature's colour.
    icon_by: str | None = None
    icons: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Link:
    """A link in a popup: ``href`` is a same-site path whose ``{property}`` fields are filled in
    (URL-encoded); the link is left out when a property it needs is empty."""

    label: str
    href: str


@dataclass(frozen=True)
class LayerDef:
    """One live layer.

    key       short name, used in CSS classes (``bw-<key>``) and by the page's tests
    name      label in the layer control
    endpoint  GeoJSON FeatureCollection URL on this server (``/api/v1/...``)
    geometry  ``point`` (markers) or ``shape`` (lines and polygons)
    params    fixed query parameters, e.g. ``{"status": "open"}``
    window_s  only features observed in the last ``window_s`` seconds (``start=``)
    since     poll only what was received since the last poll (``since=``) and keep the rest
              until it leaves the window; for big, append-only point layers (detections)
    simplify  ask for geometry simplified to about one screen pixel (``simplify=``)
    cluster   points are clustered (Leaflet.markercluster)
    refresh_s seconds between polls
    top       drawn above everything else, clustered markers included
    """

    key: str
    name: str
    endpoint: str
    style: Style = field(default_factory=Style)
    geometry: Literal["point", "shape"] = "point"
    params: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    title: str | None = None
    popup: Sequence[tuple[str, str]] = ()
    links: Sequence[Link] = ()
    tooltip: str | None = None
    window_s: int | None = None
    since: bool = False
    simplify: bool = False
    cluster: bool = False
    bbox: bool = True
    refresh_s: float = 5.0
    limit: int = 5000
    show: bool = True
    base: bool = False
    top: bool = False  # drawn above the clustered markers (alerts, incidents, units)
    interactive: bool = True

    def __post_init__(self) -> None:
        if not self.endpoint.startswith("/") or self.endpoint.startswith("//"):
            raise ValueError(f"layer {self.key}: the endpoint must be a path on this server, got {self.endpoint!r}")
        for link in self.links:
            if not link.href.startswith("/") or link.href.startswith("//"):
                raise ValueError(f"layer {self.key}: links must be paths on this server, got {link.href!r}")
        if self.since and self.window_s is None:
            raise ValueError(f"layer {self.key}: since= needs a window_s to age features out")

    def to_js(self) -> dict:
        d = asdict(self)
        d["style"]["colours"] = dict(self.style.colours)
        d["style"]["icons"] = dict(self.style.icons)
        d["params"] = dict(self.params)
        d["popup"] = [list(p) for p in self.popup]
        return d


# The base layer every map draws: the member states' land from the shipped Natural Earth data.
COUNTRIES = LayerDef(
    key="countries",
    name="Countries (Natural Earth)",
    endpoint="/api/v1/states",
    geometry="shape",
    style=Style(default="#9e9a91", fill="#f2efe9", weight=1, opacity=1, fill_opacity=1),
    simplify=True,
    refresh_s=3600,
    limit=100,
    base=True,
    interactive=False,
)


def js_json(value: object) -> str:
    """JSON that is safe inside an inline <script> (no ``</script>``, no HTML comment openers)."""
    return (
        json.dumps(value, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    )


class LiveLayers(JSCSSMixin):
    """Starts the browser side (``BW.live``) for the map's live layers."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        BW.live({{ this._parent.get_name() }}, [
        {%- for d, group in this.layers %}
            {def: {{ this.js(d) }}, group: {{ group.get_name() }}},
        {%- endfor %}
        ], {{ this.options_json }});
        {% endmacro %}
        """
    )

    def __init__(self, layers: list[tuple[LayerDef, folium.map.Layer]], options: Mapping | None = None) -> None:
        super().__init__()
        self._name = "LiveLayers"
        self.layers = layers
        self.options_json = js_json(dict(options or {}))
        self.default_js = [("bw_live_js", static_url("live.js"))]
        self.default_css = [("bw_map_css", static_url("map.css"))]

    @staticmethod
    def js(d: LayerDef) -> str:
        return js_json(d.to_js())


def layer_group(d: LayerDef) -> folium.map.Layer:
    """The folium group a definition's features are drawn into."""
    if d.cluster:
        # Past this zoom every marker is shown on its own.
        return MarkerCluster(name=d.name, show=d.show, options={"disableClusteringAtZoom": 14, "chunkedLoading": True})
    return folium.FeatureGroup(name=d.name, show=d.show, overlay=not d.base)


def fc_features(fc: Mapping | None) -> list[dict]:
    return list((fc or {}).get("features") or [])


def add_live_layers(
    m: folium.Map,
    layers: Sequence[LayerDef],
    *,
    tile_url: str = "",
    tile_attribution: str = "",
    options: Mapping | None = None,
) -> dict[str, folium.map.Layer]:
    """Add the base layers (local countries, and a tile server where one is configured) and the
    live layers, in this order; returns the folium groups by layer key."""
    keys = [d.key for d in layers]
    if len(set(keys)) != len(keys):
        raise ValueError(f"layer keys must be unique: {keys}")
    if tile_url:
        folium.TileLayer(
            tiles=tile_url, attr=tile_attribution or "Map tiles", name="Tiles", overlay=False, control=True
        ).add_to(m)
    pairs = []
    # Where a tile server is configured it is the base layer shown first; the countries stay selectable.
    countries = replace(COUNTRIES, show=False) if tile_url else COUNTRIES
    for d in [countries, *layers]:
        group = layer_group(d)
        group.add_to(m)
        pairs.append((d, group))
    LiveLayers(pairs, options).add_to(m)
    return {d.key: g for d, g in pairs}


class TitleBar(MacroElement):
    """A bar in the map's top-left corner: the view's title, the operator's agency and links."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var data = {{ this.data_json }};
            var Bar = L.Control.extend({onAdd: function () {
                var el = L.DomUtil.create("div", "bw-title");
                var t = document.createElement("span");
                t.textContent = data.title;
                el.appendChild(t);
                data.links.forEach(function (l) {
                    var a = document.createElement("a");
                    a.href = l[1];
                    a.textContent = l[0];
                    el.appendChild(a);
                });
                L.DomEvent.disableClickPropagation(el);
                return el;
            }});
            new Bar({position: "topleft"}).addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
        """
    )

    def __init__(self, title: str, links: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__()
        self._name = "TitleBar"
        for _, href in links:
            if not href.startswith("/") or href.startswith("//"):
                raise ValueError(f"title bar links must be paths on this server, got {href!r}")
        self.data_json = js_json({"title": title, "links": [list(link) for link in links]})


MIN_ZOOM, MAX_ZOOM = 3, 18


def new_map(location: Sequence[float], zoom: int) -> folium.Map:
    """A map without any tile layer (the base layer comes from :func:`add_live_layers`); the
    zoom range is set on the map itself, since no tile layer sets it."""
    return folium.Map(
        location=list(location), zoom_start=zoom, tiles=None, control_scale=True, minZoom=MIN_ZOOM, maxZoom=MAX_ZOOM
    )
