"""Browser pages: the login form (sets the ``bw_token`` cookie), the maps, and the files they load.

Every page and file is served by Borderwatch itself (closed networks): the scripts, style
sheets and fonts from ``maps/static`` (see ``maps.assets``), and a Content-Security-Policy
that lets the browser load nothing from any other origin (a configured tile server excepted).
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta, timezone
from typing import Annotated
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from api import queries
from api.deps import TOKEN_COOKIE, OptionalPrincipalDep, PrincipalDep, SessionDep
from api.errors import InvalidParameter
from api.params import TimeRange, parse_datetime
from core import service
from core.errors import NotAuthenticated, NotFound
from core.security import issue_token
from core.settings import get_settings
from maps.assets import STATIC_DIR, render_page
from maps.cop import build_cop
from maps.coverage import build_coverage
from maps.layers import MAX_ZOOM, MIN_ZOOM
from maps.overview import CENTRE, ZOOM, build_overview
from maps.track import build_track

router = APIRouter(include_in_schema=False)

OVERVIEW_PATH = "/maps/overview"
COP_PATH = "/maps/cop"
TRACK_PATH = "/maps/track"
COVERAGE_PATH = "/maps/coverage"
STATIC_PATH = "/maps/static"
LOGIN_PATH = "/login"
# Where the login form sends the operator.
HOME_PATH = COP_PATH
TRACK_FIX_LIMIT = 10000
COVERAGE_DEFAULT_HOURS = 24
COVERAGE_MAX_HOURS = 24 * 90
# Heat map cells: about 1 km; the query returns at most this many, busiest first.
COVERAGE_CELL_DEG = 0.01
COVERAGE_CELL_LIMIT = 20000
STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".png": "image/png",
    ".woff2": "font/woff2", ".json": "application/json", ".txt": "text/plain; charset=utf-8",
}
RECENT_ALERTS = timedelta(days=7)
MAP_ALERT_LIMIT = 1000
# Degrees; about 100 m, invisible at the overview's zoom and much lighter on the wire.
MAP_SIMPLIFY = 0.001
# The pages carry an agency's data: never cached, never framed.
PAGE_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}

_LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Borderwatch - sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ font-family: system-ui, sans-serif; background: #eceff1; display: flex; justify-content: center;
        align-items: center; height: 100vh; margin: 0; }}
 form {{ background: #fff; padding: 2em; border-radius: 6px; box-shadow: 0 1px 4px #0003; min-width: 18em; }}
 label {{ display: block; margin-top: 1em; }} input {{ width: 100%; padding: .4em; box-sizing: border-box; }}
 button {{ margin-top: 1.5em; width: 100%; padding: .6em; }} .error {{ color: #b71c1c; }}
</style></head>
<body><form method="post" action="{action}">
<h1>Borderwatch</h1>{error}
<label>Username <input name="username" autocomplete="username" required maxlength="64" value="{username}"></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required
 maxlength="1024"></label>
<button type="submit">Sign in</button>
</form></body></html>
"""


def _login_page(*, error: str | None = None, username: str = "", status_code: int = 200) -> HTMLResponse:
    body = _LOGIN_PAGE.format(
        action=LOGIN_PATH,
        error=f'<p class="error">{html.escape(error)}</p>' if error else "",
        username=html.escape(username, quote=True),
    )
    return HTMLResponse(body, status_code=status_code,
                        headers={**PAGE_HEADERS, "Content-Security-Policy": content_security_policy()})


def _to_login() -> RedirectResponse:
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path="/")
    return response


@router.get(LOGIN_PATH, response_class=HTMLResponse)
def login_form(principal: OptionalPrincipalDep):
    if principal is not None:
        return RedirectResponse(HOME_PATH, status_code=303)
    return _login_page()


