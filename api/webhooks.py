"""Outbound webhooks of the caller's agency (supervisors and admins): subscribe, list, stop, and
read the delivery log. Signing and retries: interop/webhooks.py and the README."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import PrincipalDep, SessionDep
from api.schemas import ErrorOut
from core.settings import get_settings
from interop import webhooks

router = APIRouter(
    prefix="/webhooks",
    tags=["webhooks"],
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)

WebhookId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post(
    "",
    status_code=201,
    response_model=webhooks.WebhookCreated,
    summary="Subscribe a URL to the agency's alerts (the signing secret is shown once)",
)
def create(session: SessionDep, principal: PrincipalDep, webhook_in: webhooks.WebhookCreate) -> webhooks.WebhookCreated:
    return webhooks.create(
        session=session, principal=principal, webhook_in=webhook_in, allowed_networks=get_settings().webhook_networks()
    )


@router.get("", response_model=list[webhooks.WebhookOut], summary="The agency's webhook subscriptions")
def list_all(session: SessionDep, principal: PrincipalDep) -> list[webhooks.WebhookOut]:
    return webhooks.list_webhooks(session=session, principal=principal)


@router.get(
    "/{webhook_id}",
    response_model=webhooks.WebhookOut,
    responses={404: {"model": ErrorOut}},
    summary="One subscription",
)
def get_one(session: SessionDep, principal: PrincipalDep, webhook_id: WebhookId) -> webhooks.WebhookOut:
    return webhooks.get(session=session, principal=principal, webhook_id=webhook_id)


@router.delete(
    "/{webhook_id}",
    response_model=webhooks.WebhookOut,
    responses={404: {"model": ErrorOut}},
    summary="Stop a subscription (its log stays)",
)
def deactivate(session: SessionDep, principal: PrincipalDep, webhook_id: WebhookId) -> webhooks.WebhookOut:
    return webhooks.deactivate(session=session, principal=principal, webhook_id=webhook_id)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=list[webhooks.DeliveryOut],
    responses={404: {"model": ErrorOut}},
    summary="The delivery log, newest first",
)
def deliveries(
    session: SessionDep,
    principal: PrincipalDep,
    webhook_id: WebhookId,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Only deliveries with a lower id")] = None,
) -> list[webhooks.DeliveryOut]:
    return webhooks.deliveries(session=session, principal=principal, webhook_id=webhook_id, limit=limit, before=before)
