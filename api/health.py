"""Liveness with a database round trip, for load balancers and `borderwatch run`."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import SessionDep
from api.responses import CompactJSONResponse
from api.schemas import HealthOut

router = APIRouter(tags=["health"])
log = logging.getLogger("borderwatch.api")


@router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
def health(session: SessionDep):
    try:
        session.execute(text("SELECT 1")).scalar_one()
    except SQLAlchemyError as exc:
        log.error("health check: database unavailable: %s", exc)
        session.rollback()
        return CompactJSONResponse({"status": "error", "database": "unavailable"}, status_code=503)
    return HealthOut(status="ok", database="ok")
