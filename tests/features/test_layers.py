"""The layer descriptions themselves: every format's SQL is built from them, and so is a vector tile
(``ST_AsMVT`` over the geometry and the scoped conditions), which carries only what the caller's
agency may see."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import text

import features
from core.security import Principal
from features import geojson, pages
from features.layer import FeatureLayer
from tests.factories import now


def test_the_catalogue_and_its_ogc_collections():
    assert list(features.LAYERS) == [
        "states",
        "segments",
        "zones",
        "sensors",
        "detections",
        "alerts",
        "incidents",
        "units",
        "patrol_routes",
        "handover_points",
    ]
    assert [n for n, layer in features.LAYERS.items() if layer.ogc] == [
        "segments",
        "zones",
        "sensors",
        "detections",
        "alerts",
        "incidents",
        "units",
    ]
    for layer in features.LAYERS.values():
        assert set(layer.geojson_properties or layer.properties) <= set(layer.properties)
        assert set(layer.ogc_properties or layer.properties) <= set(layer.properties)


def test_a_property_must_be_described_before_a_format_names_it():
    with pytest.raises(ValueError, match="not described"):
        FeatureLayer(
            name="x",
            title="X",
            description="",
            source="t x",
            key="x.id",
            geometry="x.geom",
            properties={"a": "x.a"},
            ogc=True,
            ogc_properties=("a", "b"),
        )


def test_a_filter_the_layer_does_not_declare_is_refused(db):
    with pytest.raises(TypeError, match="no filter severities"):
        geojson.collection(
            features.LAYERS["zones"], session=db, principal=Principal("x", "TH-X", "operator"), severities=["high"]
        )


@pytest.mark.parametrize("name", list(features.LAYERS))
def test_every_layer_reads_as_geojson(db, name):
    body = geojson.collection(
        features.LAYERS[name], session=db, principal=Principal("x", "TH-NONE", "operator"), limit=1
    )
    assert body.startswith('{"type" : "FeatureCollection"')


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


def _vector_tile(db, layer: FeatureLayer, principal: Principal, z: int, x: int, y: int) -> tuple[bytes, list]:
    """What a tile endpoint would run: the layer's geometry and its scoped conditions, nothing else."""
    where = layer.scoped(principal, z=z, x=x, y=y, layer=layer.name)
    where.add(f"{layer.geometry} && ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326)")
    tile_rows = f"""
        SELECT {layer.key} AS fid, ST_AsMVTGeom(ST_Transform({layer.geometry}, 3857), ST_TileEnvelope(:z, :x, :y))
               AS geom
        FROM {layer.source}
        WHERE {where.sql()}
    """
    tile = db.execute(
        text(f"SELECT ST_AsMVT(t, :layer, 4096, 'geom', 'fid') FROM ({tile_rows}) t"), where.params
    ).scalar_one()
    ids = db.execute(text(f"SELECT fid FROM ({tile_rows}) t ORDER BY fid"), where.params).scalars().all()
    return bytes(tile), ids


def test_a_vector_tile_built_from_the_description_keeps_the_scope(db, factory):
    a, b = factory.agency(), factory.agency()
    sa, sb = factory.sensor(a, 100.42, 6.63), factory.sensor(b, 100.4201, 6.6301)
    mine = factory.alert(sa, a, 100.42, 6.63, now())
    theirs = factory.alert(sb, b, 100.4201, 6.6301, now())
    x, y = _tile(100.42, 6.63, 12)
    layer = features.LAYERS["alerts"]
    tile, ids = _vector_tile(db, layer, Principal("x", a, "operator"), 12, x, y)
    assert ids == [mine] and len(tile) > 0
    assert _vector_tile(db, layer, Principal("y", b, "operator"), 12, x, y)[1] == [theirs]
    # The same layer's OGC item agrees on who sees what.
    assert pages.item(layer, session=db, principal=Principal("x", a, "operator"), feature_id=str(mine), via="test")
    with pytest.raises(pages.FeatureNotFound):
        pages.item(layer, session=db, principal=Principal("x", a, "operator"), feature_id=str(theirs), via="test")
