"""Request dependencies: one database transaction per request, and who is asking."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.orm import Session

from accounts.service import resolve_principal
from api.errors import CrossSiteRequest
from broker import service as broker
from core.db import session_scope
from core.errors import ConfigurationError, NotAuthenticated
from core.permissions import AGENCY, V1, is_public, route_scope
from core.security import Principal, form_token, form_token_valid
from core.settings import get_settings
from patrols import field

TOKEN_COOKIE = "bw_token"
# The CSRF token of a cookie-authenticated session: set beside the token cookie at sign-in, readable by
# the pages' scripts (not HttpOnly), and sent back in the CSRF_HEADER with every state-changing call.
CSRF_COOKIE = "bw_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_PURPOSE = "api"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
API_PATH = "/api/"

_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    scheme_name="bearerAuth",
    description="An access token from POST /api/v1/auth/token.",
)


def get_session() -> Iterator[Session]:
    """The request's one transaction: committed when the route returns, rolled back if it raises."""
    with session_scope() as session:
        yield session


# scope="function": the commit happens before the response is sent, so a failed commit is a 5xx.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def _presented_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    # The header wins; the cookie is what the browser map pages carry.
    if credentials is not None:
        return credentials.credentials
    return request.cookies.get(TOKEN_COOKIE) or None


def current_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated caller; 401 with ``WWW-Authenticate: Bearer`` otherwise. An API call that
    changes something on the strength of the cookie alone must also carry the CSRF token (403)."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        principal = resolve_principal(session=session, token=_presented_token(request, credentials))
    if credentials is None:
        require_csrf_token(request, principal)
    return principal


def csrf_token(principal: Principal) -> str:
    """The CSRF token of ``principal``'s cookie sessions (bound to the user, not guessable without the key)."""
    return form_token(principal, CSRF_PURPOSE)


def require_csrf_token(request: Request, principal: Principal) -> None:
    """Refuse (``CrossSiteRequest``, 403) a cookie-authenticated state-changing API call without the
    CSRF header: the browser sends the cookie with another site's requests too, but only a page of
    this site can read the CSRF cookie to put its value in the header. Bearer tokens need none;
    the map's own forms carry form tokens of their own."""
    if request.method in SAFE_METHODS or not request.url.path.startswith(API_PATH):
        return
    presented = request.headers.get(CSRF_HEADER)
    if not presented:
        raise CrossSiteRequest(
            f"a {request.method} authenticated by the session cookie needs the {CSRF_HEADER} header "
            f"(the value of the {CSRF_COOKIE} cookie); API clients send Authorization: Bearer instead"
        )
    if not form_token_valid(principal, CSRF_PURPOSE, presented):
        raise CrossSiteRequest(f"the {CSRF_HEADER} header is not valid for this user; sign in again")


def _header_token(request: Request) -> str | None:
    # As HTTPBearer reads it, without adding a security requirement to every route's OpenAPI entry.
    scheme, credentials = get_authorization_scheme_param(request.headers.get("Authorization"))
    if scheme.lower() == "bearer" and credentials:
        return credentials
    return request.cookies.get(TOKEN_COOKIE) or None


def route_template(request: Request) -> str:
    """The matched route's path template as the OpenAPI document has it (``/api/v1/units/{unit_id}``).
    The route may know its path without the prefixes of the routers that include it; every route
    this is asked about lives under ``/api/v1``."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return request.url.path
    return path if path.startswith(V1 + "/") else V1 + path


def authorise(request: Request, session: SessionDep) -> None:
    """The access table (``core.permissions.ROUTE_ACCESS``) applied to every ``/api/v1`` request, before
    the route runs: 401 without a valid token, 403 with the reason for a role the route's entry does
    not name (or a route without one), and for a patrol unit device, 403 for a path naming what is not
    its own (``patrols.field``). The caller is kept for the route's own ``PrincipalDep``."""
    template = route_template(request)
    if is_public(request.method, template):
        return
    principal = resolve_principal(session=session, token=_header_token(request))
    request.state.principal = principal
    scope = route_scope(request.method, template, principal.role)
    if scope != AGENCY:
        field.check_path(session, principal, scope, request.path_params)


def optional_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    """The caller if authenticated, else None (browser pages redirect to the login form)."""
    try:
        return resolve_principal(session=session, token=_presented_token(request, credentials))
    except NotAuthenticated:
        return None


def presented_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    """The token the caller presented (header or cookie), for what looks at it again later (live feeds)."""
    return _presented_token(request, credentials)


def client_address(request: Request) -> str | None:
    """The caller's address as the server sees it (behind a proxy: uvicorn --proxy-headers with
    --forwarded-allow-ips naming the proxy, or every caller has the proxy's address)."""
    return request.client.host if request.client else None


PrincipalDep = Annotated[Principal, Depends(current_principal)]
PresentedTokenDep = Annotated[str | None, Depends(presented_token)]
OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]


def get_session_factory() -> Callable[[], AbstractContextManager[Session]]:
    """Opens transactions outside the request's own: work after the response (broker files, live feeds)."""
    return session_scope


SessionFactoryDep = Annotated[Callable[[], AbstractContextManager[Session]], Depends(get_session_factory)]


def sync_broker(session_factory: Callable[[], AbstractContextManager[Session]]) -> None:
    """Rewrite the broker's files from the committed registry (a background task, after the commit):
    a broker that cannot be updated is logged, and the operator runs ``borderwatch gateway sync-broker``."""
    try:
        with session_factory() as session:
            broker.sync_broker(session=session, settings=get_settings())
    except ConfigurationError as exc:
        logging.getLogger("borderwatch.api").warning(
            "broker not updated (%s); run `borderwatch gateway sync-broker`", exc.message
        )
