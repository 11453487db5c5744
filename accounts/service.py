"""What the accounts domain does: agencies, users, signing in, and the principal a token stands for.
Callers own the transaction."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit import service as audit
from core.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from core.models import Agency, User
from core.permissions import ROLES
from core.security import (
    MAX_PASSWORD_LENGTH,
    InvalidCredentials,
    InvalidToken,
    Principal,
    burn_password_check,
    hash_password,
    password_needs_rehash,
    verify_password,
    verify_token,
)

MIN_PASSWORD_LENGTH = 12
AGENCY_CODE = re.compile(r"^[A-Z]{2}-[A-Z0-9]{2,24}$")
COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")
# The actor recorded for changes made outside a signed-in request (migrations, scripts, tests).
SYSTEM_ACTOR = "system"
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")


def create_agency(*, session: Session, code: str, country: str, name: str, actor: str = SYSTEM_ACTOR) -> Agency:
    """Create an agency ``CC-NAME`` of the member state ``CC`` (recorded in the audit trail as ``actor``'s)."""
    if not AGENCY_CODE.match(code or ""):
        raise InvalidInput(f"agency code {code!r} must look like TH-RTP (country code, dash, 2-24 of A-Z 0-9)",
                           field="code")
    if not COUNTRY_CODE.match(country or ""):
        raise InvalidInput(f"country {country!r} must be an ISO 3166 alpha-2 code such as TH", field="country")
    if not code.startswith(f"{country}-"):
        raise InvalidInput(f"agency code {code} does not start with its country {country}", field="code")
    name = (name or "").strip()
    if not name:
        raise InvalidInput("agency name must not be empty", field="name")
    if session.get(Agency, code) is not None:
        raise Conflict(f"agency {code} already exists")
    agency = Agency(code=code, country=country, name=name)
    session.add(agency)
    session.flush()
    audit.record(session=session, actor=actor, action="agency.create", entity_type="agency", entity_id=code,
                 agencies=[code], details={"country": country, "name": name})
    return agency


def create_user(*, session: Session, username: str, agency_code: str, role: str, password: str,
                actor: str = SYSTEM_ACTOR) -> User:
    """Create an active user of an existing agency; the password is stored only as an argon2 hash."""
    if not USERNAME.match(username or ""):
        raise InvalidInput(
            "username must be 2-64 characters of letters, digits and . _ @ -, starting with a letter or digit",
            field="username",
        )
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}", field="role")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters", field="password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at most {MAX_PASSWORD_LENGTH} characters", field="password")
    if session.get(Agency, agency_code) is None:
        raise NotFound(f"agency {agency_code} does not exist")
    if _find_user(session, username) is not None:
        raise Conflict(f"user {username} already exists")
    user = User(
        username=username, agency_code=agency_code, role=role, password_hash=hash_password(password), active=True
    )
    session.add(user)
    session.flush()
    audit.record(session=session, actor=actor, action="user.create", entity_type="user", entity_id=username,
                 agencies=[agency_code], details={"role": role})
    return user


def set_password(*, session: Session, username: str, password: str, actor: str = SYSTEM_ACTOR) -> User:
    """Replace a user's password (same rules as at creation); the audit trail records that, not the password."""
    if not MIN_PASSWORD_LENGTH <= len(password or "") <= MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password must have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters", field="password"
        )
    user = get_user(session=session, username=username)
    user.password_hash = hash_password(password)
    session.flush()
    audit.record(session=session, actor=actor, action="user.password", entity_type="user", entity_id=username,
                 agencies=[user.agency_code])
    return user


def get_user(*, session: Session, username: str) -> User:
    user = _find_user(session, username)
    if user is None:
        raise NotFound(f"user {username} does not exist")
    return user


def principal_of(user: User) -> Principal:
    return Principal(username=user.username, agency_code=user.agency_code, role=user.role)


def authenticate(*, session: Session, username: str, password: str) -> Principal:
    """The principal of an active user whose password matches; InvalidCredentials otherwise.

    Unknown users cost one hash check too, and every refusal has the same message, so
    neither timing nor wording tells which usernames exist.
    """
    refused = InvalidCredentials("invalid username or password")
    if not username or not password or len(password) > MAX_PASSWORD_LENGTH or len(username) > 64:
        raise refused
    user = _find_user(session, username)
    if user is None:
        burn_password_check(password)
        raise refused
    if not verify_password(user.password_hash, password) or not user.active:
        raise refused
    if password_needs_rehash(user.password_hash):
        # Written by the caller's transaction, like any other change.
        user.password_hash = hash_password(password)
    return principal_of(user)


def _find_user(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).one_or_none()


def resolve_principal(*, session: Session, token: str | None) -> Principal:
    """The principal of a valid token whose user still exists and is active (their current agency and role)."""
    if not token:
        raise NotAuthenticated("authentication required: send Authorization: Bearer <access token>")
    claimed = verify_token(token)
    try:
        user = get_user(session=session, username=claimed.username)
    except NotFound:
        user = None
    if user is None or not user.active or user.agency_code != claimed.agency_code:
        raise InvalidToken("the access token is not valid")
    return principal_of(user)
