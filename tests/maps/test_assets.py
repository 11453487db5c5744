"""Closed-network pages: vendored files intact, every page's links local, outside links refused."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import folium
import pytest
from folium.plugins import Fullscreen

from maps.assets import (
    FOLIUM_RESOURCES,
    STATIC_DIR,
    STATIC_URL,
    VENDOR_DIR,
    OutsideResource,
    check_closed,
    manifest,
    render_page,
)
from maps.cop import COP_LAYERS, build_cop
from maps.coverage import build_coverage
from maps.incident import build_incident, eta_text
from maps.layers import LayerDef, Link
from maps.overview import build_overview
from maps.track import bearing, build_track

LINK = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)\"""")


def test_manifest_lists_every_vendored_file_with_its_hash_and_licence():
    entries = manifest()
    assert {
        "leaflet",
        "leaflet.markercluster",
        "leaflet.awesome-markers",
        "leaflet.heat",
        "jquery",
        "bootstrap",
        "@fortawesome/fontawesome-free",
    } <= set(entries)
    for entry in entries.values():
        assert entry["licence_files"], entry["package"]
        for rel in entry["licence_files"]:
            assert rel in entry["files"]
        for rel, sha in entry["files"].items():
            data = (VENDOR_DIR / entry["dir"] / rel).read_bytes()
            assert hashlib.sha256(data).hexdigest() == sha, f"{entry['dir']}/{rel} differs from MANIFEST.json"


def test_every_folium_resource_maps_to_a_vendored_file():
    for name, target in FOLIUM_RESOURCES.items():
        if target is None:
            continue
        package, path = target
        assert path in manifest()[package]["files"], name


def test_style_sheets_only_point_at_files_that_are_vendored():
    # Relative url(...) in the vendored style sheets (fonts, images) must resolve to shipped files.
    for entry in manifest().values():
        for rel in entry["files"]:
            if not rel.endswith(".css"):
                continue
            css_path = VENDOR_DIR / entry["dir"] / rel
            for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", css_path.read_text()):
                if url.startswith(("data:", "#")):  # inline data, old IE behaviours
                    continue
                assert "//" not in url, f"{rel} loads {url}"
                if url.endswith((".ttf", ".eot", ".svg", ".woff")):
                    continue  # fallbacks after woff2 in the same @font-face; never asked for by browsers
                assert (css_path.parent / url.split("?")[0].split("#")[0]).resolve().is_file(), f"{rel}: {url}"


def _fc(*features):
    return {"type": "FeatureCollection", "features": list(features)}


def _pages():
    now = datetime.now(timezone.utc)
    point = {
        "type": "Feature",
        "id": 1,
        "geometry": {"type": "Point", "coordinates": [100.4, 6.6]},
        "properties": {"observed_at": "2026-11-22T07:00:00Z"},
    }
    return {
        "cop": build_cop(agency="TH-RTP"),
        "overview": build_overview(_fc(), _fc(), _fc(), _fc()),
        "track": build_track("cam-1:t1", _fc(point), _fc(), agency="TH-RTP"),
        "coverage": build_coverage([(6.6, 100.4, 5)], start=now - timedelta(hours=1), end=now, agency="TH-RTP"),
    }


@pytest.mark.parametrize("name", ["cop", "overview", "track", "coverage"])
def test_pages_load_only_local_files_that_exist(name):
    page = render_page(_pages()[name])
    links = LINK.findall(page)
    assert links
    for url in links:
        assert url.startswith(STATIC_URL + "/"), url
        assert (STATIC_DIR / url.removeprefix(STATIC_URL + "/")).is_file(), url
    assert "cdn" not in page.lower() and "openstreetmap" not in page.lower()


def test_a_resource_without_a_local_copy_is_refused():
    m = folium.Map(tiles=None)
    Fullscreen().add_to(m)  # a plugin Borderwatch does not vendor
    with pytest.raises(OutsideResource, match="fullscreen"):
        render_page(m)


@pytest.mark.parametrize(
    "snippet",
    [
        '<script src="https://cdn.example/x.js"></script>',
        "<link rel='stylesheet' href='//cdn.example/x.css'>",
        '<img src="http://tiles.example/1/2/3.png">',
        '<style>@import url("https://fonts.example/css");</style>',
    ],
)
def test_check_closed_finds_outside_addresses(snippet):
    with pytest.raises(OutsideResource):
        check_closed(f"<html><head>{snippet}</head></html>")


def test_check_closed_accepts_local_and_data_addresses():
    check_closed(
        '<script src="/maps/static/live.js"></script><img src="data:image/png;base64,AA==">'
        '<a href="https://leafletjs.com">Leaflet</a>'
    )


def test_a_configured_tile_server_becomes_the_first_base_layer():
    page = render_page(
        build_cop(
            agency="TH-RTP", tile_url="https://tiles.example.net/{z}/{x}/{y}.png", tile_attribution="Agency tiles"
        )
    )
    assert "https://tiles.example.net/{z}/{x}/{y}.png" in page and "Agency tiles" in page
    # The local countries layer is still there, only not shown first.
    assert '"key":"countries"' in page and '"show":false' in page


