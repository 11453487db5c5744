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
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

import features.alerts
import features.detections
import features.segments
import features.sensors
import features.zones
from accounts import service
from api.auth import sign_in_async
from api.deps import (
    CSRF_COOKIE,
    TOKEN_COOKIE,
    OptionalPrincipalDep,
    PrincipalDep,
    SessionDep,
    SessionFactoryDep,
    csrf_token,
)
from api.errors import CrossSiteRequest, InvalidParameter
from api.params import TimeRange, parse_datetime
from core.errors import BorderwatchError, NotAuthenticated, NotAuthorised, NotFound, ServiceBusy, TooManyRequests
from core.permissions import MAP_PAGE_READERS, require_role
from core.security import form_token, form_token_valid, issue_token
from core.settings import get_settings
from core.vocabulary import INCIDENT_CATEGORIES
from features import density
from features.geojson import collection
from maps.assets import STATIC_DIR, render_page
from maps.cop import build_cop
from maps.coverage import build_coverage
from maps.incident import build_incident
from maps.layers import MAX_ZOOM, MIN_ZOOM
from maps.overview import CENTRE, ZOOM, build_overview
from maps.track import build_track
from patrols import dispatch, incidents, positions, units
from patrols import schemas as patrol_schemas
from patrols import taskings as patrol_taskings
from patrols.evidence import service as evidence_service
from patrols.models import INCIDENT_PRIORITIES

OVERVIEW_PATH = "/maps/overview"
COP_PATH = "/maps/cop"
TRACK_PATH = "/maps/track"
COVERAGE_PATH = "/maps/coverage"
INCIDENT_PATH = "/maps/incident"
PROMOTE_PATH = "/maps/promote"
INCIDENT_CANDIDATES = 5
UNIT_TRACK_LIMIT = 2000
# The tasked unit's track starts this long before it was tasked.
TRACK_LEAD = timedelta(minutes=30)
STATIC_PATH = "/maps/static"
LOGIN_PATH = "/login"
# Where the login form sends the operator.
HOME_PATH = COP_PATH
TRACK_FIX_LIMIT = 10000


def _page_access(request: Request, principal: OptionalPrincipalDep) -> None:
    """Map pages are for the control room (``core.permissions.MAP_PAGE_READERS``); signing in and out
    and the static assets are for everyone, and a caller without a token is sent to sign in."""
    path = request.url.path
    if principal is None or path in (LOGIN_PATH, "/logout") or path.startswith(STATIC_PATH + "/"):
        return
    require_role(principal, MAP_PAGE_READERS, "open the map pages")


router = APIRouter(include_in_schema=False, dependencies=[Depends(_page_access)])
COVERAGE_DEFAULT_HOURS = 24
COVERAGE_MAX_HOURS = 24 * 90
# Heat map cells: about 1 km; the query returns at most this many, busiest first.
COVERAGE_CELL_DEG = 0.01
COVERAGE_CELL_LIMIT = 20000
STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".woff2": "font/woff2",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
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
    return HTMLResponse(
        body, status_code=status_code, headers={**PAGE_HEADERS, "Content-Security-Policy": content_security_policy()}
    )


def _to_login() -> RedirectResponse:
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get(LOGIN_PATH, response_class=HTMLResponse)
def login_form(principal: OptionalPrincipalDep):
    if principal is not None:
        return RedirectResponse(HOME_PATH, status_code=303)
    return _login_page()


@router.post(LOGIN_PATH, response_class=HTMLResponse)
async def login(
    request: Request,
    session: SessionDep,
    session_factory: SessionFactoryDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
):
    try:
        principal = await sign_in_async(
            request=request, session=session, session_factory=session_factory, username=username, password=password
        )
    except NotAuthenticated:
        return _login_page(error="Invalid username or password.", username=username, status_code=401)
    except (TooManyRequests, ServiceBusy) as exc:
        page = _login_page(
            error=f"Too many sign-in attempts; try again in {exc.retry_after} s.",
            username=username,
            status_code=exc.status_code,
        )
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    token = issue_token(principal)
    response = RedirectResponse(HOME_PATH, status_code=303)
    # Secure whenever the page came over HTTPS (behind a TLS proxy: when uvicorn trusts the proxy's
    # X-Forwarded-Proto, see BW_FORWARDED_ALLOW_IPS), or always with BW_COOKIE_SECURE.
    secure = request.url.scheme == "https" or get_settings().cookie_secure
    response.set_cookie(
        TOKEN_COOKIE, token.token, max_age=token.expires_in, path="/", httponly=True, samesite="strict", secure=secure
    )
    # Readable by the pages' scripts, which send it back in the X-CSRF-Token header (api/deps.py).
    response.set_cookie(
        CSRF_COOKIE,
        csrf_token(principal),
        max_age=token.expires_in,
        path="/",
        httponly=False,
        samesite="strict",
        secure=secure,
    )
    return response


