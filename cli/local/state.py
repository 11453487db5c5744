"""The state a setup keeps: ports, passwords and the JWT secret in ``services.json`` (made
once, recovered from the data directory when the run dir lost it), ``services.env`` for
:mod:`core.settings`, and external servers named in the environment instead."""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
from urllib.parse import urlsplit, urlunsplit

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from cli.local.layout import (
    ENV_FILE,
    STATE_FILE,
    STATE_VERSION,
    ServiceError,
    _current_user,
    _Layout,
    _read_env_file,
    _read_state,
    _write_file,
    _write_state,
    run_dir,
)
from cli.local.mosquitto import MQTT_API_USER, MQTT_INGEST_USER, MQTT_SERVICE_USERS
from cli.local.postgres import DATABASES, DB_API_ROLE, DB_INGEST_ROLE, DB_ROLE, DB_RUNTIME_ROLES

# --------------------------------------------------------------------------- external servers


def _external_urls() -> tuple[str, str] | None:
    """Both BW_DATABASE_URL and BW_MQTT_URL set in the environment to servers that are not ours."""
    db, mqtt = os.environ.get("BW_DATABASE_URL"), os.environ.get("BW_MQTT_URL")
    if not (db and mqtt):
        return None
    ours = _read_env_file(run_dir() / ENV_FILE)
    if ours.get("BW_DATABASE_URL") == db and ours.get("BW_MQTT_URL") == mqtt:
        return None  # our own services.env exported into the environment: manage them
    return db, mqtt


def _hide_password(url: str | None) -> str | None:
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# --------------------------------------------------------------------------- state setup


def _init_state(lay: _Layout, con: Console) -> dict:
    state = _read_state(lay.run_dir)
    new_here = state is None
    recovered = False
    if state is None and lay.root_mode and (lay.base_dir / STATE_FILE).exists():
        with contextlib.suppress(ServiceError):
            state = _read_state(lay.base_dir)
            if state and state.get("run_dir") == str(lay.run_dir):
                con.print(f"Recovered ports and passwords from {lay.base_dir / STATE_FILE}")
                recovered = True
            else:
                state = None
    if new_here and _holds_earlier_data(lay):
        _notice_reused_data(lay, con, recovered=recovered)
    if state is None:
        state = {
            "version": STATE_VERSION,
            "root_mode": lay.root_mode,
            "owner": _current_user(),
            "run_dir": str(lay.run_dir),
            "base_dir": str(lay.base_dir),
            "pg_socket_dir": str(lay.pg_socket_dir),
            "pg_port": None,
            "mqtt_port": None,
            "db_password": None,
            "db_role_passwords": {},
            "mqtt_passwords": {},
            "jwt_secret": None,
        }
        # A services.env without state (state deleted): keep its secrets, the database
        # role and the broker's passwd file were made with them.
        old = _read_env_file(lay.env_file)
        if old:
            db = urlsplit(old.get("BW_OWNER_DATABASE_URL") or old.get("BW_DATABASE_URL", ""))
            state["db_password"] = db.password if db.username in (None, DB_ROLE) else None
            for key in ("BW_DATABASE_URL", "BW_INGEST_DATABASE_URL"):
                u = urlsplit(old.get(key, ""))
                if u.username in DB_RUNTIME_ROLES and u.password:
                    state["db_role_passwords"][u.username] = u.password
            for key, user in (("BW_MQTT_URL", MQTT_INGEST_USER), ("BW_MQTT_API_URL", MQTT_API_USER)):
                u = urlsplit(old.get(key, ""))
                if u.username == user and u.password:
                    state["mqtt_passwords"][user] = u.password
            state["jwt_secret"] = old.get("BW_JWT_SECRET") or None
    changed = False
    if not state.get("db_password"):
        state["db_password"] = secrets.token_urlsafe(24)
        changed = True
    # A state written before the runtime roles existed gets their passwords now.
    role_pws = state.setdefault("db_role_passwords", {})
    for role in DB_RUNTIME_ROLES:
        if not role_pws.get(role):
            role_pws[role] = secrets.token_urlsafe(24)
            changed = True
    for user in MQTT_SERVICE_USERS:
        if not state["mqtt_passwords"].get(user):
            state["mqtt_passwords"][user] = secrets.token_urlsafe(24)
            changed = True
    if not state.get("jwt_secret"):
        state["jwt_secret"] = secrets.token_urlsafe(48)
        changed = True
    if changed or not lay.state_file.exists():
        _write_state(lay, state)
    return state


