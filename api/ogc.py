"""OGC API - Features routes under ``/api/v1/ogc``: landing page, conformance, collections, items.

GDAL (``OAPIF:``), QGIS and OWSLib open the landing page and follow its links. Every route
needs the bearer token like the rest of the API; the items are scoped to the caller's agency.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Path, Query, Request

from api import ogc_features as ogc
from api.deps import PrincipalDep, SessionDep
from api.responses import CompactJSONResponse, GeoJSONResponse
from api.schemas import ErrorOut
from features.layer import FeatureLayer

router = APIRouter(
    prefix="/ogc",
    tags=["ogc api features"],
    responses={400: {"model": ErrorOut}, 401: {"model": ErrorOut}, 404: {"model": ErrorOut}},
)

JSON = "application/json"
GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
ITEM_PARAMS = {"bbox", "datetime", "limit", "cursor", "f"}


def _link(href: str, rel: str, media_type: str, title: str) -> dict:
    return {"href": href, "rel": rel, "type": media_type, "title": title}


def _base(request: Request) -> str:
    return str(request.url_for("ogc_landing")).rstrip("/")


def _collection_doc(request: Request, spec: FeatureLayer) -> dict:
    base = f"{_base(request)}/collections/{spec.name}"
    return {
        "id": spec.name,
        "title": spec.title,
        "description": spec.description,
        "itemType": "feature",
        "crs": [ogc.CRS84],
        "extent": {
            "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]], "crs": ogc.CRS84},
            "temporal": {"interval": [[None, None]]},
        },
        "links": [
            _link(base, "self", JSON, f"{spec.title}: this document"),
            _link(f"{base}/items", "items", GEOJSON, f"{spec.title} as GeoJSON"),
        ],
    }


@router.get("", name="ogc_landing", summary="Landing page (OGC API - Features)")
def landing(request: Request, principal: PrincipalDep) -> CompactJSONResponse:
    base = _base(request)
    return CompactJSONResponse(
        {
            "title": "Borderwatch OGC API - Features",
            "description": f"Border segments, zones, sensors, detections, alerts, incidents and patrol units "
            f"visible to {principal.agency_code}.",
            "links": [
                _link(base, "self", JSON, "This document"),
                _link(str(request.url_for("openapi")), "service-desc", OPENAPI, "The API definition"),
                _link(str(request.url_for("swagger_ui_html")), "service-doc", "text/html", "The API documentation"),
                _link(f"{base}/conformance", "conformance", JSON, "Conformance classes implemented"),
                _link(f"{base}/collections", "data", JSON, "The feature collections"),
            ],
        }
    )


@router.get("/conformance", summary="Conformance classes")
def conformance(principal: PrincipalDep) -> CompactJSONResponse:
    return CompactJSONResponse({"conformsTo": ogc.CONFORMANCE})


@router.get("/collections", summary="The feature collections")
def collections(request: Request, principal: PrincipalDep) -> CompactJSONResponse:
    base = f"{_base(request)}/collections"
    return CompactJSONResponse(
        {
            "links": [_link(base, "self", JSON, "The feature collections")],
            "collections": [_collection_doc(request, spec) for spec in ogc.COLLECTIONS.values()],
        }
    )


@router.get("/collections/{collection_id}", name="ogc_collection", summary="One feature collection")
def collection(
    request: Request, principal: PrincipalDep, collection_id: Annotated[str, Path(max_length=32)]
) -> CompactJSONResponse:
    return CompactJSONResponse(_collection_doc(request, ogc.collection(collection_id)))


@router.get(
    "/collections/{collection_id}/items",
    name="ogc_items",
    response_class=GeoJSONResponse,
    summary="Features of a collection, in id order, one keyset page at a time",
    responses={200: {"content": {GEOJSON: {"schema": {"type": "object"}}}}},
)
def items(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    collection_id: Annotated[str, Path(max_length=32)],
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (CRS84)")] = None,
    datetime: Annotated[
        str | None, Query(description="RFC 3339 instant, or interval start/end with '..' for an open end")
    ] = None,
    limit: Annotated[
        str | None, Query(description=f"Features per page, 1..{ogc.MAX_LIMIT} (default {ogc.DEFAULT_LIMIT})")
    ] = None,
    cursor: Annotated[str | None, Query(description="From a next link: where the page starts")] = None,
    f: Annotated[str | None, Query(description="Only 'json' / 'geojson'")] = None,
) -> GeoJSONResponse:
    spec = ogc.collection(collection_id)
    unknown = sorted(set(request.query_params) - ITEM_PARAMS)
    if unknown:
        raise ogc.InvalidOgcParameter(f"unknown query parameters: {', '.join(unknown)}", parameters=unknown)
    if f not in (None, "json", "geojson"):
        raise ogc.InvalidOgcParameter("f must be json or geojson", parameter="f")
    page_limit = ogc.parse_limit(limit)
    page = ogc.items(
        session=session,
        principal=principal,
        spec=spec,
        bbox=ogc.parse_ogc_bbox(bbox),
        interval=ogc.parse_interval(datetime),
        limit=page_limit,
        after=ogc.decode_cursor(spec, cursor),
    )
    here = str(request.url_for("ogc_items", collection_id=spec.name))
    query = {k: v for k, v in request.query_params.items() if k not in ("cursor", "limit")}
    query["limit"] = str(page_limit)
    links = [
        _link(str(request.url), "self", GEOJSON, "This page"),
        _link(str(request.url_for("ogc_collection", collection_id=spec.name)), "collection", JSON, spec.title),
    ]
    if page.next_cursor:
        links.append(
            _link(f"{here}?{urlencode({**query, 'cursor': page.next_cursor})}", "next", GEOJSON, "The next page")
        )
    head = orjson.dumps(
        {
            "type": "FeatureCollection",
            "timeStamp": dt.datetime.now(dt.timezone.utc),
            "numberReturned": len(page.features),
            "links": links,
        },
        option=orjson.OPT_UTC_Z,
    )
    # The features are already serialised by PostGIS: splice them in rather than parse them again.
    body = head[:-1] + b',"features":[' + ",".join(page.features).encode() + b"]}"
    return GeoJSONResponse(body)


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    response_class=GeoJSONResponse,
    summary="One feature",
    responses={200: {"content": {GEOJSON: {"schema": {"type": "object"}}}}},
)
def feature(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    collection_id: Annotated[str, Path(max_length=32)],
    feature_id: Annotated[str, Path(max_length=64)],
) -> GeoJSONResponse:
    spec = ogc.collection(collection_id)
    body = orjson.loads(ogc.item(session=session, principal=principal, spec=spec, feature_id=feature_id))
    body["links"] = [
        _link(str(request.url), "self", GEOJSON, "This feature"),
        _link(str(request.url_for("ogc_collection", collection_id=spec.name)), "collection", JSON, spec.title),
    ]
    return GeoJSONResponse(orjson.dumps(body))
