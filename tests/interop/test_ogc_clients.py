"""OGC API - Features read by clients that are not ours: GDAL's OAPIF driver (``ogrinfo``,
``ogr2ogr``, Debian's gdal-bin) and OWSLib, against a real uvicorn server with a bearer token."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import timedelta

import pytest

from tests.factories import now

OGRINFO, OGR2OGR = shutil.which("ogrinfo"), shutil.which("ogr2ogr")
COLLECTIONS = ["segments", "zones", "sensors", "detections", "alerts", "incidents", "units"]


@pytest.fixture
def ogc_world(committed_agency):
    """One committed agency with a sensor, 25 detections, 2 alerts; and a second agency's alert."""
    f = committed_agency.factory
    sensor = f.sensor(committed_agency.code, 100.42, 6.63)
    t0 = now() - timedelta(hours=2)
    detections = [
        f.detection(sensor, committed_agency.code, 100.42 + i * 1e-4, 6.63, t0 + timedelta(minutes=i))
        for i in range(25)
    ]
    alerts = [f.alert(sensor, committed_agency.code, 100.42, 6.63, t0 + timedelta(minutes=i)) for i in (0, 30)]
    other = f.agency()
    other_alert = f.alert(f.sensor(other, 100.42, 6.63), other, 100.42, 6.63, t0)
    committed_agency.commit()
    return committed_agency, sensor, detections, alerts, other_alert


def _gdal(tool: str, *args: str, token: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "GDAL_HTTP_HEADERS": f"Authorization: Bearer {token}",
        "CPL_DEBUG": "OFF",
        "GDAL_HTTP_TIMEOUT": "30",
    }
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.skipif(OGRINFO is None, reason="gdal-bin missing: scripts/install-system.sh --test-tools")
def test_ogrinfo_lists_the_collections_and_reads_the_features(api_server, ogc_world, tmp_path):
    agency, sensor, detections, alerts, other_alert = ogc_world
    url = f"OAPIF:{api_server.base_url}/api/v1/ogc"
    listing = _gdal(OGRINFO, "-ro", "-q", url, token=agency.token)
    assert listing.returncode == 0, listing.stderr
    for name in COLLECTIONS:
        assert f": {name}" in listing.stdout, listing.stdout
    summary = _gdal(OGRINFO, "-ro", "-so", url, "detections", token=agency.token)
    assert summary.returncode == 0, summary.stderr
    assert "Geometry: Point" in summary.stdout and "observed_at: DateTime" in summary.stdout, summary.stdout
    # ogr2ogr pages through the next links (page size 10) into GeoJSON; every detection once.
    out = tmp_path / "detections.geojson"
    copy = _gdal(
        OGR2OGR, "-f", "GeoJSON", str(out), url, "detections", "--config", "OAPIF_PAGE_SIZE", "10", token=agency.token
    )
    assert copy.returncode == 0, copy.stderr
    features = json.loads(out.read_text())["features"]
    # GDAL numbers the features itself; the event ids say each detection came exactly once
    # (each alert brought its own detection too).
    expected = len(detections) + len(alerts)
    assert len(features) == expected == len({f["properties"]["event_id"] for f in features})
    assert {f["properties"]["sensor_id"] for f in features} == {sensor}
    assert features[0]["geometry"]["type"] == "Point"
    alerts_out = tmp_path / "alerts.geojson"
    copy = _gdal(OGR2OGR, "-f", "GeoJSON", str(alerts_out), url, "alerts", token=agency.token)
    assert copy.returncode == 0, copy.stderr
    read = json.loads(alerts_out.read_text())["features"]
    assert len(read) == len(alerts) and {f["properties"]["agency_code"] for f in read} == {agency.code}
    # Without the token GDAL gets nothing.
    refused = _gdal(OGRINFO, "-ro", "-q", url, token="not-a-token")
    assert refused.returncode != 0


def test_owslib_reads_collections_items_and_one_item(api_server, ogc_world):
    from owslib.ogcapi.features import Features

    agency, sensor, detections, alerts, other_alert = ogc_world
    api = Features(f"{api_server.base_url}/api/v1/ogc", headers={"Authorization": f"Bearer {agency.token}"})
    assert [c for c in api.feature_collections()] == COLLECTIONS
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in api.conformance()["conformsTo"]
    assert api.collection("alerts")["itemType"] == "feature"
    page = api.collection_items("detections", limit=10)
    # The 25 detections were written before the alerts' own: the first page is their first ten.
    assert page["numberReturned"] == 10 and [f["id"] for f in page["features"]] == sorted(detections)[:10]
    assert any(link["rel"] == "next" for link in page["links"])
    window = api.collection_items(
        "detections",
        datetime_=(now() - timedelta(hours=2, minutes=-10)).isoformat().replace("+00:00", "Z") + "/..",
        limit=100,
    )
    assert 0 < window["numberReturned"] < 25
    boxed = api.collection_items("alerts", bbox=[100.4, 6.6, 100.5, 6.7])
    assert sorted(f["id"] for f in boxed["features"]) == sorted(alerts)
    one = api.collection_item("alerts", str(alerts[0]))
    assert one["id"] == alerts[0] and one["properties"]["sensor_id"] == sensor
    with pytest.raises(RuntimeError, match="feature_not_found"):
        api.collection_item("alerts", str(other_alert))
