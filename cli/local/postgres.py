"""The project-local PostgreSQL/PostGIS cluster: finding the server, initdb, its settings
(``borderwatch.conf``, ``pg_hba.conf``), start, the role and databases with PostGIS, stop."""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from pathlib import Path

from rich.console import Console

from cli.local.layout import (
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    SYSTEM_BASE,
    ServiceError,
    _choose_port,
    _clean_env,
    _cmdline,
    _ensure_dir,
    _Layout,
    _pid_alive,
    _run,
    _tail,
    _wait_gone,
    _which,
    _write_file,
    _write_state,
)
from core.settings import Settings

PG_PORT_START = 55432

# The owner of the databases and tables (migrations), and the runtime roles that own nothing
# (the API's and the ingest worker's; their rights: core/roles.py, granted by `borderwatch migrate`).
DB_ROLE = "borderwatch"
DB_API_ROLE = Settings.model_fields["db_api_role"].default
DB_INGEST_ROLE = Settings.model_fields["db_ingest_role"].default
DB_RUNTIME_ROLES = (DB_API_ROLE, DB_INGEST_ROLE)
DATABASES = ("borderwatch", "borderwatch_test")


# --------------------------------------------------------------------------- binaries


def _pg_bindir(major: str | None = None) -> Path | None:
    """Bin dir of a PostgreSQL server: ``major`` if given, else the highest installed."""
    found: list[tuple[int, Path]] = []
    for d in Path("/usr/lib/postgresql").glob("*/bin"):
        if d.parent.name.isdigit() and (d / "initdb").exists() and (d / "pg_ctl").exists():
            found.append((int(d.parent.name), d))
    if major is not None:
        return next((d for v, d in found if str(v) == major), None)
    if found:
        return max(found)[1]
    initdb, pg_ctl = _which("initdb"), _which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    return None


def _pg_major(bindir: Path) -> str:
    if bindir.parent.parent == Path("/usr/lib/postgresql"):
        return bindir.parent.name
    out = _run([bindir / "pg_ctl", "--version"], what="pg_ctl --version").stdout
    m = re.search(r"(\d+)", out)
    return m.group(1) if m else "?"


def _postgis_control(bindir: Path) -> Path:
    if bindir.parent.parent == Path("/usr/lib/postgresql"):
        return Path("/usr/share/postgresql") / bindir.parent.name / "extension" / "postgis.control"
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        share = _run([pg_config, "--sharedir"], what="pg_config --sharedir").stdout.strip()
        return Path(share) / "extension" / "postgis.control"
    return Path("/nonexistent/postgis.control")


# --------------------------------------------------------------------------- cluster


def _initdb_locale() -> str:
    """C.UTF-8 where the C library has it (Debian 12: built in), else plain C."""
    try:
        out = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "C"
    names = {ln.strip().lower().replace("-", "") for ln in out.splitlines()}
    return "C.UTF-8" if "c.utf8" in names else "C"


def _pg_pid(lay: _Layout) -> int | None:
    """PID of our postmaster (from postmaster.pid, checked against /proc), or None."""
    try:
        first = (lay.pg_data / "postmaster.pid").read_text().splitlines()[0].strip()
        pid = int(first)
    except (OSError, ValueError, IndexError):
        return None
    if not _pid_alive(pid):
        return None
    cmd = _cmdline(pid)
    if not cmd or "postgres" not in Path(cmd[0]).name or str(lay.pg_data) not in cmd:
        return None
    return pid


def _pg_superuser(lay: _Layout) -> str:
    return lay.pg_user


def _shared_buffers_mb() -> int:
    """A quarter of the machine's memory, between 256 MB and 4 GB (PostgreSQL's usual advice for a
    dedicated server: the ingest's indexes then stay in its cache instead of being written out by
    the inserting backends themselves)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return max(256, min(4096, int(line.split()[1]) // 1024 // 4))
    except (OSError, ValueError, IndexError):
        pass
    return 256


def _pg_conf(lay: _Layout, port: int) -> str:
    def q(v: object) -> str:
        return "'" + str(v).replace("'", "''") + "'"

    return f"""# Borderwatch project-local cluster: written by cli/local/postgres.py on every `services up`.
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = {q(lay.pg_socket_dir)}
unix_socket_permissions = 0700
max_connections = 100
shared_buffers = {_shared_buffers_mb()}MB
# Durability is a requirement: never trade it for speed here.
fsync = on
synchronous_commit = on
full_page_writes = on
# Fewer checkpoints under a steady insert load (each is followed by full-page images in the WAL);
# no JIT compilation for the ingest's short, frequent statements.
max_wal_size = 4GB
checkpoint_timeout = 15min
# Room for a few batches' WAL, so that inserting backends do not wait to write it themselves.
wal_buffers = 64MB
jit = off
password_encryption = scram-sha-256
log_line_prefix = '%m [%p] %q%u@%d '
log_min_duration_statement = -1
"""


def _pg_hba(lay: _Layout) -> str:
    return f"""# Borderwatch project-local cluster: written by cli/local/postgres.py.
