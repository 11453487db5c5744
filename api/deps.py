"""Request dependencies: one database transaction per request, and who is asking."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from accounts.service import resolve_principal
from broker import service as broker
from core.db import session_scope
from core.errors import ConfigurationError, NotAuthenticated
from core.security import Principal
from core.settings import get_settings

TOKEN_COOKIE = "bw_token"

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
    """The authenticated caller; 401 with ``WWW-Authenticate: Bearer`` otherwise."""
    return resolve_principal(session=session, token=_presented_token(request, credentials))


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
