"""What makes the API fit for phones on bad links: ``Idempotency-Key`` replays on creating POSTs,
ETags with ``If-None-Match`` on reads, and compact JSON bodies."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import orjson
from fastapi import Depends, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from api.deps import PrincipalDep
from patrols import idempotency

JSON = "application/json"
REPLAY_HEADER = "Idempotent-Replayed"


def _dump(content: BaseModel | dict | list) -> bytes:
    if isinstance(content, BaseModel):
        content = content.model_dump(mode="json")
    return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z)


@dataclass
class Idempotency:
    """The caller's ``Idempotency-Key`` (if any) and a fingerprint of the request it came with."""

    username: str
    key: str | None
    fingerprint: str

    def respond(
        self, session: Session, status_code: int, produce: Callable[[], BaseModel], media_type: str = JSON
    ) -> Response:
        """Replay the stored response for a key seen before; else run ``produce`` and store its response."""
        if self.key is not None:
            stored = idempotency.claim(
                session=session, username=self.username, key=self.key, fingerprint=self.fingerprint
            )
            if stored is not None:
                return Response(
                    stored.body, status_code=stored.status_code, media_type=media_type, headers={REPLAY_HEADER: "true"}
                )
        body = _dump(produce())
        if self.key is not None:
            idempotency.store(session=session, username=self.username, key=self.key, status_code=status_code, body=body)
        return Response(body, status_code=status_code, media_type=media_type)


async def idempotency_key(
    request: Request,
    principal: PrincipalDep,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            pattern=r"^[\x21-\x7e]+$",
            description="Any unique string (a UUID); a retry with the same key and body replays the first response "
            "and changes nothing, the same key with another body is refused (422)",
        ),
    ] = None,
) -> Idempotency:
    body = await request.body()
    return Idempotency(
        username=principal.username,
        key=key,
        fingerprint=idempotency.request_hash(request.method, request.url.path, body),
    )


IdempotencyDep = Annotated[Idempotency, Depends(idempotency_key)]


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def cached(request: Request, content: BaseModel | dict | list, media_type: str = JSON) -> Response:
    """The body with a strong ETag; 304 without a body when ``If-None-Match`` already names it."""
    body = _dump(content)
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    presented = request.headers.get("if-none-match")
    if presented is not None:
        tags = {t.strip().removeprefix("W/") for t in presented.split(",")}
        if etag in tags or "*" in tags:
            return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)
