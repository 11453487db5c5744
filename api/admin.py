"""Administration of an agency's accounts and broker credentials (admins, their own agency only).

Each change goes through the same service functions as the ``borderwatch`` commands (and so is
audited and revokes tokens the same way); broker files are rewritten after the commit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path
from fastapi.responses import Response

from accounts import service as accounts
from api.deps import PrincipalDep, SessionDep, SessionFactoryDep, sync_broker
from api.schemas import ErrorOut, GatewayCredentialOut, PasswordIn, UserStateOut
from core.models import User
from sensors import service as sensors

router = APIRouter(prefix="/admin", tags=["admin"])

_E = {"model": ErrorOut}
ERRORS = {401: _E, 403: _E, 404: _E, 409: _E, 422: _E}
Username = Annotated[str, Path(min_length=1, max_length=64)]
GatewayId = Annotated[str, Path(min_length=1, max_length=64)]


def _state(user: User) -> UserStateOut:
    return UserStateOut(username=user.username, agency_code=user.agency_code, role=user.role, active=user.active)


@router.post(
    "/users/{username}/disable",
    response_model=UserStateOut,
    responses=ERRORS,
    summary="Disable a user of the caller's agency: no more sign-ins, every token revoked (admin)",
)
def disable_user(username: Username, session: SessionDep, principal: PrincipalDep) -> UserStateOut:
    accounts.user_for_admin(
        session=session, principal=principal, username=username, action="disable users", allow_self=False
    )
    return _state(accounts.disable_user(session=session, username=username, actor=principal.username))


@router.post(
    "/users/{username}/enable",
    response_model=UserStateOut,
    responses=ERRORS,
    summary="Let a disabled user of the caller's agency sign in again (old tokens stay revoked; admin)",
)
def enable_user(username: Username, session: SessionDep, principal: PrincipalDep) -> UserStateOut:
    accounts.user_for_admin(session=session, principal=principal, username=username, action="enable users")
    return _state(accounts.enable_user(session=session, username=username, actor=principal.username))


@router.post(
    "/users/{username}/password",
    status_code=204,
    response_class=Response,
    responses=ERRORS,
    summary="Set a new password for a user of the caller's agency; every token of theirs is revoked (admin)",
)
def reset_password(username: Username, body: PasswordIn, session: SessionDep, principal: PrincipalDep) -> Response:
    accounts.user_for_admin(session=session, principal=principal, username=username, action="reset passwords")
    accounts.set_password(session=session, username=username, password=body.password, actor=principal.username)
    return Response(status_code=204)


@router.post(
    "/gateways/{gateway_id}/credentials",
    response_model=GatewayCredentialOut,
    responses=ERRORS,
    summary="Rotate a gateway's broker credential: a new password (shown once), the old one refused (admin)",
)
def rotate_gateway(
    gateway_id: GatewayId,
    session: SessionDep,
    principal: PrincipalDep,
    background: BackgroundTasks,
    session_factory: SessionFactoryDep,
) -> GatewayCredentialOut:
    sensors.gateway_for_admin(
        session=session, principal=principal, gateway_id=gateway_id, action="rotate gateway credentials"
    )
    password = sensors.rotate_gateway_credential(session=session, gateway_id=gateway_id, actor=principal.username)
    background.add_task(sync_broker, session_factory)
    return GatewayCredentialOut(gateway_id=gateway_id, mqtt_username=gateway_id, mqtt_password=password)


@router.delete(
    "/gateways/{gateway_id}/credentials",
    status_code=204,
    response_class=Response,
    responses=ERRORS,
    summary="Withdraw a gateway's broker credential: it can no longer connect or publish (admin)",
)
def revoke_gateway(
    gateway_id: GatewayId,
    session: SessionDep,
    principal: PrincipalDep,
    background: BackgroundTasks,
    session_factory: SessionFactoryDep,
) -> Response:
    sensors.gateway_for_admin(
        session=session, principal=principal, gateway_id=gateway_id, action="revoke gateway credentials"
    )
    sensors.revoke_gateway_credential(session=session, gateway_id=gateway_id, actor=principal.username)
    background.add_task(sync_broker, session_factory)
    return Response(status_code=204)
