"""Browser pages: the login form (sets the ``bw_token`` cookie) and the overview map."""

from __future__ import annotations

import html
from datetime import datetime, timedelta, timezone
from typing import Annotated

import orjson
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api import queries
from api.deps import TOKEN_COOKIE, OptionalPrincipalDep, SessionDep
from api.params import TimeRange
from core import service
from core.errors import NotAuthenticated
from core.security import issue_token
from maps.overview import build_overview

router = APIRouter(include_in_schema=False)

OVERVIEW_PATH = "/maps/overview"
LOGIN_PATH = "/login"
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
    return HTMLResponse(body, status_code=status_code, headers=PAGE_HEADERS)


def _to_login() -> RedirectResponse:
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path="/")
    return response


@router.get(LOGIN_PATH, response_class=HTMLResponse)
def login_form(principal: OptionalPrincipalDep):
    if principal is not None:
        return RedirectResponse(OVERVIEW_PATH, status_code=303)
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
    response = RedirectResponse(OVERVIEW_PATH, status_code=303)
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
    m = build_overview(*(orjson.loads(fc) for fc in collections))
    return HTMLResponse(m.get_root().render(), headers=PAGE_HEADERS)
