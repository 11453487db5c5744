"""The operators' live feed: server-sent events of alert, incident, unit and tasking changes in
the caller's agency scope. Load the current state from the list endpoints, then follow this;
a reconnecting client sends ``Last-Event-ID`` and misses nothing.

The feed looks at its caller again every ``BW_STREAM_RECHECK_S`` seconds: once the token has
expired or been revoked, or the user has been disabled, deleted, or given another role or agency,
it sends a last ``end`` event with the reason and closes."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Header, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from accounts.service import STREAM_END_MESSAGES, stream_end_reason
from api.deps import PresentedTokenDep, PrincipalDep, SessionDep, SessionFactoryDep
from api.schemas import ErrorOut
from core.settings import get_settings
from core.streams import LIVE_STREAMS
from patrols import live as patrol_live

router = APIRouter(tags=["live"])

EventType = Literal["alert", "incident", "unit", "tasking"]
HEARTBEAT_S = 15.0


def _event(kind: str, data: dict, event_id: str) -> bytes:
    return (
        b"event: "
        + kind.encode()
        + b"\nid: "
        + event_id.encode()
        + b"\ndata: "
        + orjson.dumps(data, option=orjson.OPT_UTC_Z)
        + b"\n\n"
    )


@router.get(
    "/live",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "text/event-stream: events `alert`, `incident`, `unit`, `tasking` (JSON data); "
            "a first `ready` event carries the id to resume from; a last `end` event "
            "(`reason`, `message`) when the caller's token or account no longer allows "
            "the stream",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        401: {"model": ErrorOut},
        422: {"model": ErrorOut},
        429: {"model": ErrorOut, "description": "The caller has the most live streams allowed open"},
    },
    summary="Server-sent events of changes in the caller's scope",
)
def live(
    session: SessionDep,
    principal: PrincipalDep,
    token: PresentedTokenDep,
    session_factory: SessionFactoryDep,
    types: Annotated[list[EventType] | None, Query(description="Event types to receive (all if omitted)")] = None,
    interval: Annotated[float, Query(ge=0.2, le=30, description="Seconds between looks at the database")] = 1.0,
    max_seconds: Annotated[
        int, Query(ge=1, le=3600, description="The stream ends after this; reconnect with Last-Event-ID")
    ] = 600,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=40)] = None,
) -> StreamingResponse:
    # Before anything else is looked at: refused (429) while the user holds the most streams allowed.
    slot = LIVE_STREAMS.acquire(principal.username, get_settings().live_max_streams_per_user)
    wanted = tuple(types or ("alert", "incident", "unit", "tasking"))
    cursor = (
        patrol_live.LiveCursor.parse(last_event_id)
        if last_event_id
        else patrol_live.live_start(session=session, principal=principal)
    )

    def poll() -> list[tuple[str, dict]]:
        with session_factory() as s:
            return patrol_live.live_changes(
                session=s, principal=principal, cursor=cursor, types=wanted, clock=time.monotonic()
            )

    recheck_s = get_settings().stream_recheck_s

    def end_reason() -> str | None:
        with session_factory() as s:
            return stream_end_reason(session=s, token=token or "", principal=principal)

    async def stream():
        try:
            async for chunk in events():
                yield chunk
        finally:
            slot.release()

    async def events():
        yield b"retry: 2000\n" + _event(
            "ready", {"agency_code": principal.agency_code, "types": list(wanted)}, cursor.event_id()
        )
        deadline = time.monotonic() + max_seconds
        quiet_since = time.monotonic()
        next_check = time.monotonic() + recheck_s
        next_poll = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= next_check:
                reason = await run_in_threadpool(end_reason)
                if reason:
                    yield _event("end", {"reason": reason, "message": STREAM_END_MESSAGES[reason]}, cursor.event_id())
                    return
                next_check = now + recheck_s
            if now >= next_poll:
                before = cursor.event_id()
                events = await run_in_threadpool(poll)
                # Events carry the position before their batch, and a bare id line the one after it, so a
                # client cut off within a batch resumes at its start (at least once, never lost).
                for kind, data in events:
                    yield _event(kind, data, before)
                if events:
                    yield b"id: " + cursor.event_id().encode() + b"\n\n"
                now = time.monotonic()
                if events:
                    quiet_since = now
                elif now - quiet_since >= HEARTBEAT_S:
                    yield b": keep-alive\n\n"
                    quiet_since = now
                if now >= deadline:
                    return
                # The last look is at the deadline itself, as it always was.
                next_poll = min(now + interval, deadline)
            await asyncio.sleep(max(0.0, min(next_poll, next_check, deadline) - time.monotonic()))

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
