"""Project-local PostgreSQL/PostGIS and Mosquitto for development, tests and benches.

``up()`` creates (once) and starts a PostgreSQL cluster with PostGIS and a Mosquitto
broker that belong to this checkout only, on free loopback ports, and writes
``<run dir>/services.env`` for :mod:`core.settings`. ``down()`` stops exactly those two
processes, ``status()`` reports them and ``reload_broker()`` makes the broker re-read
its password and ACL files. The system PostgreSQL (5432) and Mosquitto (1883) that
Debian's packages may start are never used or touched.

Where things live
-----------------
* run dir: ``$BW_RUN_DIR`` or ``<repo>/.run`` -- ``services.json`` (state: ports,
  passwords, directories; mode 600), ``services.env`` (mode 600), ``.services.lock``.
* not root: everything runs as the current user; data under the run dir:
  ``<run dir>/postgres/{data,socket,postgresql.log}`` and
  ``<run dir>/mosquitto/{mosquitto.conf,passwd,acl,service.passwd,service.acl,data/,
  mosquitto.log,mosquitto.pid}``.
* root: PostgreSQL refuses to run as root and Mosquitto drops to the ``mosquitto``
  user, and neither may be able to traverse the checkout (e.g. ``/root/x``, mode 700),
  so the same two trees live under ``/var/lib/borderwatch/<hash of the run dir>/``:
  ``postgres/`` (owner postgres, 0700; initdb/pg_ctl/psql run via
  ``runuser -u postgres``) and ``mosquitto/`` (owner mosquitto, 0700; the broker is
  started as root with ``user mosquitto``). Mosquitto 2.0.x parses its config as root,
  then drops privileges *before* it writes the pid file, opens the log and persistence
  and reads passwd/acl -- and a SIGHUP re-reads config, passwd and acl as ``mosquitto``
  -- so every file in that directory is owned by mosquitto, mode 0600.
* PostgreSQL's unix socket lives in ``postgres/socket`` (0700); if that path is too long
  for a unix socket (107 bytes) it moves to ``$TMPDIR/bw-pg-<hash>``.

* A run dir without ``services.json`` whose data directory already holds data (root
  mode: a new clone at a path used before) takes that data over, and ``up`` says so;
  :func:`purge` (``borderwatch services purge``, ``make clean PURGE=1``) stops the
  services and deletes their data for a fresh start.

Modules: ``layout`` (run dir, paths, state file, locks, files and owners, processes and
ports), ``postgres`` (the cluster), ``mosquitto`` (the broker), ``state`` (ports,
passwords, ``services.env``, external servers), ``packages`` (system packages); this
module holds the public API.

Public API: :func:`up`, :func:`down`, :func:`status`, :func:`print_status`,
:func:`reload_broker`, :func:`purge`, :func:`purge_targets`, :func:`mosquitto_dir`,
:func:`run_dir`, :class:`ServiceError`. Each takes an optional ``console`` (rich) and
otherwise prints to the package's ``console``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from broker import service as broker_access
from cli.local.layout import (
    ENV_FILE,
    LOCK_FILE,
    PORT_SEARCH_SPAN,
    REPO_ROOT,
    START_TIMEOUT_S,
    STATE_FILE,
    STATE_VERSION,
    STOP_TIMEOUT_S,
    SYSTEM_BASE,
    ServiceError,
    _chown_to,
    _current_user,
    _ensure_dir,
    _Layout,
    _layout,
    _listening_on,
    _locked,
    _proc_user,
    _read_env_file,
    _read_state,
    _tail,
    _write_file,
    _write_state,
    mosquitto_dir,
    run_dir,
)
from cli.local.mosquitto import (
    MQTT_API_USER,
    MQTT_INGEST_USER,
    MQTT_MAX_PACKET_SIZE,
    MQTT_PORT_START,
    MQTT_SERVICE_USERS,
    _broker_pid,
    _mosquitto_conf,
    _mqtt_connect_rc,
    _mqtt_down,
    _mqtt_up,
    _service_acl,
)
from cli.local.packages import INSTALL_SCRIPT, _ensure_system_packages
from cli.local.postgres import (
    DATABASES,
    DB_API_ROLE,
    DB_INGEST_ROLE,
    DB_ROLE,
    PG_PORT_START,
    _pg_down,
    _pg_pid,
    _pg_up,
    _shared_buffers_mb,
)
from cli.local.state import (
    _external_urls,
    _hide_password,
    _init_state,
    _write_env,
    purge_command,
)

# The public API (up, down, status, print_status, reload_broker, purge, purge_targets,
# purge_command, mosquitto_dir, run_dir, ServiceError); the names the compose file, the
# docker/ files and the tests share with the code; the helpers the tests reach as
# ``local._name`` (tests/test_services.py, tests/test_compose.py).
__all__ = [
    "DATABASES",
    "DB_API_ROLE",
    "DB_INGEST_ROLE",
    "DB_ROLE",
    "ENV_FILE",
    "INSTALL_SCRIPT",
    "LOCK_FILE",
    "MQTT_API_USER",
    "MQTT_INGEST_USER",
    "MQTT_MAX_PACKET_SIZE",
    "MQTT_PORT_START",
    "MQTT_SERVICE_USERS",
    "PG_PORT_START",
    "PORT_SEARCH_SPAN",
    "REPO_ROOT",
    "START_TIMEOUT_S",
    "STATE_FILE",
    "STATE_VERSION",
    "STOP_TIMEOUT_S",
    "SYSTEM_BASE",
    "ServiceError",
    "_Layout",
    "_external_urls",
    "_mosquitto_conf",
    "_service_acl",
    "_shared_buffers_mb",
    "down",
    "mosquitto_dir",
    "print_status",
    "purge",
    "purge_command",
    "purge_targets",
    "reload_broker",
    "run_dir",
    "status",
    "up",
]

console = Console()


# --------------------------------------------------------------------------- public API


def up(console: Console | None = None) -> dict:
    """Create (first time) and start the project-local PostgreSQL/PostGIS and Mosquitto.

    Idempotent: running services are left alone; ports, passwords and the JWT secret are
    kept in ``<run dir>/services.json``. Writes ``<run dir>/services.env``. Returns
    :func:`status`. If BW_DATABASE_URL and BW_MQTT_URL both point elsewhere, does nothing.
    """
    con = console or globals()["console"]
    ext = _external_urls()
    if ext:
        con.print(
            "[cyan]External servers in use[/] (BW_DATABASE_URL and BW_MQTT_URL are set): "
            f"{_hide_password(ext[0])}, {_hide_password(ext[1])}. Nothing to start."
        )
        return {"external": True, "database_url": _hide_password(ext[0]), "mqtt_url": _hide_password(ext[1])}

    _ensure_system_packages(con)
    rd = run_dir()
    with _locked(rd):
        lay = _layout()
        state = _init_state(lay, con)
        if lay.root_mode:
            _ensure_dir(SYSTEM_BASE, mode=0o755, owner="root")
            _ensure_dir(lay.base_dir, mode=0o755, owner="root")
            _write_file(
                lay.base_dir / "instance.json",
                json.dumps({"run_dir": str(lay.run_dir), "repo": str(REPO_ROOT)}, indent=2) + "\n",
                mode=0o644,
            )
        who = "as root, processes run as postgres/mosquitto" if lay.root_mode else f"as {_current_user()}"
        con.print(f"Borderwatch services ({who}; data in {lay.base_dir})")
        _pg_up(lay, state, con, avoid={state["mqtt_port"]} if state.get("mqtt_port") else set())
        _mqtt_up(lay, state, con, avoid={state["pg_port"]})
        _write_state(lay, state)
        _write_env(lay, state)
        con.print(f"[green]✓[/] {lay.env_file} written")
        _ensure_audit_key(con)
        info = status()
    print_status(info, con)
    return info


def _ensure_audit_key(con: Console) -> None:
    """The key that signs the audit chain's checkpoints, made once (mode 0600, outside the database)."""
    from audit import checkpoints
    from core.settings import Settings

    key_file = Path(Settings().audit_key_file)
    if not key_file.exists():
        kid = checkpoints.generate_key(key_file)
        con.print(f"[green]✓[/] audit signing key {kid} written to {key_file}")


