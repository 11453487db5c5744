"""The rights of the runtime database roles (docs/security.md#database-roles).

The role that runs the migrations owns every table. The API's role and the ingest worker's own
nothing and get only the rights they use: reading and writing rows, no TRUNCATE, no DDL, and on
the append-only tables (``APPEND_ONLY``) only SELECT and INSERT. As they own none of the tables
they can neither ALTER them nor disable their triggers. The ingest worker may not read the
accounts (``INGEST_DENIED``).

:func:`grant_runtime_rights` is idempotent: migration ``0015_runtime_roles`` runs it, and so does
``borderwatch migrate`` after every upgrade, so a role created after the migration still gets its
rights. Default privileges give the runtime roles the same row rights on every table the owner
creates later; a migration that adds an append-only table revokes UPDATE and DELETE on it (add it
to ``APPEND_ONLY``).
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import text
from sqlalchemy.engine import Connection

log = logging.getLogger("borderwatch.roles")

# Written once, never changed: the runtime roles may add rows and read them, nothing else.
APPEND_ONLY = ("audit_log", "audit_checkpoints", "custody_events")
# Tables the ingest worker has no business reading (password hashes, sign-in failures).
INGEST_DENIED = ("users", "login_throttle")
ROW_RIGHTS = "SELECT, INSERT, UPDATE, DELETE"
SEQUENCE_RIGHTS = "USAGE, SELECT, UPDATE"
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _ident(name: str) -> str:
    if not _ROLE_NAME.match(name):
        raise ValueError(f"not a plain role name: {name!r}")
    return f'"{name}"'


def _existing(conn: Connection, roles: list[str]) -> list[str]:
    found = set(conn.execute(text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:r)"), {"r": roles}).scalars())
    for role in roles:
        if role not in found:
            log.warning("database role %s does not exist: no rights granted to it", role)
    return [r for r in roles if r in found]


def _owned(conn: Connection, kind: str) -> list[str]:
    """The tables (``r``, ``p``) or sequences (``S``) of schema public that the current role owns."""
    kinds = ["r", "p"] if kind == "table" else ["S"]
    return list(
        conn.execute(
            text(
                """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'public' AND c.relkind = ANY(:k)
                     AND pg_get_userbyid(c.relowner) = current_user ORDER BY c.relname"""
            ),
            {"k": kinds},
        ).scalars()
    )


def grant_runtime_rights(conn: Connection, *, api_role: str, ingest_role: str) -> list[str]:
    """Give the runtime roles that exist their rights on what the current role owns; returns them."""
    roles = [r for r in dict.fromkeys((api_role, ingest_role)) if r]
    current = conn.execute(text("SELECT current_user")).scalar_one()
    if current in roles:
        raise ValueError(f"the runtime role {current} may not own the tables: migrate as the owner role")
    roles = _existing(conn, roles)
    tables, sequences = _owned(conn, "table"), _owned(conn, "sequence")
    for role in roles:
        r = _ident(role)
        for table in tables:
            conn.execute(text(f'REVOKE ALL ON TABLE "{table}" FROM {r}'))
            if role == ingest_role and role != api_role and table in INGEST_DENIED:
                continue
            rights = "SELECT, INSERT" if table in APPEND_ONLY else ROW_RIGHTS
            conn.execute(text(f'GRANT {rights} ON TABLE "{table}" TO {r}'))
        for sequence in sequences:
            conn.execute(text(f'GRANT {SEQUENCE_RIGHTS} ON SEQUENCE "{sequence}" TO {r}'))
        conn.execute(text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {ROW_RIGHTS} ON TABLES TO {r}"))
        conn.execute(text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {SEQUENCE_RIGHTS} ON SEQUENCES TO {r}"))
    return roles


def revoke_runtime_rights(conn: Connection, *, api_role: str, ingest_role: str) -> None:
    """Undo :func:`grant_runtime_rights` (the migration's downgrade)."""
    roles = _existing(conn, [r for r in dict.fromkeys((api_role, ingest_role)) if r])
    for role in roles:
        r = _ident(role)
        for table in _owned(conn, "table"):
            conn.execute(text(f'REVOKE ALL ON TABLE "{table}" FROM {r}'))
        for sequence in _owned(conn, "sequence"):
            conn.execute(text(f'REVOKE ALL ON SEQUENCE "{sequence}" FROM {r}'))
        conn.execute(text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM {r}"))
        conn.execute(text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM {r}"))
