"""Closed-network pages: every script and style sheet a map loads is served by Borderwatch.

folium links Leaflet, jQuery, Bootstrap, Font Awesome and its plugins from public CDNs. The
same files, pinned from npm with their licences, live in ``maps/static/vendor/`` (written by
``scripts/vendor_map_assets.py``, listed in its MANIFEST.json). :func:`render_page` points
every folium element at those copies and refuses to render a page that would still load
anything from another host.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from branca.element import Element, Figure

STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
STATIC_URL = "/maps/static"

# folium's resource names (the first item of its ``default_js``/``default_css`` pairs) -> the
# vendored file (npm package, path in the package). None: not used by Borderwatch's pages, so
# not loaded at all (glyphicons are Bootstrap 3 icons; the rotate sheet only turns icons).
FOLIUM_RESOURCES: dict[str, tuple[str, str] | None] = {
    "leaflet": ("leaflet", "dist/leaflet.js"),
    "leaflet_css": ("leaflet", "dist/leaflet.css"),
    "jquery": ("jquery", "dist/jquery.min.js"),
    "bootstrap": ("bootstrap", "dist/js/bootstrap.bundle.min.js"),
    "bootstrap_css": ("bootstrap", "dist/css/bootstrap.min.css"),
    "glyphicons_css": None,
    "awesome_markers": ("leaflet.awesome-markers", "dist/leaflet.awesome-markers.js"),
    "awesome_markers_css": ("leaflet.awesome-markers", "dist/leaflet.awesome-markers.css"),
    "awesome_markers_font_css": ("@fortawesome/fontawesome-free", "css/all.min.css"),
    "awesome_rotate_css": None,
    "markerclusterjs": ("leaflet.markercluster", "dist/leaflet.markercluster.js"),
    "markerclustercss": ("leaflet.markercluster", "dist/MarkerCluster.css"),
    "markerclusterdefaultcss": ("leaflet.markercluster", "dist/MarkerCluster.Default.css"),
    "leaflet-heat.js": ("leaflet.heat", "dist/leaflet-heat.js"),
}

# A script, style sheet, image or font address that leaves the origin: scheme or protocol-relative.
_OUTSIDE = re.compile(
    r"""(?:<(?:script|link|img|iframe|source)\b[^>]*?\b(?:src|href)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//)"""
    r"""|(?:@import\s+(?:url\()?\s*["']?\s*(?:https?:)?//)""",
    re.IGNORECASE,
)


class OutsideResource(ValueError):
    """A page would load something that Borderwatch does not serve itself."""


@lru_cache
def manifest() -> dict[str, dict]:
    """The vendored packages by npm name (MANIFEST.json written by scripts/vendor_map_assets.py)."""
    entries = json.loads((VENDOR_DIR / "MANIFEST.json").read_text())
    return {e["package"]: e for e in entries}


def vendor_url(package: str, path: str) -> str:
    """The local URL of one vendored file; KeyError if it was not vendored."""
    entry = manifest()[package]
    if path not in entry["files"]:
        raise KeyError(f"{package} {path} is not vendored (scripts/vendor_map_assets.py)")
    return f"{STATIC_URL}/vendor/{entry['dir']}/{path}"


def static_url(path: str) -> str:
    """The URL of Borderwatch's own page scripts and styles under maps/static/."""
    if not (STATIC_DIR / path).is_file():
        raise KeyError(f"maps/static/{path} does not exist")
    return f"{STATIC_URL}/{path}"


def _local(name: str, url: str) -> str | None:
    if name not in FOLIUM_RESOURCES:
        if url.startswith(STATIC_URL + "/"):
            return url
        raise OutsideResource(
            f"folium resource {name!r} ({url}) has no local copy: add it to "
            "scripts/vendor_map_assets.py and maps.assets.FOLIUM_RESOURCES"
        )
    target = FOLIUM_RESOURCES[name]
    return None if target is None else vendor_url(*target)


def _walk(element: Element):
    yield element
    for child in list(element._children.values()):
        yield from _walk(child)


def localise(root: Element) -> None:
    """Point every element under ``root`` at the vendored copies of its scripts and style sheets."""
    for element in _walk(root):
        for attr in ("default_js", "default_css"):
            links = getattr(element, attr, None)
            if not links:
                continue
            local = [(name, _local(name, url)) for name, url in links]
            # An instance attribute: folium's class-level lists stay as they are.
            setattr(element, attr, [(name, url) for name, url in local if url is not None])


def check_closed(page: str) -> None:
    """Raise OutsideResource if the page would load anything from another host."""
    match = _OUTSIDE.search(page)
    if match:
        raise OutsideResource(f"page loads an outside address: {match.group(0)[:200]}")


def render_page(m) -> str:
    """The map's whole HTML page, with local scripts and style sheets only."""
    figure = m.get_root()
    if not isinstance(figure, Figure):
        raise TypeError("the map must belong to a folium Figure")
    localise(figure)
    page = figure.render()
    check_closed(page)
    return page