def down(console: Console | None = None) -> dict:
    """Stop exactly the PostgreSQL and Mosquitto that :func:`up` started for this run dir."""
    con = console or globals()["console"]
    rd = run_dir()
    if _read_state(rd) is None:
        con.print(f"No Borderwatch services set up in {rd}: nothing to stop.")
        return status()
    with _locked(rd):
        lay = _layout()
        _mqtt_down(lay, con)
        _pg_down(lay, con)
        return status()


def status() -> dict:
    """What runs: for ``postgres`` and ``mosquitto``: running, port, pid, data dir, url (no password)."""
    rd = run_dir()
    state = _read_state(rd) or {}
    lay = _layout(state or None)
    env = _read_env_file(lay.env_file)
    pg_pid = _pg_pid(lay)
    mq_pid = _broker_pid(lay)
    pg_port, mq_port = state.get("pg_port"), state.get("mqtt_port")
    info: dict = {
        "run_dir": str(lay.run_dir),
        "base_dir": str(lay.base_dir),
        "root_mode": lay.root_mode,
        "env_file": str(lay.env_file) if lay.env_file.exists() else None,
        "postgres": {
            "running": pg_pid is not None and bool(pg_port) and _listening_on(pg_pid, pg_port),
            "pid": pg_pid,
            "port": pg_port,
            "data_dir": str(lay.pg_data),
            "socket_dir": str(lay.pg_socket_dir),
            "log": str(lay.pg_log),
            "user": _proc_user(pg_pid) if pg_pid else lay.pg_user,
            "url": _hide_password(env.get("BW_DATABASE_URL")),
            "test_url": _hide_password(env.get("BW_TEST_DATABASE_URL")),
        },
        "mosquitto": {
            "running": mq_pid is not None and bool(mq_port) and _listening_on(mq_pid, mq_port),
            "pid": mq_pid,
            "port": mq_port,
            "data_dir": str(lay.mqtt_dir),
            "config": str(lay.mqtt_conf),
            "log": str(lay.mqtt_log),
            "user": _proc_user(mq_pid) if mq_pid else lay.mqtt_user,
            "url": _hide_password(env.get("BW_MQTT_URL")),
            "api_url": _hide_password(env.get("BW_MQTT_API_URL")),
        },
    }
    ext = _external_urls()
    if ext:
        info["external"] = {"database_url": _hide_password(ext[0]), "mqtt_url": _hide_password(ext[1])}
    return info


