"""core.security and core.service: hashing, tokens, users (the pieces the API's auth stands on)."""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta, timezone

import jwt
import pytest

from accounts import service
from core.errors import ConfigurationError, Conflict, InvalidInput, NotFound
from core.security import (
    InvalidCredentials,
    InvalidToken,
    Principal,
    TokenExpired,
    hash_password,
    issue_token,
    verify_password,
    verify_token,
)
from core.settings import Settings
from tests.factories import PASSWORD

SECRET = "s" * 32
ALICE = Principal(username="alice", agency_code="TH-RTP", role="operator")


def settings(**overrides) -> Settings:
    return Settings(**{"jwt_secret": SECRET, "access_token_minutes": 15, **overrides})


def test_password_hash_round_trip():
    h = hash_password(PASSWORD)
    assert h.startswith("$argon2id$") and PASSWORD not in h
    assert verify_password(h, PASSWORD)
    assert not verify_password(h, PASSWORD + "!")
    assert not verify_password("not-a-hash", PASSWORD)


def test_token_round_trip_and_claims():
    s = settings()
    issued_at = datetime(2030, 1, 1, tzinfo=timezone.utc)
    token = issue_token(ALICE, settings=s, now=issued_at)
    assert token.expires_in == 900
    claims = jwt.decode(
        token.token,
        SECRET,
        algorithms=["HS256"],
        issuer="borderwatch",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {
        "sub": "alice",
        "agency": "TH-RTP",
        "role": "operator",
        "iss": "borderwatch",
        "iat": int(issued_at.timestamp()),
        "exp": int(issued_at.timestamp()) + 900,
    }
    assert jwt.get_unverified_header(token.token)["alg"] == "HS256"
    assert verify_token(issue_token(ALICE, settings=s).token, settings=s) == ALICE


@pytest.mark.parametrize("secret", ["", "x" * 31])
def test_weak_secret_is_refused(secret):
    s = settings(jwt_secret=secret)
    with pytest.raises(ConfigurationError, match="BW_JWT_SECRET"):
        issue_token(ALICE, settings=s)
    good = issue_token(ALICE, settings=settings()).token
    with pytest.raises(ConfigurationError, match="BW_JWT_SECRET"):
        verify_token(good, settings=s)


def test_non_hmac_algorithm_is_refused():
    with pytest.raises(ConfigurationError, match="BW_JWT_ALGORITHM"):
        issue_token(ALICE, settings=settings(jwt_algorithm="none"))


def _claims(**overrides):
    t = int(datetime.now(timezone.utc).timestamp())
    claims = {"sub": "alice", "agency": "TH-RTP", "role": "operator", "iss": "borderwatch", "iat": t, "exp": t + 60}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    "claims,error",
    [
        (_claims(exp=int(datetime.now(timezone.utc).timestamp()) - 10), TokenExpired),
        (_claims(iss="elsewhere"), InvalidToken),
        (_claims(iss=None), InvalidToken),
        (_claims(agency=None), InvalidToken),
        (_claims(role=None), InvalidToken),
        (_claims(exp=None), InvalidToken),
        (_claims(role="superuser"), InvalidToken),
        (_claims(sub=""), InvalidToken),
    ],
)
def test_bad_tokens(claims, error):
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(error):
        verify_token(token, settings=settings())


def test_token_signed_with_another_algorithm_or_none():
    s = settings()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT: a 32-byte key is short for HS512, which is the point
        hs512 = jwt.encode(_claims(), SECRET, algorithm="HS512")
    with pytest.raises(InvalidToken):
        verify_token(hs512, settings=s)
    with pytest.raises(InvalidToken):
        verify_token(jwt.encode(_claims(), None, algorithm="none"), settings=s)


def test_create_agency_and_user(db):
    service.create_agency(session=db, code="ZZ-TESTPOL", country="ZZ", name="Test police")
    user = service.create_user(
        session=db, username="zz.op", agency_code="ZZ-TESTPOL", role="operator", password=PASSWORD
    )
    assert user.id and user.active and user.password_hash != PASSWORD
    assert service.get_user(session=db, username="zz.op").agency_code == "ZZ-TESTPOL"
    with pytest.raises(Conflict):
        service.create_agency(session=db, code="ZZ-TESTPOL", country="ZZ", name="Again")
    with pytest.raises(Conflict):
        service.create_user(session=db, username="zz.op", agency_code="ZZ-TESTPOL", role="operator", password=PASSWORD)


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"role": "god"}, InvalidInput),
        ({"password": "short"}, InvalidInput),
        ({"password": "x" * 2000}, InvalidInput),
        ({"username": "bad name!"}, InvalidInput),
        ({"agency_code": "ZZ-NOSUCH"}, NotFound),
    ],
)
def test_create_user_validation(db, kwargs, error):
    service.create_agency(session=db, code="ZZ-TESTPOL", country="ZZ", name="Test police")
    args = {"username": "zz.op", "agency_code": "ZZ-TESTPOL", "role": "operator", "password": PASSWORD, **kwargs}
    with pytest.raises(error):
        service.create_user(session=db, **args)


@pytest.mark.parametrize(
    "code,country",
    [("zz-lower", "ZZ"), ("ZZ-TESTPOL", "Z1"), ("YY-TESTPOL", "ZZ"), ("ZZ", "ZZ")],
)
def test_create_agency_validation(db, code, country):
    with pytest.raises(InvalidInput):
        service.create_agency(session=db, code=code, country=country, name="Test")


def test_get_unknown_user(db):
    with pytest.raises(NotFound):
        service.get_user(session=db, username="nobody-at-all")


def test_authenticate(db, factory):
    agency = factory.agency()
    username = factory.user(agency, role="admin")
    assert service.authenticate(session=db, username=username, password=PASSWORD) == Principal(
        username=username, agency_code=agency, role="admin"
    )
    for name, password in ((username, "wrong password"), ("nobody-at-all", PASSWORD), (username, "")):
        with pytest.raises(InvalidCredentials):
            service.authenticate(session=db, username=name, password=password)
    inactive = factory.user(agency, active=False)
    with pytest.raises(InvalidCredentials):
        service.authenticate(session=db, username=inactive, password=PASSWORD)


def test_issue_token_uses_settings_lifetime(monkeypatch):
    from core.settings import get_settings

    monkeypatch.setenv("BW_ACCESS_TOKEN_MINUTES", "5")
    get_settings.cache_clear()
    token = issue_token(ALICE)
    assert token.expires_in == 300
    assert token.expires_at - datetime.now(timezone.utc) <= timedelta(minutes=5)