# --------------------------------------------------------------------------- env file


def _write_env(lay: _Layout, state: dict) -> None:
    pg, mq = state["pg_port"], state["mqtt_port"]
    pw = state["db_password"]
    rpw = state["db_role_passwords"]
    mpw = state["mqtt_passwords"]

    def db_url(role: str, password: str, db: str) -> str:
        return f"postgresql+psycopg://{role}:{password}@127.0.0.1:{pg}/{db}"

    lines = [
        "# Written by cli/local/state.py (`borderwatch services up`). Secrets: keep private (mode 600).",
        "# The API and the ingest worker connect as roles that own nothing; migrations as the owner.",
        f"BW_DATABASE_URL={db_url(DB_API_ROLE, rpw[DB_API_ROLE], DATABASES[0])}",
        f"BW_INGEST_DATABASE_URL={db_url(DB_INGEST_ROLE, rpw[DB_INGEST_ROLE], DATABASES[0])}",
        f"BW_OWNER_DATABASE_URL={db_url(DB_ROLE, pw, DATABASES[0])}",
        f"BW_TEST_DATABASE_URL={db_url(DB_ROLE, pw, DATABASES[1])}",
        f"BW_MQTT_URL=mqtt://{MQTT_INGEST_USER}:{mpw[MQTT_INGEST_USER]}@127.0.0.1:{mq}",
        f"BW_MQTT_API_URL=mqtt://{MQTT_API_USER}:{mpw[MQTT_API_USER]}@127.0.0.1:{mq}",
        f"BW_JWT_SECRET={state['jwt_secret']}",
        f"BW_MOSQUITTO_DIR={lay.mqtt_dir}",
    ]
    _write_file(lay.env_file, "\n".join(lines) + "\n", mode=0o600)


# --------------------------------------------------------------------------- earlier data


def _holds_earlier_data(lay: _Layout) -> bool:
    """Data from an earlier setup outside the run dir (root mode: /var/lib/borderwatch/<hash>),
    which a run dir without its own state -- e.g. a new clone at a path used before -- takes over."""
    if lay.base_dir == lay.run_dir:
        return False
    return (lay.pg_data / "PG_VERSION").exists() or (lay.mqtt_dir / "passwd").exists()


def purge_command() -> str:
    """The command that deletes this run dir's data (with ``BW_RUN_DIR`` when that is set)."""
    prefix = f"BW_RUN_DIR={shlex.quote(str(run_dir()))} " if os.environ.get("BW_RUN_DIR") else ""
    return f"{prefix}borderwatch services purge --yes"


def _notice_reused_data(lay: _Layout, con: Console, *, recovered: bool) -> None:
    what = "its ports and passwords are recovered, and" if recovered else "new passwords are set, and"
    con.print(
        Panel(
            f"{escape(str(lay.run_dir))} has no services of its own yet, but data from an earlier setup "
            f"at this path (a previous clone?) is in [bold]{escape(str(lay.base_dir))}[/]: {what} its "
            "databases and broker files (gateways' passwords included) are reused as they are.\n"
            f"To start afresh instead: [bold]{escape(purge_command())}[/] (or `make clean PURGE=1`), "
            "then `borderwatch services up` again.",
            title="Existing data taken over",
            title_align="left",
            border_style="yellow",
        )
    )
