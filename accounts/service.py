"""What the accounts domain does: agencies, users, signing in, and the principal a token stands for.
Callers own the transaction."""

from __future__ import annotations

import re

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from audit import service as audit
from core.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from core.models import Agency, User
from core.permissions import ACCOUNT_ADMINS, ROLES, require_role
from core.security import (
    MAX_PASSWORD_LENGTH,
    InvalidCredentials,
    InvalidToken,
    Principal,
    TokenExpired,
    TokenRevoked,
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
        raise InvalidInput(
            f"agency code {code!r} must look like TH-RTP (country code, dash, 2-24 of A-Z 0-9)", field="code"
        )
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
    audit.record(
        session=session,
        actor=actor,
        action="agency.create",
        entity_type="agency",
        entity_id=code,
        agencies=[code],
        details={"country": country, "name": name},
    )
    return agency


def create_user(
    *, session: Session, username: str, agency_code: str, role: str, password: str, actor: str = SYSTEM_ACTOR
) -> User:
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
    _audit(session, actor, "user.create", username, agency_code, {"role": role})
    return user


def set_password(*, session: Session, username: str, password: str, actor: str = SYSTEM_ACTOR) -> User:
    """Replace a user's password (same rules as at creation); the audit trail records that, not the password."""
    if not MIN_PASSWORD_LENGTH <= len(password or "") <= MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password must have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters", field="password"
        )
    user = get_user(session=session, username=username)
    user.password_hash = hash_password(password)
    # Whoever held the old password may hold a token too: every token issued before stops working.
    _next_token_generation(session, user)
    _audit(session, actor, "user.password", username, user.agency_code)
    return user


def _audit(session: Session, actor: str, action: str, username: str, agency: str, details: dict | None = None) -> None:
    audit.record(
        session=session,
        actor=actor,
        action=action,
        entity_type="user",
        entity_id=username,
        agencies=[agency],
        details=details,
    )


def _next_token_generation(session: Session, user: User) -> None:
    # In SQL, so that two revocations at once both count.
    user.token_generation = session.execute(
        update(User)
        .where(User.id == user.id)
        .values(token_generation=User.token_generation + 1)
        .returning(User.token_generation)
    ).scalar_one()
    session.flush()


def revoke_tokens(*, session: Session, username: str, actor: str = SYSTEM_ACTOR, action: str = "user.logout") -> User:
    """Make every access token issued so far to ``username`` invalid at once (its open streams end at
    their next look); recorded in the audit trail as ``action``."""
    user = get_user(session=session, username=username)
    _next_token_generation(session, user)
    _audit(session, actor, action, username, user.agency_code, {"token_generation": user.token_generation})
    return user


def disable_user(*, session: Session, username: str, actor: str = SYSTEM_ACTOR) -> User:
    """Stop a user signing in; their tokens are revoked at once. Disabling a disabled user changes nothing."""
    user = get_user(session=session, username=username)
    if not user.active:
        return user
    user.active = False
    _next_token_generation(session, user)
    _audit(session, actor, "user.disable", username, user.agency_code, {"token_generation": user.token_generation})
    return user


def enable_user(*, session: Session, username: str, actor: str = SYSTEM_ACTOR) -> User:
    """Let a disabled user sign in again (with new tokens: those revoked when disabled stay revoked)."""
    user = get_user(session=session, username=username)
    if user.active:
        return user
    user.active = True
    session.flush()
    _audit(session, actor, "user.enable", username, user.agency_code)
    return user


def user_for_admin(
    *, session: Session, principal: Principal, username: str, action: str, allow_self: bool = True
) -> User:
    """A user an admin may manage: one of the admin's own agency (another agency's users are not found).
    ``allow_self=False``: not the admin themselves (an admin who disables their own account locks out)."""
    require_role(principal, ACCOUNT_ADMINS, action)
    user = _find_user(session, username)
    if user is None or user.agency_code != principal.agency_code:
        raise NotFound(f"user {username} does not exist in {principal.agency_code}")
    if not allow_self and user.username == principal.username:
        raise Conflict(f"an admin may not {action} for their own account; ask another admin")
    return user


def get_user(*, session: Session, username: str) -> User:
    user = _find_user(session, username)
    if user is None:
        raise NotFound(f"user {username} does not exist")
    return user


def principal_of(user: User) -> Principal:
    return Principal(
        username=user.username,
        agency_code=user.agency_code,
        role=user.role,
        token_generation=user.token_generation or 0,
    )


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
    """The principal of a valid token whose user still exists and is active (their current agency and role),
    and whose tokens have not been revoked since it was issued."""
    if not token:
        raise NotAuthenticated("authentication required: send Authorization: Bearer <access token>")
    claimed = verify_token(token)
    user = _find_user(session, claimed.username)
    if user is None or not user.active or user.agency_code != claimed.agency_code:
        raise InvalidToken("the access token is not valid")
    if claimed.token_generation != user.token_generation:
        raise TokenRevoked("the access token has been revoked")
    return principal_of(user)


def stream_end_reason(*, session: Session, token: str, principal: Principal) -> str | None:
    """Why a stream opened by ``principal`` with ``token`` must end now, or None if it may go on:
    ``token_expired``, ``token_invalid``, ``user_deleted``, ``user_disabled``, ``token_revoked``,
    ``agency_changed`` or ``role_changed``."""
    try:
        claimed = verify_token(token)
    except TokenExpired:
        return "token_expired"
    except InvalidToken:
        return "token_invalid"
    user = _find_user(session, claimed.username)
    if user is None:
        return "user_deleted"
    if not user.active:
        return "user_disabled"
    if claimed.token_generation != user.token_generation:
        return "token_revoked"
    if user.agency_code != principal.agency_code or claimed.agency_code != principal.agency_code:
        return "agency_changed"
    if user.role != principal.role:
        return "role_changed"
    return None


# What a stream's last message says, for each reason.
STREAM_END_MESSAGES = {
    "token_expired": "the access token has expired; sign in again",
    "token_invalid": "the access token is not valid",
    "user_deleted": "the user no longer exists",
    "user_disabled": "the user has been disabled",
    "token_revoked": "the access token has been revoked (logout, password change or disabling)",
    "agency_changed": "the user's agency has changed; reconnect",
    "role_changed": "the user's role has changed; reconnect",
}