def test_layer_definitions_must_stay_on_this_server():
    with pytest.raises(ValueError):
        LayerDef(key="x", name="X", endpoint="https://elsewhere.example/api")
    with pytest.raises(ValueError):
        LayerDef(key="x", name="X", endpoint="/api/v1/x", links=[Link("Out", "//elsewhere.example/{id}")])
    with pytest.raises(ValueError):
        LayerDef(key="x", name="X", endpoint="/api/v1/x", since=True)  # since needs a window


def test_more_layers_plug_into_the_cop():
    boats = LayerDef(
        key="boats",
        name="Boats",
        endpoint="/api/v1/features/units",
        params={"kind": "maritime"},
        refresh_s=3,
        links=[Link("Open its incident", "/maps/incident?id={incident_id}")],
    )
    page = render_page(build_cop(agency="TH-RTP", layers=[*COP_LAYERS, boats]))
    assert '"key":"boats"' in page and '"kind":"maritime"' in page and "Boats" in page
    with pytest.raises(ValueError, match="unique"):
        build_cop(agency="TH-RTP", layers=[*COP_LAYERS, replace(boats, key="units")])


def test_cop_draws_units_incidents_and_joint_patrols():
    page = render_page(build_cop(agency="TH-RTP"))
    for endpoint in (
        "/api/v1/features/units",
        "/api/v1/features/incidents",
        "/api/v1/features/joint-patrol-routes",
        "/api/v1/features/handover-points",
    ):
        assert f'"endpoint":"{endpoint}"' in page
    assert "fa-solid fa-ship" in page and "fa-solid fa-helicopter" in page
    assert "/maps/promote?alert_id={id}" in page and "/maps/incident?id={id}" in page


def test_layer_definitions_cannot_close_the_script_element():
    evil = LayerDef(key="x", name="</script><script>alert(1)</script>", endpoint="/api/v1/x")
    page = render_page(build_cop(agency="TH-RTP", layers=[evil]))
    script = page[page.index("BW.live(") :]
    assert "</script><script>alert(1)" not in script[: script.index("</script>")]


def test_bearing():
    assert round(bearing((0, 0), (1, 0))) == 0
    assert round(bearing((0, 0), (0, 1))) == 90
    assert round(bearing((0, 0), (-1, 0))) == 180
    assert round(bearing((0, 0), (0, -1))) == 270


def test_track_map_labels_crossings_with_their_direction_and_escapes_text():
    fixes = _fc(
        *[
            {
                "type": "Feature",
                "id": i,
                "geometry": {"type": "Point", "coordinates": [100.42, 6.62 - 0.04 * i]},
                "properties": {"observed_at": f"2026-11-22T07:0{i}:00Z", "class": "<b>person</b>"},
            }
            for i in range(4)
        ]
    )
    alerts = _fc(
        {
            "type": "Feature",
            "id": 9,
            "geometry": {"type": "Point", "coordinates": [100.42, 6.55]},
            "properties": {
                "kind": "crossing",
                "from_state": "TH",
                "to_state": "MY",
                "severity": "high",
                "title": "Person crossing TH → MY",
                "observed_at": "2026-11-22T07:01:30Z",
            },
        }
    )
    page = render_page(build_track("cam-1:t1", fixes, alerts, agency="TH-RTP"))
    assert "TH &rarr; MY" in page and "07:01:30Z" in page
    assert "4 fixes \\u00b7 1 crossing \\u00b7" in page
    assert "<b>person</b>" not in page and "&lt;b&gt;person&lt;/b&gt;" in page
    # Heading south: the arrows point at 180 degrees (the glyph is rotated from east).
    assert "rotate(90deg)" in page


def test_incident_map_draws_eta_lines_and_escapes_text():
    incident = {
        "id": 7,
        "title": "<img src=x onerror=alert(1)>",
        "priority": "high",
        "status": "assigned",
        "category": "drugs",
        "domain": "land",
        "state": "TH",
        "created_by": "op",
        "geometry": {"type": "Point", "coordinates": [100.42, 6.63]},
    }
    candidates = [
        {
            "callsign": "<b>Sadao 1</b>",
            "kind": "land",
            "agency_code": "TH-RTP",
            "eta_s": 754.0,
            "distance_m": 9000,
            "travel_distance_m": 12600,
            "capabilities": ["k9"],
            "geometry": {"type": "Point", "coordinates": [100.5, 6.7]},
        }
    ]
    unit = {
        "callsign": "Kolok 3",
        "kind": "land",
        "status": "en_route",
        "tasking_status": "accepted",
        "geometry": {"type": "Point", "coordinates": [100.45, 6.65]},
    }
    track = _fc(
        *[
            {
                "type": "Feature",
                "id": i,
                "geometry": {"type": "Point", "coordinates": [100.47 - 0.01 * i, 6.67]},
                "properties": {"observed_at": f"2026-11-22T07:0{i}:00Z"},
            }
            for i in range(2)
        ]
    )
    page = render_page(build_incident(incident, None, candidates, agency="TH-RTP", tasked_unit=unit, track_fc=track))
    assert "<img src=x" not in page and "<b>Sadao 1</b>" not in page
    assert "1. &lt;b&gt;Sadao 1&lt;/b&gt; · 13 min" in page
    assert page.count("bw-eta-line") == 1 and "bw-unit-track" in page and "bw-tasked-unit" in page
    assert eta_text(45) == "45 s" and eta_text(754) == "13 min" and eta_text(7500) == "2 h 05 min"
