"""A cap on request bodies, applied before anything reads them (authentication, form or JSON parsing).

A body whose ``Content-Length`` is over the cap is refused at once, unread (413); one sent without a
length (chunked) is counted as it arrives and refused once it passes the cap, so no request makes
the server hold more than the cap. Evidence uploads (``PUT /api/v1/evidence/{id}/content``) have
the larger cap ``BW_EVIDENCE_MAX_BYTES``: they are spooled to disk, never held in memory."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from core.errors import BorderwatchError
from core.settings import Settings, get_settings
from patrols.evidence.content import ContentTooLarge

EVIDENCE_CONTENT = re.compile(r"^/api/v1/evidence/[^/]+/content$")


class RequestTooLarge(BorderwatchError):
    status_code = 413
    code = "request_too_large"


def body_cap(path: str, method: str, settings: Settings) -> int:
    """The largest body a request to ``path`` may send."""
    if method == "PUT" and EVIDENCE_CONTENT.match(path):
        return settings.evidence_max_bytes
    return settings.max_body_bytes


def _refusal(path: str, cap: int) -> BorderwatchError:
    if EVIDENCE_CONTENT.match(path):
        return ContentTooLarge(f"the upload is larger than {cap} bytes (BW_EVIDENCE_MAX_BYTES)", max_bytes=cap)
    return RequestTooLarge(f"the request body is larger than {cap} bytes (BW_MAX_BODY_BYTES)", max_bytes=cap)


class BodyLimit:
    """ASGI middleware: refuse request bodies over the cap (413) without reading them whole."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = body_cap(scope["path"], scope["method"], get_settings())
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > cap):
            await _answer(scope, receive, send, _refusal(scope["path"], cap))
            return
        received = 0
        refused = False
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:  # the refusal has been sent; what the application says after it is dropped
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def counted() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    # Answered here, whatever reads the body (a form, JSON, an upload's spool): the
                    # application is told the client has gone, and reads no more.
                    refused = True
                    if not started:
                        await _answer(scope, receive, send, _refusal(scope["path"], cap))
                    return {"type": "http.disconnect"}
            return message

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if not refused:
                raise


async def _answer(scope: Scope, receive: Receive, send: Send, exc: BorderwatchError) -> None:
    response = error_response(exc.status_code, exc.code, exc.message, exc.details, {"Connection": "close"})
    await response(scope, receive, send)