# TYPE  DATABASE  USER              ADDRESS        METHOD
# Unix socket (directory mode 0700): only the cluster owner, as its own role.
local   all       {_pg_superuser(lay):<17} {"":<14} peer
# TCP on loopback only, passwords (SCRAM) for every role.
host    all       all               127.0.0.1/32   scram-sha-256
"""


def _pg_psql(lay: _Layout, bindir: Path, port: int, sql: str, *, what: str, db: str = "postgres", hide=()) -> str:
    cp = _run(
        [
            bindir / "psql",
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            lay.pg_socket_dir,
            "-p",
            str(port),
            "-U",
            _pg_superuser(lay),
            "-d",
            db,
        ],
        what=what,
        as_user=lay.pg_user,
        input=sql,
        hide=hide,
    )
    return cp.stdout


def _pg_up(lay: _Layout, state: dict, con: Console, avoid: set[int]) -> None:
    pg_version_file = lay.pg_data / "PG_VERSION"
    if pg_version_file.exists():
        major = pg_version_file.read_text().strip()
        bindir = _pg_bindir(major)
        if bindir is None:
            raise ServiceError(
                f"{lay.pg_data} was made by PostgreSQL {major}, whose server is not installed "
                f"(/usr/lib/postgresql/{major}/bin). Install postgresql-{major} and "
                f"postgresql-{major}-postgis-3, or run `borderwatch services down` and delete {lay.pg_dir}."
            )
    else:
        bindir = _pg_bindir()
        if bindir is None:
            raise ServiceError("No PostgreSQL server found; run scripts/install-system.sh.")
        major = _pg_major(bindir)
    if not _postgis_control(bindir).exists():
        raise ServiceError(
            f"PostGIS for PostgreSQL {major} is missing ({_postgis_control(bindir)}): "
            f"install postgresql-{major}-postgis-3 (scripts/install-system.sh)."
        )

    pid = _pg_pid(lay)
    if pid is not None:
        # Running: its port is whatever it listens on (postmaster.pid line 4), whatever the state says.
        with contextlib.suppress(OSError, ValueError, IndexError):
            state["pg_port"] = int((lay.pg_data / "postmaster.pid").read_text().splitlines()[3])
    port = _choose_port(state, "pg_port", PG_PORT_START, pid is not None, avoid, con, "PostgreSQL")
    _write_state(lay, state)

    if lay.root_mode:
        _ensure_dir(SYSTEM_BASE, mode=0o755, owner="root")
        _ensure_dir(lay.base_dir, mode=0o755, owner="root")
    _ensure_dir(lay.pg_dir, mode=0o700, owner=lay.pg_user)
    _ensure_dir(lay.pg_socket_dir, mode=0o700, owner=lay.pg_user)

    if not pg_version_file.exists():
        if lay.pg_data.exists() and any(lay.pg_data.iterdir()):
            raise ServiceError(f"{lay.pg_data} exists but is not a PostgreSQL data directory; move it away and retry.")
        with con.status(f"initdb PostgreSQL {major} cluster in {lay.pg_data} ..."):
            locale = _initdb_locale()
            _run(
                [
                    bindir / "initdb",
                    "-D",
                    lay.pg_data,
                    "-U",
                    _pg_superuser(lay),
                    "--auth-local=peer",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    f"--locale={locale}",
                    "--no-instructions",
                ],
                what="initdb",
                as_user=lay.pg_user,
                timeout=180,
            )
        con.print(f"[green]✓[/] PostgreSQL {major} cluster created in {lay.pg_data}")

    changed = _write_file(lay.pg_data / "borderwatch.conf", _pg_conf(lay, port), owner=lay.pg_user)
    changed |= _write_file(lay.pg_data / "pg_hba.conf", _pg_hba(lay), owner=lay.pg_user)
    main_conf = lay.pg_data / "postgresql.conf"
    text = main_conf.read_text()
    include = "include_if_exists = 'borderwatch.conf'"
    if include not in text:
        _write_file(
            main_conf,
            text.rstrip("\n") + f"\n\n# Borderwatch settings (cli/local/postgres.py)\n{include}\n",
            owner=lay.pg_user,
            only_if_changed=False,
        )
        changed = True

    if pid is not None:
        if changed:
            # Settings that need a restart (port, shared_buffers) are never changed while
            # running: the port is kept while the server runs. Reload for pg_hba & co.
            _run([bindir / "pg_ctl", "-D", lay.pg_data, "reload", "-s"], what="pg_ctl reload", as_user=lay.pg_user)
        con.print(f"[green]✓[/] PostgreSQL already running (pid {pid}, 127.0.0.1:{port})")
    else:
        with con.status(f"Starting PostgreSQL on 127.0.0.1:{port} ..."):
            try:
                _run(
                    [
                        bindir / "pg_ctl",
                        "-D",
                        lay.pg_data,
                        "-l",
                        lay.pg_log,
                        "-w",
                        "-t",
                        str(START_TIMEOUT_S),
                        "-s",
                        "start",
                    ],
                    what="pg_ctl start",
                    as_user=lay.pg_user,
                    timeout=START_TIMEOUT_S + 15,
                )
            except ServiceError as exc:
                raise ServiceError(f"{exc}\n--- {lay.pg_log} (last lines) ---\n{_tail(lay.pg_log)}") from None
        pid = _pg_pid(lay)
        con.print(f"[green]✓[/] PostgreSQL started (pid {pid}, 127.0.0.1:{port}, log {lay.pg_log})")

    # Role, databases, PostGIS: idempotent, as the superuser over the private socket.
    pw = state["db_password"]
    role_pws = state["db_role_passwords"]
    sql = []
    for role, password in ((DB_ROLE, pw), *((r, role_pws[r]) for r in DB_RUNTIME_ROLES)):
        lit = "'" + password.replace("'", "''") + "'"
        sql += [
            f"SELECT 'CREATE ROLE {role} LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') \\gexec",
            f"ALTER ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD {lit};",
        ]
    for db in DATABASES:
        sql.append(
            f"SELECT 'CREATE DATABASE {db} OWNER {DB_ROLE}' "
            f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{db}') \\gexec"
        )
    for db in DATABASES:
        sql.append(f"\\connect {db}")
        sql.append("CREATE EXTENSION IF NOT EXISTS postgis;")
        # Only the owner creates objects (PostgreSQL 15 and later revoke this already).
        sql.append("REVOKE CREATE ON SCHEMA public FROM PUBLIC;")
    with con.status("Creating roles, databases and PostGIS extension ..."):
        hide = [pw, *role_pws.values()]
        _pg_psql(lay, bindir, port, "\n".join(sql) + "\n", what="provisioning the database", hide=hide)

        # What the application will do: log in over TCP with the password.
        env = _clean_env()
        env["PGPASSWORD"] = pw
        deadline = time.monotonic() + 15
        while True:
            cp = _run(
                [
                    bindir / "psql",
                    "-X",
                    "-A",
                    "-t",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    DB_ROLE,
                    "-d",
                    DATABASES[0],
                    "-c",
                    "SELECT postgis_lib_version()",
                ],
                what="connecting as borderwatch over TCP",
                env=env,
                check=False,
            )
            if cp.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        if cp.returncode != 0:
            raise ServiceError(
                f"PostgreSQL on 127.0.0.1:{port} rejects role {DB_ROLE}: {(cp.stderr or cp.stdout).strip()}\n"
                f"--- {lay.pg_log} (last lines) ---\n{_tail(lay.pg_log)}"
            )
    con.print(
        f"[green]✓[/] databases {', '.join(DATABASES)} owned by {DB_ROLE} (runtime roles "
        f"{', '.join(DB_RUNTIME_ROLES)}), PostGIS {cp.stdout.strip()}"
    )


def _pg_down(lay: _Layout, con: Console) -> bool:
    pid = _pg_pid(lay)
    if pid is None:
        con.print("PostgreSQL: not running")
        return False
    major = (lay.pg_data / "PG_VERSION").read_text().strip()
    bindir = _pg_bindir(major) or _pg_bindir()
    if bindir is None:
        raise ServiceError(f"PostgreSQL {major} binaries are gone; stop pid {pid} by hand (kill -INT {pid}).")
    with con.status(f"Stopping PostgreSQL (pid {pid}) ..."):
        _run(
            [bindir / "pg_ctl", "-D", lay.pg_data, "-m", "fast", "-w", "-t", str(STOP_TIMEOUT_S), "-s", "stop"],
            what="pg_ctl stop",
            as_user=lay.pg_user,
            timeout=STOP_TIMEOUT_S + 15,
        )
    if _wait_gone(pid, 10):
        con.print(f"[green]✓[/] PostgreSQL stopped (pid {pid})")
        return True
    raise ServiceError(f"PostgreSQL pid {pid} still running after pg_ctl stop; see {lay.pg_log}")