@router.post("/logout")
def logout(session: SessionDep, principal: OptionalPrincipalDep):
    # The cookie is SameSite=strict: another site's form cannot sign the user out.
    if principal is not None:
        service.revoke_tokens(session=session, username=principal.username, actor=principal.username)
    return _to_login()


@router.get(OVERVIEW_PATH, response_class=HTMLResponse)
def overview(session: SessionDep, principal: OptionalPrincipalDep):
    if principal is None:
        return _to_login()
    since = datetime.now(timezone.utc) - RECENT_ALERTS
    collections = [
        collection(features.segments.LAYER, session=session, principal=principal, simplify=MAP_SIMPLIFY, limit=10000),
        collection(features.zones.LAYER, session=session, principal=principal, simplify=MAP_SIMPLIFY, limit=10000),
        collection(features.sensors.LAYER, session=session, principal=principal, limit=10000),
        collection(
            features.alerts.LAYER,
            session=session,
            principal=principal,
            time_range=TimeRange(start=since),
            statuses=["open"],
            limit=MAP_ALERT_LIMIT,
        ),
    ]
    settings = get_settings()
    m = build_overview(
        *(orjson.loads(fc) for fc in collections),
        tile_url=settings.map_tile_url,
        tile_attribution=settings.map_tile_attribution,
    )
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
    return (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        f"img-src {images}; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


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
    m = build_cop(
        agency=principal.agency_code,
        tile_url=settings.map_tile_url,
        tile_attribution=settings.map_tile_attribution,
        centre=(lat, lon) if lat is not None else CENTRE,
        zoom=zoom or ZOOM,
    )
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
    detections = orjson.loads(
        collection(
            features.detections.LAYER,
            session=session,
            principal=principal,
            track_keys=[track_key],
            limit=TRACK_FIX_LIMIT,
        )
    )
    if not detections["features"]:
        raise NotFound(f"no detections of track {track_key!r} in your agency's data")
    alerts = orjson.loads(
        collection(
            features.alerts.LAYER, session=session, principal=principal, track_keys=[track_key], limit=TRACK_FIX_LIMIT
        )
    )
    settings = get_settings()
    m = build_track(
        track_key,
        detections,
        alerts,
        agency=principal.agency_code,
        tile_url=settings.map_tile_url,
        tile_attribution=settings.map_tile_attribution,
    )
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
    cells = density.cells(
        features.detections.LAYER,
        session=session,
        principal=principal,
        time_range=TimeRange(start=start_at, end=end_at),
        cell_deg=COVERAGE_CELL_DEG,
        limit=COVERAGE_CELL_LIMIT,
    )
    settings = get_settings()
    m = build_coverage(
        cells,
        start=start_at,
        end=end_at,
        agency=principal.agency_code,
        tile_url=settings.map_tile_url,
        tile_attribution=settings.map_tile_attribution,
    )
    return _map_page(m)


@router.get(STATIC_PATH + "/{path:path}")
def static_file(path: str, principal: PrincipalDep):
    """The pages' scripts, style sheets, fonts and images (signed-in operators only)."""
    root = STATIC_DIR.resolve()
    file = (root / path).resolve()
    if not file.is_relative_to(root) or not file.is_file() or file.suffix not in STATIC_TYPES:
        raise NotFound(f"no such file: {path}")
    return FileResponse(
        file,
        media_type=STATIC_TYPES[file.suffix],
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get(INCIDENT_PATH, response_class=HTMLResponse)
def incident(
    session: SessionDep,
    principal: OptionalPrincipalDep,
    id: Annotated[int, Query(ge=1, le=2**62)],
):
    """One incident: its alerts, the recommended units with their ETA, the tasked unit's track."""
    if principal is None:
        return _to_login()
    found = incidents.get_incident(session=session, principal=principal, incident_id=id)
    item = found.model_dump(mode="json")
    alerts = (
        orjson.loads(
            collection(features.alerts.LAYER, session=session, principal=principal, ids=found.alert_ids, limit=1000)
        )
        if found.alert_ids
        else None
    )
    candidates, note = [], ""
    if found.status in incidents.OPEN_INCIDENT:
        try:
            recommendation = dispatch.recommend(
                session=session, principal=principal, incident_id=id, limit=INCIDENT_CANDIDATES
            )
            candidates = [c.model_dump(mode="json") for c in recommendation.units]
            if not candidates:
                note = "no eligible unit available"
        except (NotFound, NotAuthorised) as exc:
            # A partner's incident, or a role that may not dispatch: the map shows the rest.
            note = f"no recommendation ({exc.message})"
    taskings = patrol_taskings.incident_taskings(session=session, principal=principal, incident_id=id)
    # The open tasking, else the latest one.
    tasking = next(
        (t for t in reversed(taskings) if t.status in patrol_taskings.OPEN_TASKING), taskings[-1] if taskings else None
    )
    tasked_unit, track = None, None
    if tasking is not None:
        try:
            unit = units.get_unit(session=session, principal=principal, unit_id=tasking.unit_id)
            track = positions.unit_track_geojson(
                session=session,
                principal=principal,
                unit_id=unit.id,
                start=tasking.created_at - TRACK_LEAD,
                end=None,
                limit=UNIT_TRACK_LIMIT,
            )
            tasked_unit = {**unit.model_dump(mode="json"), "tasking_status": tasking.status}
            track = orjson.loads(orjson.dumps(track))
        except NotFound:
            tasked_unit = None
    evidence = [
        {**e.model_dump(mode="json"), "chain_verified": verified}
        for e, verified in evidence_service.incident_evidence(session=session, principal=principal, incident_id=id)
    ]
    settings = get_settings()
    m = build_incident(
        item,
        alerts,
        candidates,
        agency=principal.agency_code,
        recommendation_note=note,
        tasked_unit=tasked_unit,
        track_fc=track,
        evidence=evidence,
        tile_url=settings.map_tile_url,
        tile_attribution=settings.map_tile_attribution,
    )
    return _map_page(m)


# -- promoting an alert to an incident: a form on a cookie-authenticated page ------------------
_PROMOTE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Borderwatch - promote alert {alert_id}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ font-family: system-ui, sans-serif; background: #eceff1; display: flex; justify-content: center;
        margin: 0; padding: 2em; }}
 form {{ background: #fff; padding: 2em; border-radius: 6px; box-shadow: 0 1px 4px #0003; min-width: 24em; }}
 label {{ display: block; margin-top: 1em; }} select, input, textarea {{ width: 100%; padding: .4em;
        box-sizing: border-box; }}
 button {{ margin-top: 1.5em; padding: .6em 1.2em; }} .error {{ color: #b71c1c; }} th {{ text-align: left;
        padding-right: 1em; }}
</style></head>
<body><form method="post" action="{action}" class="bw-form">
<h1>Promote alert {alert_id} to an incident</h1>{error}
<table>{facts}</table>
<input type="hidden" name="alert_id" value="{alert_id}">
<input type="hidden" name="form_token" value="{token}">
<label>Category <select name="category">{categories}</select></label>
<label>Priority <select name="priority">{priorities}</select></label>
<label>Note <textarea name="note" maxlength="2000" rows="3"></textarea></label>
<button type="submit">Open the incident</button> <a href="{back}">Back to the COP</a>
</form></body></html>
"""
_SEVERITY_PRIORITY = {"critical": "critical", "high": "high", "medium": "medium", "low": "low", "info": "low"}


def _promote_purpose(alert_id: int) -> str:
    return f"promote-alert:{alert_id}"


def _options(values, selected: str) -> str:
    return "".join(
        f'<option value="{v}"{" selected" if v == selected else ""}>{v.replace("_", " ")}</option>' for v in values
    )


def _promote_page(
    session, principal, alert_id: int, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    found = orjson.loads(
        collection(features.alerts.LAYER, session=session, principal=principal, ids=[alert_id], own_only=True, limit=1)
    )
    if not found["features"]:
        raise NotFound(f"alert {alert_id} does not exist or is not {principal.agency_code}'s")
    p = found["features"][0]["properties"]
    rows = [
        ("Alert", p.get("title")),
        ("Kind", p.get("kind")),
        ("Severity", p.get("severity")),
        ("Status", p.get("status")),
        ("Observed", p.get("observed_at")),
        ("Sensor", p.get("sensor_id")),
        ("Direction", f"{p.get('from_state')} → {p.get('to_state')}" if p.get("from_state") else None),
    ]
    facts = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows if v)
    body = _PROMOTE_PAGE.format(
        action=PROMOTE_PATH,
        alert_id=alert_id,
        token=form_token(principal, _promote_purpose(alert_id)),
        error=f'<p class="error">{html.escape(error)}</p>' if error else "",
        facts=facts,
        categories=_options(INCIDENT_CATEGORIES, "other"),
        priorities=_options(INCIDENT_PRIORITIES, _SEVERITY_PRIORITY.get(p.get("severity"), "medium")),
        back=COP_PATH,
    )
    # Referrer-Policy same-origin: the browser then sends this page's Origin with the form.
    return HTMLResponse(
        body,
        status_code=status_code,
        headers={
            **PAGE_HEADERS,
            "Referrer-Policy": "same-origin",
            "Content-Security-Policy": content_security_policy(),
        },
    )


@router.get(PROMOTE_PATH, response_class=HTMLResponse)
def promote_form(session: SessionDep, principal: OptionalPrincipalDep, alert_id: Annotated[int, Query(ge=1, le=2**62)]):
    """The form that opens an incident from one of the agency's alerts."""
    if principal is None:
        return _to_login()
    return _promote_page(session, principal, alert_id)


def _require_same_origin(request: Request) -> None:
    """Only a form of this site may post: the browser's ``Origin`` (when it names one) must be this
    server, and its ``Sec-Fetch-Site`` (when sent) ``same-origin``; a request with neither is refused."""
    own = f"{request.url.scheme}://{request.url.netloc}"
    origin = request.headers.get("origin")
    fetch_site = request.headers.get("sec-fetch-site")
    if origin not in (None, "null") and origin != own:
        raise CrossSiteRequest(f"a form from {origin} may not post here")
    if fetch_site is not None and fetch_site != "same-origin":
        raise CrossSiteRequest(f"a form from another site ({fetch_site}) may not post here")
    if origin in (None, "null") and fetch_site is None:
        raise CrossSiteRequest("the request does not say it comes from this site (no Origin, no Sec-Fetch-Site)")


@router.post(PROMOTE_PATH, response_class=HTMLResponse)
def promote(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    alert_id: Annotated[int, Form(ge=1, le=2**62)],
    form_token_: Annotated[str, Form(alias="form_token", max_length=128)],
    category: Annotated[str, Form(max_length=32)] = "other",
    priority: Annotated[str, Form(max_length=16)] = "medium",
    note: Annotated[str, Form(max_length=2000)] = "",
):
    """Open the incident (same-origin form with a token bound to the user and the alert), then show it."""
    _require_same_origin(request)
    if not form_token_valid(principal, _promote_purpose(alert_id), form_token_):
        raise CrossSiteRequest("the form token is not valid for this user and alert; reload the form")
    try:
        incident_in = patrol_schemas.IncidentCreate(
            alert_ids=[alert_id], category=category, priority=priority, note=note.strip() or None
        )
        created = incidents.create_incident(session=session, principal=principal, incident_in=incident_in)
    except (BorderwatchError, ValueError) as exc:
        session.rollback()
        message = getattr(exc, "message", None) or str(exc)
        status = getattr(exc, "status_code", 422)
        return _promote_page(session, principal, alert_id, error=message, status_code=status)
    return RedirectResponse(f"{INCIDENT_PATH}?id={created.id}", status_code=303)
