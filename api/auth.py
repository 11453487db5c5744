"""Signing in: access tokens for API clients, and who the caller is."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import PrincipalDep, SessionDep
from api.schemas import PrincipalOut, TokenOut
from accounts import service
from core.security import issue_token

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=TokenOut, summary="Exchange username and password for an access token")
def create_token(session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> TokenOut:
    principal = service.authenticate(session=session, username=form.username, password=form.password)
    token = issue_token(principal)
    return TokenOut(access_token=token.token, expires_in=token.expires_in)


@router.get("/me", response_model=PrincipalOut, summary="The authenticated caller")
def me(principal: PrincipalDep) -> PrincipalOut:
    return PrincipalOut(username=principal.username, agency_code=principal.agency_code, role=principal.role)
