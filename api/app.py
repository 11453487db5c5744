"""The Borderwatch HTTP application: ``uvicorn api.app:app``.

``/api/v1`` is the JSON/GeoJSON API (bearer tokens), ``/health`` the liveness check, and
``/login`` and ``/maps/...`` the browser pages (the ``bw_token`` cookie).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Depends, FastAPI

from api import (
    admin,
    audit,
    auth,
    cot,
    deps,
    errors,
    evidence,
    geo,
    health,
    liaison,
    limits,
    live,
    maps,
    ogc,
    patrols,
    reports,
    sharing,
    watchlists,
    webhooks,
)
from api.responses import CompactJSONResponse
from core.permissions import V1

API_PREFIX = V1  # the access table (core.permissions) names routes under it


def _version() -> str:
    try:
        return version("borderwatch")
    except PackageNotFoundError:
        return "0.0.0"


def create_app() -> FastAPI:
    app = FastAPI(
        title="Borderwatch",
        version=_version(),
        summary="Border surveillance: sensor detections geofenced in PostGIS into alerts.",
        description=(
            "Obtain a token from `POST /api/v1/auth/token` (OAuth2 password form) and send it as "
            "`Authorization: Bearer <token>`. Feature endpoints return RFC 7946 GeoJSON "
            "(`application/geo+json`), scoped to the caller's agency."
        ),
        default_response_class=CompactJSONResponse,
    )
    errors.install(app)
    # Outside the routes: a body over the cap is refused before authentication reads a byte of it.
    app.add_middleware(limits.BodyLimit)
    # Every /api/v1 route passes the access table first (core.permissions.ROUTE_ACCESS).
    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(deps.authorise)])
    api.include_router(auth.router)
    api.include_router(geo.router)
    api.include_router(watchlists.router)
    api.include_router(patrols.router)
    api.include_router(live.router)
    api.include_router(ogc.router)
    api.include_router(cot.router)
    api.include_router(webhooks.router)
    api.include_router(audit.router)
    api.include_router(liaison.router)
    api.include_router(reports.router)
    api.include_router(evidence.router)
    api.include_router(sharing.router)
    api.include_router(admin.router)
    app.include_router(api)
    app.include_router(health.router)
    app.include_router(maps.router)
    return app


app = create_app()
