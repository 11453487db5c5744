"""Sign-in throttling: failed sign-ins counted per account and per client address, with back-off.

The counts live in PostgreSQL (``login_throttle``) so that every API process behind a balancer
shares them: with counts in each process's memory, N processes would give an attacker N times
the budget, and a restart would forget it. An attempt costs one indexed read before any password
is hashed; a failure one upsert. Keys name any account, known or not, so the answer to a blocked
attempt says nothing about which usernames exist.

The first ``login_account_free_failures`` failures of an account within ``login_window_s`` (and
the first ``login_address_free_failures`` from one address) cost nothing; each further failure
blocks that key for ``login_backoff_s`` × 2^(n-1), at most ``login_backoff_max_s``. Attempts refused
while blocked are not counted, so a flood does not stretch the block, and a success clears the
account's count (not the address's: one valid account must not reset an address's budget).
Callers own the transaction; a failure must be recorded in a transaction of its own, since the
sign-in's own is rolled back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.errors import TooManyRequests
from core.settings import Settings, get_settings

ACCOUNT = "account:"
ADDRESS = "address:"
KEY_LENGTH = 160


class LoginThrottled(TooManyRequests):
    code = "too_many_attempts"


@dataclass(frozen=True)
class LoginKeys:
    """The throttle keys one sign-in attempt counts against."""

    account: str
    address: str | None

    def all(self) -> list[str]:
        return [k for k in (self.account, self.address) if k]


def keys_for(*, username: str, address: str | None) -> LoginKeys:
    return LoginKeys(
        account=(ACCOUNT + (username or ""))[:KEY_LENGTH], address=(ADDRESS + address)[:KEY_LENGTH] if address else None
    )


def check(*, session: Session, keys: LoginKeys) -> None:
    """Refuse (``LoginThrottled``, 429 with ``Retry-After``) while the account or the address is blocked."""
    wait = session.execute(
        text(
            "SELECT EXTRACT(EPOCH FROM max(blocked_until) - clock_timestamp()) FROM login_throttle "
            "WHERE key = ANY(:keys) AND blocked_until > clock_timestamp()"
        ),
        {"keys": keys.all()},
    ).scalar()
    if wait is not None and wait > 0:
        seconds = max(1, math.ceil(float(wait)))
        raise LoginThrottled(f"too many failed sign-ins; try again in {seconds} s", retry_after=seconds)


_FAILURES = (
    "(CASE WHEN t.first_failure_at < clock_timestamp() - make_interval(secs => :window) THEN 1 ELSE t.failures + 1 END)"
)
_RECORD = f"""
INSERT INTO login_throttle AS t (key, failures, first_failure_at, last_failure_at, blocked_until)
VALUES (:key, 1, clock_timestamp(), clock_timestamp(),
        CASE WHEN 1 > :free THEN clock_timestamp() + make_interval(secs => :base) END)
ON CONFLICT (key) DO UPDATE SET
    failures = {_FAILURES},
    first_failure_at = CASE WHEN t.first_failure_at < clock_timestamp() - make_interval(secs => :window)
                            THEN clock_timestamp() ELSE t.first_failure_at END,
    last_failure_at = clock_timestamp(),
    blocked_until = CASE WHEN {_FAILURES} > :free
                         THEN clock_timestamp() + make_interval(secs => least(
                             CAST(:max AS float8), :base * power(2, least({_FAILURES} - :free - 1, 30))))
                         END
"""


def record_failure(*, session: Session, keys: LoginKeys, settings: Settings | None = None) -> None:
    """Count one failed sign-in against the account and the address; block them if over their budget."""
    settings = settings or get_settings()
    budgets = [(keys.account, settings.login_account_free_failures)]
    if keys.address:
        budgets.append((keys.address, settings.login_address_free_failures))
    for key, free in budgets:
        session.execute(
            text(_RECORD),
            {
                "key": key,
                "free": free,
                "window": float(settings.login_window_s),
                "base": float(settings.login_backoff_s),
                "max": float(settings.login_backoff_max_s),
            },
        )
    # Forget what the window no longer counts (the index on last_failure_at keeps this cheap).
    session.execute(
        text(
            "DELETE FROM login_throttle WHERE last_failure_at < clock_timestamp() - make_interval(secs => :window) "
            "AND (blocked_until IS NULL OR blocked_until < clock_timestamp())"
        ),
        {"window": float(settings.login_window_s)},
    )


def record_success(*, session: Session, keys: LoginKeys) -> None:
    """A successful sign-in clears the account's failures."""
    session.execute(text("DELETE FROM login_throttle WHERE key = :key"), {"key": keys.account})
