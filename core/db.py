"""Database engine and the transaction scope every entry point uses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.errors import ConfigurationError
from core.settings import get_settings


def make_engine(url: str | None = None, **kwargs) -> Engine:
    url = url or get_settings().database_url
    if not url:
        raise ConfigurationError(
            "BW_DATABASE_URL is not set: run `borderwatch services up` or point it at a PostGIS database"
        )
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    return create_engine(url, **kwargs)


@lru_cache
def get_engine() -> Engine:
    return make_engine()


@lru_cache
def _sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back on any error."""
    factory = sessionmaker(bind=engine, expire_on_commit=False) if engine else _sessionmaker()
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
