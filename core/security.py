"""Passwords (argon2id) and access tokens (signed JWT) for the people who use Borderwatch, and the
broker's password-file hash for the devices that publish or subscribe over MQTT."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.errors import ConfigurationError, NotAuthenticated, ServiceBusy
from core.permissions import ROLES
from core.settings import Settings, get_settings

ISSUER = "borderwatch"
# HMAC only: an asymmetric or "none" algorithm in the settings must never be accepted.
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
MIN_SECRET_LENGTH = 32
REQUIRED_CLAIMS = ("sub", "agency", "role", "iat", "exp", "iss")
# Longer inputs are refused before hashing; argon2 would hash them, slowly, for nothing.
MAX_PASSWORD_LENGTH = 1024

_hasher = PasswordHasher()


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"


class InvalidToken(NotAuthenticated):
    code = "invalid_token"


class TokenExpired(InvalidToken):
    code = "token_expired"


class TokenRevoked(InvalidToken):
    """A token issued before its user's tokens were revoked (logout, password change, disabling)."""

    code = "token_revoked"


@dataclass(frozen=True)
class Principal:
    """Who makes a request: a user of one agency with one role."""

    username: str
    agency_code: str
    role: str
    # The user's token generation the principal's token was issued under (``gen`` claim, 0 if absent):
    # revoking a user's tokens moves the user's generation on. Not part of who the principal is.
    token_generation: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int
    expires_at: datetime


# -- passwords -----------------------------------------------------------------------------
def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True if ``password`` matches; False on a mismatch or a hash that cannot be read."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@lru_cache
def _dummy_hash() -> str:
    return _hasher.hash("borderwatch-no-such-user-placeholder")


def burn_password_check(password: str) -> None:
    """Spend the time of one real check, so an unknown user answers as slowly as a known one."""
    verify_password(_dummy_hash(), password)


_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


def _password_slots(size: int) -> threading.BoundedSemaphore:
    global _slots
    with _slots_lock:
        if _slots is None or _slots[0] != size:
            _slots = (size, threading.BoundedSemaphore(size))
        return _slots[1]


@contextmanager
def password_check_slot(*, settings: Settings | None = None) -> Iterator[None]:
    """One of the process's few places to check a password in (each argon2id check takes 64 MiB):
    waits up to ``login_hash_wait_s`` for one, then refuses with ``ServiceBusy`` (503) unhashed."""
    settings = settings or get_settings()
    slots = _password_slots(settings.login_hash_concurrency)
    if not slots.acquire(timeout=settings.login_hash_wait_s):
        raise ServiceBusy("too many sign-ins are being checked at once; try again in a moment", retry_after=1)
    try:
        yield
    finally:
        slots.release()


# -- tokens --------------------------------------------------------------------------------
def _signing(settings: Settings) -> tuple[str, str]:
    secret = settings.jwt_secret or ""
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigurationError(
            f"BW_JWT_SECRET must be set to a random value of at least {MIN_SECRET_LENGTH} characters "
            f"(it is {'empty' if not secret else f'{len(secret)} characters'}); "
            "e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    algorithm = settings.jwt_algorithm
    if algorithm not in HMAC_ALGORITHMS:
        raise ConfigurationError(f"BW_JWT_ALGORITHM must be one of {', '.join(HMAC_ALGORITHMS)}, not {algorithm!r}")
    return secret, algorithm


def issue_token(principal: Principal, *, settings: Settings | None = None, now: datetime | None = None) -> AccessToken:
    """A signed access token for ``principal``, valid for ``settings.access_token_minutes``."""
    settings = settings or get_settings()
    secret, algorithm = _signing(settings)
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    lifetime = timedelta(minutes=settings.access_token_minutes)
    if lifetime <= timedelta(0):
        raise ConfigurationError("BW_ACCESS_TOKEN_MINUTES must be positive")
    expires_at = now + lifetime
    claims = {
        "sub": principal.username,
        "agency": principal.agency_code,
        "role": principal.role,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "iss": ISSUER,
    }
    if principal.token_generation:
        # Absent means 0: the tokens of a user whose tokens were never revoked, and those issued before
        # generations existed, look as they always did.
        claims["gen"] = principal.token_generation
    token = jwt.encode(claims, secret, algorithm=algorithm)
    return AccessToken(token=token, expires_in=int(lifetime.total_seconds()), expires_at=expires_at)


def verify_token(token: str, *, settings: Settings | None = None) -> Principal:
    """The principal a token names; raises TokenExpired or InvalidToken (both 401)."""
    settings = settings or get_settings()
    secret, algorithm = _signing(settings)
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[algorithm],
            issuer=ISSUER,
            options={"require": list(REQUIRED_CLAIMS), "verify_exp": True, "verify_iat": True},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired("the access token has expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("the access token is not valid") from exc
    sub, agency, role = claims.get("sub"), claims.get("agency"), claims.get("role")
    if not all(isinstance(v, str) and v for v in (sub, agency, role)) or role not in ROLES:
        raise InvalidToken("the access token is not valid")
    generation = claims.get("gen", 0)
    if type(generation) is not int or generation < 0:
        raise InvalidToken("the access token is not valid")
    return Principal(username=sub, agency_code=agency, role=role, token_generation=generation)


def form_token(principal: Principal, purpose: str, *, settings: Settings | None = None) -> str:
    """A token a page's form carries back: bound to the signed-in user and what the form does, so a
    form another site makes cannot present it (with the same-origin check, against cross-site POSTs)."""
    secret, _ = _signing(settings or get_settings())
    message = f"{principal.username}\n{principal.agency_code}\n{purpose}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def form_token_valid(principal: Principal, purpose: str, token: str, *, settings: Settings | None = None) -> bool:
    return hmac.compare_digest(form_token(principal, purpose, settings=settings), token or "")


# Mosquitto's own password-file format ($7$ = PBKDF2-SHA512), so the broker checks gateways itself.
_MOSQUITTO_ITERATIONS = 101


def mosquitto_password_hash(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _MOSQUITTO_ITERATIONS)
    return f"$7${_MOSQUITTO_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
