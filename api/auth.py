"""Signing in: access tokens for API clients, signing out, and who the caller is.

Every sign-in (this token endpoint and the ``/login`` form) goes through :func:`sign_in`: refused
with 429 while the account or the client address is backing off after failed attempts, and
checked in one of the process's few password-check slots (503 when none frees up in time)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy.orm import Session

from accounts import service, throttle
from api.deps import CSRF_COOKIE, TOKEN_COOKIE, PrincipalDep, SessionDep, SessionFactoryDep, client_address
from api.schemas import ErrorOut, PrincipalOut, TokenOut
from audit.service import actor_of
from core.errors import ServiceBusy
from core.security import InvalidCredentials, Principal, issue_token, password_check_slot
from core.settings import get_settings

router = APIRouter(prefix="/auth", tags=["auth"])


def sign_in(
    *,
    request: Request,
    session: Session,
    session_factory: Callable[[], AbstractContextManager[Session]],
    username: str,
    password: str,
) -> Principal:
    """The principal of a right username and password; ``InvalidCredentials`` (401), ``LoginThrottled``
    (429) or ``ServiceBusy`` (503) otherwise. A failure is recorded in a transaction of its own."""
    keys = throttle.keys_for(username=username, address=client_address(request))
    # A blocked attempt is refused before it waits for a slot, holding no database connection.
    with session_factory() as s:
        throttle.check(session=s, keys=keys)
    failed: InvalidCredentials | None = None
    with password_check_slot():
        # Again: the account may have been blocked while this attempt waited its turn.
        throttle.check(session=session, keys=keys)
        try:
            principal = service.authenticate(session=session, username=username, password=password)
        except InvalidCredentials as exc:
            failed = exc
    # Counts are kept in transactions of their own: short, and apart from the sign-in's (rolled back on failure).
    with session_factory() as s:
        if failed is not None:
            throttle.record_failure(session=s, keys=keys)
        else:
            throttle.record_success(session=s, keys=keys)
    if failed is not None:
        raise failed
    return principal


# Per event loop (a test client runs one of its own): (size, gate).
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[int, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


_doors: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[int, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def _semaphore(held_by: weakref.WeakKeyDictionary, size: int) -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    held = held_by.get(loop)
    if held is None or held[0] != size:
        held = (size, asyncio.Semaphore(size))
        held_by[loop] = held
    return held[1]


def _gate(size: int) -> asyncio.Semaphore:
    return _semaphore(_gates, size)


async def sign_in_async(
    *,
    request: Request,
    session: Session,
    session_factory: Callable[[], AbstractContextManager[Session]],
    username: str,
    password: str,
) -> Principal:
    """:func:`sign_in` for the routes, which keeps a flood of sign-ins off the server's worker threads:
    a blocked attempt is refused after one quick read, and the others wait for their turn here, in
    the event loop, holding no thread, while at most ``login_hash_concurrency`` of them are in the
    threads checking passwords; beyond ``login_queue_max`` sign-ins in the process, one more is
    refused (503) before it takes a thread or a database connection. Every other request
    (``/health`` among them) keeps finding a thread and a connection."""
    settings = get_settings()
    door = _semaphore(_doors, settings.login_queue_max)
    if door.locked():
        # Refused at the door: no thread, no database connection, no hash.
        raise ServiceBusy("too many sign-ins at once; try again in a moment", retry_after=1)
    await door.acquire()  # free now: nothing ran since the check
    try:
        return await _admitted(request, session, session_factory, settings, username, password)
    finally:
        door.release()


async def _admitted(request, session, session_factory, settings, username: str, password: str) -> Principal:
    keys = throttle.keys_for(username=username, address=client_address(request))

    def check() -> None:
        with session_factory() as s:
            throttle.check(session=s, keys=keys)

    await run_in_threadpool(check)
    gate = _gate(settings.login_hash_concurrency)
    try:
        await asyncio.wait_for(gate.acquire(), timeout=settings.login_hash_wait_s)
    except TimeoutError:
        raise ServiceBusy("too many sign-ins are being checked at once; try again in a moment", retry_after=1) from None
    try:
        return await run_in_threadpool(
            lambda: sign_in(
                request=request,
                session=session,
                session_factory=session_factory,
                username=username,
                password=password,
            )
        )
    finally:
        gate.release()


SIGN_IN_ERRORS = {
    401: {"model": ErrorOut},
    429: {
        "model": ErrorOut,
        "description": "Too many failed sign-ins of this account or from this address; see Retry-After",
    },
    503: {"model": ErrorOut, "description": "Too many sign-ins being checked at once; see Retry-After"},
}


@router.post(
    "/token",
    response_model=TokenOut,
    responses=SIGN_IN_ERRORS,
    summary="Exchange username and password for an access token",
)
async def create_token(
    request: Request,
    session: SessionDep,
    session_factory: SessionFactoryDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> TokenOut:
    principal = await sign_in_async(
        request=request,
        session=session,
        session_factory=session_factory,
        username=form.username,
        password=form.password,
    )
    token = issue_token(principal)
    return TokenOut(access_token=token.token, expires_in=token.expires_in)


@router.post(
    "/logout",
    status_code=204,
    response_class=Response,
    responses={401: {"model": ErrorOut}},
    summary="Revoke every access token of the caller (all their devices and open streams)",
)
def logout(session: SessionDep, principal: PrincipalDep) -> Response:
    service.revoke_tokens(session=session, username=principal.username, actor=actor_of(principal))
    response = Response(status_code=204)
    response.delete_cookie(TOKEN_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/me", response_model=PrincipalOut, summary="The authenticated caller")
def me(principal: PrincipalDep) -> PrincipalOut:
    return PrincipalOut(username=principal.username, agency_code=principal.agency_code, role=principal.role)
