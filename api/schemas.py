"""Shapes of the JSON the API sends (GeoJSON is built by PostGIS and has no model here)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class PrincipalOut(BaseModel):
    username: str
    agency_code: str
    role: str


class HealthOut(BaseModel):
    status: Literal["ok", "error"]
    database: Literal["ok", "unavailable"]


class ErrorOut(BaseModel):
    """Every error response: a code, a message for people, and details for programs."""

    error: str
    message: str
    details: dict[str, Any]


class UserStateOut(BaseModel):
    """A user as an admin sees it after a change."""

    username: str
    agency_code: str
    role: str
    active: bool


class PasswordIn(BaseModel):
    password: str


class GatewayCredentialOut(BaseModel):
    """A gateway's new broker credential, shown once."""

    gateway_id: str
    mqtt_username: str
    mqtt_password: str