def print_status(info: dict | None = None, console: Console | None = None) -> dict:
    """Print :func:`status` (or ``info``) as a rich table; returns the dict."""
    con = console or globals()["console"]
    info = info or status()
    if info.get("external") is True:
        con.print(f"External servers: {info.get('database_url')}, {info.get('mqtt_url')}")
        return info
    table = Table(title=f"Borderwatch services ({info['run_dir']})")
    for col in ("service", "state", "port", "pid", "user"):
        table.add_column(col, no_wrap=True)
    table.add_column("data dir", overflow="fold")
    for name, label in (("postgres", "PostgreSQL"), ("mosquitto", "Mosquitto")):
        svc = info[name]
        table.add_row(
            label,
            "[green]running[/]" if svc["running"] else "[red]stopped[/]",
            str(svc["port"] or "-"),
            str(svc["pid"] or "-"),
            svc.get("user") or "-",
            svc["data_dir"],
        )
    con.print(table)
    pg, mq = info["postgres"], info["mosquitto"]
    for label, value in (
        ("database", pg.get("url")),
        ("test database", pg.get("test_url")),
        ("mqtt (ingest)", mq.get("url")),
        ("mqtt (api)", mq.get("api_url")),
        ("env file", info.get("env_file")),
    ):
        if value:
            con.print(f"  {label + ':':<15} {value}", highlight=False, soft_wrap=True)
    if isinstance(info.get("external"), dict):
        ext = info["external"]
        con.print(
            f"[cyan]Note:[/] the environment points at external servers: {ext['database_url']}, {ext['mqtt_url']}"
        )
    return info


