"""The one place where errors become HTTP responses: ``{"error", "message", "details"}``.

Domain errors (core.errors.BorderwatchError and subclasses) carry their own status code
and code; request validation errors become 422 ``invalid_input`` with the reasons.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.responses import CompactJSONResponse
from core.errors import BorderwatchError, InvalidInput, NotAuthenticated, NotAuthorised, ServiceBusy
from core.security import InvalidToken

log = logging.getLogger("borderwatch.api")


class InvalidParameter(InvalidInput):
    """A query parameter that parses but makes no sense (a bbox with min > max, start after end)."""

    code = "invalid_parameter"


class CrossSiteRequest(NotAuthorised):
    """A cookie-authenticated form posted from another site (or from a page that does not say where it is)."""

    code = "cross_site_request"


class DatabaseUnavailable(BorderwatchError):
    status_code = 503
    code = "database_unavailable"


def error_response(
    status_code: int, code: str, message: str, details: dict | None = None, headers: dict[str, str] | None = None
) -> CompactJSONResponse:
    return CompactJSONResponse(
        {"error": code, "message": message, "details": details or {}}, status_code=status_code, headers=headers
    )


def _www_authenticate(exc: NotAuthenticated) -> str:
    # RFC 6750 section 3: name the error only when a token was presented.
    if isinstance(exc, InvalidToken):
        return f'Bearer realm="borderwatch", error="invalid_token", error_description="{exc.message}"'
    return 'Bearer realm="borderwatch"'


async def _domain_error(request: Request, exc: BorderwatchError) -> CompactJSONResponse:
    headers = {"WWW-Authenticate": _www_authenticate(exc)} if isinstance(exc, NotAuthenticated) else None
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers = {**(headers or {}), "Retry-After": str(max(1, int(retry_after)))}
    if isinstance(exc, ServiceBusy):
        # A bound kept on purpose, not a fault: no alarm in the log for each refused attempt.
        return error_response(exc.status_code, exc.code, exc.message, headers=headers)
    if exc.status_code >= 500:
        # The operator reads the reason in the log; the client learns only that it is ours.
        log.error("%s on %s %s: %s", exc.code, request.method, request.url.path, exc.message)
        return error_response(exc.status_code, exc.code, "the service cannot handle this request right now")
    return error_response(exc.status_code, exc.code, exc.message, exc.details, headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> CompactJSONResponse:
    errors = [
        {"location": [str(p) for p in e.get("loc", ())], "reason": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    reasons = "; ".join(f"{'.'.join(e['location'][1:]) or e['location'][0]}: {e['reason']}" for e in errors)
    return error_response(422, InvalidInput.code, f"invalid request: {reasons}", {"errors": errors})


async def _http_error(request: Request, exc: StarletteHTTPException) -> CompactJSONResponse:
    codes = {401: "not_authenticated", 403: "not_authorised", 404: "not_found", 405: "method_not_allowed"}
    code = codes.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))


async def _database_error(request: Request, exc: DBAPIError) -> CompactJSONResponse:
    if isinstance(exc, OperationalError) or exc.connection_invalidated:
        log.error("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return error_response(DatabaseUnavailable.status_code, DatabaseUnavailable.code, "the database is unavailable")
    log.exception("database error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal error")


async def _unexpected_error(request: Request, exc: Exception) -> CompactJSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal error")


def install(app: FastAPI) -> None:
    app.add_exception_handler(BorderwatchError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
