"""``borderwatch cot-serve``: a Cursor-on-Target stream over plain TCP, the way TAK clients take a
"TCP input" (ATAK: *Network Preferences → Manage Inputs*, or a TAK Server federation input).

A client authenticates with its first line: a Borderwatch access token (``POST
/api/v1/auth/token``) followed by a newline, so the stream has the same identity, roles and
agency scope as the HTTP API and no second credential store. A missing, invalid or expired
token closes the connection without a byte sent. Then the server sends the current picture
(units, incidents, recent alerts), then one event per change as the live feed sees it, and
the whole picture again every ``refresh`` seconds so markers do not go stale. Each event is a
stand-alone XML document (declaration included) followed by a newline.

The server looks at the client's token and user again every ``recheck`` seconds
(``BW_STREAM_RECHECK_S``) and closes the connection once the token has expired or been revoked,
or the user has been disabled, deleted, or given another role or agency (CoT has no message
for "signed out": the client sees the connection close and must reconnect with a new token).

The listener binds to loopback by default: the stream is plain TCP, so anything beyond the
host belongs behind a TLS terminator (stunnel, nginx stream) or a VPN.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from accounts.service import resolve_principal, stream_end_reason
from core.db import session_scope
from core.errors import NotAuthenticated, NotAuthorised
from core.permissions import V1, route_scope
from core.security import Principal
from core.settings import get_settings
from core.streams import COT_STREAMS, TooManyStreams
from interop import cot
from patrols import live

COT_ROUTE = f"{V1}/cot"

log = logging.getLogger("borderwatch.cot")
MAX_TOKEN_LINE = 8192
TYPES = ("unit", "alert", "incident")


class CotServer:
    def __init__(
        self,
        *,
        interval: float = 1.0,
        refresh: float = 60.0,
        alert_hours: float = 24.0,
        auth_timeout: float = 10.0,
        recheck: float | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.interval, self.refresh, self.alert_hours, self.auth_timeout = interval, refresh, alert_hours, auth_timeout
        self.recheck = recheck if recheck is not None else get_settings().stream_recheck_s
        self.on_event = on_event or (lambda message: None)
        self.connections = 0

    @property
    def stale_after(self) -> timedelta:
        # A marker outlives two missed refreshes.
        return timedelta(seconds=3 * self.refresh)

    def _authenticate(self, token: str) -> Principal:
        with session_scope() as session:
            principal = resolve_principal(session=session, token=token)
        # The stream is the picture GET /api/v1/cot gives: the same roles (core.permissions) may have it.
        route_scope("GET", COT_ROUTE, principal.role)
        return principal

    @staticmethod
    def _end_reason(token: str, principal: Principal) -> str | None:
        with session_scope() as session:
            return stream_end_reason(session=session, token=token, principal=principal)

    def _start(self, principal: Principal) -> tuple[list[bytes], live.LiveCursor]:
        with session_scope() as session:
            cursor = cot.picture_cursor(session=session, principal=principal, alert_hours=self.alert_hours)
            changes = live.live_changes(
                session=session,
                principal=principal,
                cursor=cursor,
                types=TYPES,
                clock=time.monotonic(),
                via="cot-serve",
            )
        return cot.events(changes, now=datetime.now(timezone.utc), stale_after=self.stale_after), cursor

    def _changes(self, principal: Principal, cursor: live.LiveCursor) -> list[bytes]:
        with session_scope() as session:
            changes = live.live_changes(
                session=session,
                principal=principal,
                cursor=cursor,
                types=TYPES,
                clock=time.monotonic(),
                via="cot-serve",
            )
        return cot.events(changes, now=datetime.now(timezone.utc), stale_after=self.stale_after)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            line = await asyncio.wait_for(reader.readline(), self.auth_timeout)
            token = line[:MAX_TOKEN_LINE].strip().decode("ascii", "replace")
            principal = await asyncio.to_thread(self._authenticate, token)
        except (asyncio.TimeoutError, NotAuthenticated, NotAuthorised, ConnectionError) as exc:
            self.on_event(f"refused {peer}: {getattr(exc, 'message', None) or type(exc).__name__}")
            writer.close()
            return
        try:
            slot = COT_STREAMS.acquire(principal.username, get_settings().cot_max_streams_per_user)
        except TooManyStreams as exc:
            self.on_event(f"refused {peer}: {exc.message}")
            writer.close()
            return
        self.connections += 1
        self.on_event(f"{peer} connected as {principal.username} ({principal.agency_code})")
        try:
            picture, cursor = await asyncio.to_thread(self._start, principal)
            await self._send(writer, picture)
            next_refresh = time.monotonic() + self.refresh
            next_check = time.monotonic() + self.recheck
            while not reader.at_eof():
                await asyncio.sleep(min(self.interval, max(0.0, next_check - time.monotonic())))
                # (what a client sends after its token is ignored)
                if time.monotonic() >= next_check:
                    reason = await asyncio.to_thread(self._end_reason, token, principal)
                    if reason:
                        self.on_event(f"{peer} closed: {reason}")
                        break
                    next_check = time.monotonic() + self.recheck
                if time.monotonic() >= next_refresh:
                    picture, cursor = await asyncio.to_thread(self._start, principal)
                    await self._send(writer, picture)
                    next_refresh = time.monotonic() + self.refresh
                else:
                    await self._send(writer, await asyncio.to_thread(self._changes, principal, cursor))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # one client's failure must not stop the others
            log.exception("CoT stream to %s failed", peer)
        finally:
            slot.release()
            self.connections -= 1
            self.on_event(f"{peer} disconnected")
            writer.close()

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, events: list[bytes]) -> None:
        if events:
            writer.write(b"".join(cot.document(e) + b"\n" for e in events))
            await writer.drain()

    async def serve(self, host: str, port: int, ready: Callable[[int], None] | None = None) -> None:
        server = await asyncio.start_server(self.handle, host, port, limit=MAX_TOKEN_LINE * 2)
        if ready:
            ready(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()