@router.post(LOGIN_PATH, response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
):
    try:
        principal = service.authenticate(session=session, username=username, password=password)
    except NotAuthenticated:
        return _login_page(error="Invalid username or password.", username=username, status_code=401)
    token = issue_token(principal)
    response = RedirectResponse(HOME_PATH, status_code=303)
    response.set_cookie(
        TOKEN_COOKIE,
        token.token,
        max_age=token.expires_in,
        path="/",
        httponly=True,
        samesite="strict",
        # Secure whenever the page itself came over HTTPS (behind a proxy: run uvicorn with --proxy-headers).
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout():
    return _to_login()


@router.get(OVERVIEW_PATH, response_class=HTMLResponse)
def overview(session: SessionDep, principal: OptionalPrincipalDep):
    if principal is None:
        return _to_login()
    since = datetime.now(timezone.utc) - RECENT_ALERTS
    collections = [
        queries.segments_geojson(session=session, principal=principal, simplify=MAP_SIMPLIFY, limit=10000),
        queries.zones_geojson(session=session, principal=principal, simplify=MAP_SIMPLIFY, limit=10000),
        queries.sensors_geojson(session=session, principal=principal, limit=10000),
        queries.alerts_geojson(
            session=session, principal=principal, time_range=TimeRange(start=since), statuses=["open"],
            limit=MAP_ALERT_LIMIT,
        ),
    ]
    settings = get_settings()
    m = build_overview(*(orjson.loads(fc) for fc in collections), tile_url=settings.map_tile_url,
                       tile_attribution=settings.map_tile_attribution)
    return _map_page(m)


def _tile_origin(tile_url: str) -> str:
    """The CSP source of a tile URL template (``{s}`` subdomains become a wildcard)."""
    parts = urlsplit(tile_url.replace("{s}", "*"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(tile_url: str = "") -> str:
    """Nothing but this origin (folium writes its map set-up as inline scripts and styles)."""
    images = "'self' data: blob:"
    origin = _tile_origin(tile_url)
    if origin:
        images += f" {origin}"
    return ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            f"img-src {images}; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def _map_page(m, status_code: int = 200) -> HTMLResponse:
    headers = {**PAGE_HEADERS, "Content-Security-Policy": content_security_policy(get_settings().map_tile_url)}
    return HTMLResponse(render_page(m), status_code=status_code, headers=headers)


@router.get(COP_PATH, response_class=HTMLResponse)
def cop(
    principal: OptionalPrincipalDep,
    lat: Annotated[float | None, Query(ge=-90, le=90, allow_inf_nan=False)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180, allow_inf_nan=False)] = None,
    zoom: Annotated[int | None, Query(ge=MIN_ZOOM, le=MAX_ZOOM)] = None,
):
    """The common operating picture (optionally centred on ``lat``/``lon`` at ``zoom``): the page
    only; the browser loads every layer from the API."""
    if principal is None:
        return _to_login()
    if (lat is None) != (lon is None):
        raise InvalidParameter("lat and lon go together", parameter="lat" if lat is None else "lon")
    settings = get_settings()
    m = build_cop(agency=principal.agency_code, tile_url=settings.map_tile_url,
                  tile_attribution=settings.map_tile_attribution,
                  centre=(lat, lon) if lat is not None else CENTRE, zoom=zoom or ZOOM)
    return _map_page(m)


@router.get(TRACK_PATH, response_class=HTMLResponse)
def track(
    session: SessionDep,
    principal: OptionalPrincipalDep,
    track_key: Annotated[str, Query(min_length=1, max_length=200)],
):
    """One tracked object's path (the agency's own detections of it), crossings and alerts."""
    if principal is None:
        return _to_login()
    detections = orjson.loads(queries.detections_geojson(
        session=session, principal=principal, track_keys=[track_key], limit=TRACK_FIX_LIMIT))
    if not detections["features"]:
        raise NotFound(f"no detections of track {track_key!r} in your agency's data")
    alerts = orjson.loads(queries.alerts_geojson(
        session=session, principal=principal, track_keys=[track_key], limit=TRACK_FIX_LIMIT))
    settings = get_settings()
    m = build_track(track_key, detections, alerts, agency=principal.agency_code, tile_url=settings.map_tile_url,
                    tile_attribution=settings.map_tile_attribution)
    return _map_page(m)


@router.get(COVERAGE_PATH, response_class=HTMLResponse)
def coverage(
    session: SessionDep,
    principal: OptionalPrincipalDep,
    hours: Annotated[int | None, Query(ge=1, le=COVERAGE_MAX_HOURS)] = None,
    start: Annotated[str | None, Query()] = None,
    end: Annotated[str | None, Query()] = None,
):
    """Heat map of the agency's detections over a period: ``hours`` back from now, or ``start``/``end``."""
    if principal is None:
        return _to_login()
    now = datetime.now(timezone.utc)
    end_at = parse_datetime(end, "end") or now
    start_at = parse_datetime(start, "start") or end_at - timedelta(hours=hours or COVERAGE_DEFAULT_HOURS)
    if start_at >= end_at:
        raise InvalidParameter("start must be before end", parameter="start")
    if end_at - start_at > timedelta(hours=COVERAGE_MAX_HOURS):
        raise InvalidParameter(f"the period may span at most {COVERAGE_MAX_HOURS} hours", parameter="start")
    cells = queries.detection_density(
        session=session, principal=principal, time_range=TimeRange(start=start_at, end=end_at),
        cell_deg=COVERAGE_CELL_DEG, limit=COVERAGE_CELL_LIMIT)
    settings = get_settings()
    m = build_coverage(cells, start=start_at, end=end_at, agency=principal.agency_code,
                       tile_url=settings.map_tile_url, tile_attribution=settings.map_tile_attribution)
    return _map_page(m)


@router.get(STATIC_PATH + "/{path:path}")
def static_file(path: str, principal: PrincipalDep):
    """The pages' scripts, style sheets, fonts and images (signed-in operators only)."""
    root = STATIC_DIR.resolve()
    file = (root / path).resolve()
    if not file.is_relative_to(root) or not file.is_file() or file.suffix not in STATIC_TYPES:
        raise NotFound(f"no such file: {path}")
    return FileResponse(file, media_type=STATIC_TYPES[file.suffix], headers={
        "Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"})