def reload_broker(console: Console | None = None) -> bool:
    """SIGHUP our Mosquitto so it re-reads passwd/acl (and its config). False if external servers are used."""
    con = console or globals()["console"]
    ext = _external_urls()
    if ext:
        con.print(f"External MQTT broker in use ({_hide_password(ext[1])}): nothing to reload here.")
        return False
    lay = _layout()
    pid = _broker_pid(lay)
    if pid is None:
        raise ServiceError("Borderwatch's Mosquitto is not running: run `borderwatch services up` first.")
    for name in ("passwd", "acl"):
        path = lay.mqtt_dir / name
        if not path.exists():
            raise ServiceError(f"{path} is missing; the broker would reject everyone. Recreate it (services up).")
        # Files rewritten by root must stay readable by the (unprivileged) broker.
        _chown_to(path, lay.mqtt_user, 0o600)
    try:
        broker_access.signal_reload(pid, lay.mqtt_log)
    except broker_access.BrokerReloadFailed as exc:
        raise ServiceError(f"{exc.message}\n{_tail(lay.mqtt_log)}") from None
    state = _read_state(lay.run_dir) or {}
    port, ingest_pw = state.get("mqtt_port"), state.get("mqtt_passwords", {}).get(MQTT_INGEST_USER)
    if port and ingest_pw and _mqtt_connect_rc(port, MQTT_INGEST_USER, ingest_pw) != 0:
        raise ServiceError(
            f"After the reload the broker rejects {MQTT_INGEST_USER}: {lay.mqtt_dir / 'passwd'} must keep "
            f"the entries of service.passwd (and acl those of service.acl)."
        )
    con.print(f"[green]✓[/] Mosquitto (pid {pid}) reloaded passwd and acl")
    return True


# --------------------------------------------------------------------------- starting afresh


def purge_targets() -> list[Path]:
    """What :func:`purge` would delete for this run dir (nothing that is not this run dir's)."""
    return _purge_targets(_layout())


def _purge_targets(lay: _Layout) -> list[Path]:
    rd = lay.run_dir
    targets: list[Path] = []
    if lay.base_dir == rd:
        targets += [p for p in (lay.pg_dir, lay.mqtt_dir) if p.exists()]
    elif lay.base_dir.exists():
        # Root mode: /var/lib/borderwatch/<hash of the run dir>, and only if it is this run dir's.
        if lay.base_dir.parent != SYSTEM_BASE:
            raise ServiceError(f"{lay.base_dir} is not under {SYSTEM_BASE}; delete it by hand if it is unused.")
        for name in ("instance.json", STATE_FILE):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                owner = json.loads((lay.base_dir / name).read_text()).get("run_dir")
                if owner and owner != str(rd):
                    raise ServiceError(f"{lay.base_dir} belongs to run dir {owner}, not {rd}: left alone.")
        targets.append(lay.base_dir)
    sock = lay.pg_socket_dir
    if (
        sock.exists()
        and not sock.is_relative_to(lay.base_dir)
        and sock.parent == Path(tempfile.gettempdir())
        and sock.name.startswith("bw-pg-")
    ):
        targets.append(sock)
    targets += [p for p in (lay.state_file, lay.env_file) if p.exists()]
    return targets


def purge(console: Console | None = None) -> dict:
    """Stop this run dir's services and delete their data: the PostgreSQL cluster, the broker's
    files (gateways' passwords included), ports, passwords and the JWT secret -- as root also the
    data kept under /var/lib/borderwatch/<hash of the run dir>. The next :func:`up` starts afresh.
    Returns ``{"run_dir": ..., "removed": [paths]}``."""
    con = console or globals()["console"]
    rd = run_dir()
    # No lock file is made in a run dir that does not exist (a new clone, data left from an old one).
    with _locked(rd) if rd.exists() else contextlib.nullcontext():
        lay = _layout()
        targets = _purge_targets(lay)
        if not targets:
            con.print(f"Nothing to purge for {rd}.")
            return {"run_dir": str(rd), "removed": []}
        # Whatever the state file says, nothing may still run on the data about to go.
        _mqtt_down(lay, con)
        _pg_down(lay, con)
        for path in targets:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
            con.print(f"[green]✓[/] removed {path}")
    return {"run_dir": str(rd), "removed": [str(p) for p in targets]}
