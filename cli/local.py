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

Public API: :func:`up`, :func:`down`, :func:`status`, :func:`print_status`,
:func:`reload_broker`, :func:`mosquitto_dir`, :func:`run_dir`, :class:`ServiceError`.
Each takes an optional ``console`` (rich) and otherwise prints to the module's ``console``.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from rich.console import Console
from rich.table import Table

from broker import service as broker_access

REPO_ROOT = Path(__file__).resolve().parent.parent
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-system.sh"
SYSTEM_BASE = Path("/var/lib/borderwatch")

PG_PORT_START = 55432
MQTT_PORT_START = 51883
PORT_SEARCH_SPAN = 500

DB_ROLE = "borderwatch"
DATABASES = ("borderwatch", "borderwatch_test")
MQTT_INGEST_USER = "bw-ingest"
MQTT_API_USER = "bw-api"
MQTT_SERVICE_USERS = (MQTT_INGEST_USER, MQTT_API_USER)
MQTT_TOPIC_ACL = "borderwatch/#"

STATE_FILE = "services.json"
ENV_FILE = "services.env"
LOCK_FILE = ".services.lock"
STATE_VERSION = 1

# Largest MQTT packet the broker accepts (the whole packet, not just the payload --
# mosquitto.conf(5)): 1 MiB of payload plus 64 KiB for fixed header, topic and v5
# properties, so payloads up to 1 MiB reach the ingest worker, which dead-letters the
# ones above its own BW_MAX_PAYLOAD_BYTES.
MQTT_MAX_PACKET_SIZE = 1024 * 1024 + 64 * 1024

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30

console = Console()


class ServiceError(Exception):
    """A service could not be set up, started, stopped or reached; the message says what to do."""


# --------------------------------------------------------------------------- paths


def run_dir() -> Path:
    """``$BW_RUN_DIR`` or ``<repo root>/.run`` (the repo root is the parent of ``core/``)."""
    raw = os.environ.get("BW_RUN_DIR")
    return Path(raw).expanduser().resolve() if raw else (REPO_ROOT / ".run").resolve()


def _is_root() -> bool:
    return os.geteuid() == 0


def _instance_hash(rd: Path) -> str:
    return hashlib.sha256(str(rd).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class _Layout:
    run_dir: Path
    root_mode: bool
    base_dir: Path
    pg_socket_dir: Path

    @property
    def state_file(self) -> Path:
        return self.run_dir / STATE_FILE

    @property
    def env_file(self) -> Path:
        return self.run_dir / ENV_FILE

    @property
    def pg_dir(self) -> Path:
        return self.base_dir / "postgres"

    @property
    def pg_data(self) -> Path:
        return self.pg_dir / "data"

    @property
    def pg_log(self) -> Path:
        return self.pg_dir / "postgresql.log"

    @property
    def mqtt_dir(self) -> Path:
        return self.base_dir / "mosquitto"

    @property
    def mqtt_conf(self) -> Path:
        return self.mqtt_dir / "mosquitto.conf"

    @property
    def mqtt_pid_file(self) -> Path:
        return self.mqtt_dir / "mosquitto.pid"

    @property
    def mqtt_log(self) -> Path:
        return self.mqtt_dir / "mosquitto.log"

    @property
    def mqtt_persistence(self) -> Path:
        return self.mqtt_dir / "data"

    @property
    def pg_user(self) -> str:
        return "postgres" if self.root_mode else _current_user()

    @property
    def mqtt_user(self) -> str:
        return "mosquitto" if self.root_mode else _current_user()


def _current_user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError as exc:  # a uid without a passwd entry (some containers)
        raise ServiceError(
            f"uid {os.geteuid()} has no entry in /etc/passwd; PostgreSQL needs a named user. "
            "Run as a regular user or as root."
        ) from exc


def _default_layout(rd: Path) -> _Layout:
    root = _is_root()
    base = SYSTEM_BASE / _instance_hash(rd) if root else rd
    sock = base / "postgres" / "socket"
    # A unix socket path is limited to 107 bytes; PostgreSQL appends /.s.PGSQL.<port>.
    if len(str(sock)) + len("/.s.PGSQL.65535") > 100:
        sock = Path(tempfile.gettempdir()) / f"bw-pg-{_instance_hash(rd)}"
    return _Layout(run_dir=rd, root_mode=root, base_dir=base, pg_socket_dir=sock)


def _layout(state: dict | None = None) -> _Layout:
    rd = run_dir()
    if state is None:
        state = _read_state(rd)
    if not state:
        return _default_layout(rd)
    lay = _Layout(
        run_dir=rd,
        root_mode=bool(state["root_mode"]),
        base_dir=Path(state["base_dir"]),
        pg_socket_dir=Path(state["pg_socket_dir"]),
    )
    if lay.root_mode and not _is_root():
        raise ServiceError(
            f"The services of {rd} were set up as root (data in {lay.base_dir}); "
            "run `borderwatch services ...` as root (sudo), or use another BW_RUN_DIR."
        )
    if not lay.root_mode and _is_root() and state.get("owner") not in (None, "root"):
        raise ServiceError(
            f"The services of {rd} belong to user {state.get('owner')!r} (data in {lay.base_dir}); "
            f"run `borderwatch services ...` as that user, not as root."
        )
    return lay


def mosquitto_dir() -> Path:
    """Directory of the project-local broker: mosquitto.conf, passwd, acl, service.passwd, ..."""
    return _layout().mqtt_dir


# --------------------------------------------------------------------------- state / files


def _read_state(rd: Path) -> dict | None:
    path = rd / STATE_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ServiceError(f"Cannot read {path}: {exc}. Fix or delete it (ports/passwords are kept there).") from exc
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise ServiceError(f"{path} has an unknown format; delete it and run `borderwatch services up` again.")
    return data


def _write_file(
    path: Path, content: str, *, mode: int = 0o600, owner: str | None = None, only_if_changed: bool = True
) -> bool:
    """Write atomically with ``mode`` (and owner when root). Returns True if the file changed."""
    if only_if_changed and path.exists():
        try:
            st = path.stat()
            same_owner = owner is None or not _is_root() or st.st_uid == pwd.getpwnam(owner).pw_uid
            if path.read_text() == content and (st.st_mode & 0o777) == mode and same_owner:
                return False
        except OSError:
            pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(content)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            if owner and _is_root():
                pw = pwd.getpwnam(owner)
                os.fchown(fh.fileno(), pw.pw_uid, pw.pw_gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True


def _write_state(lay: _Layout, state: dict) -> None:
    text = json.dumps(state, indent=2, sort_keys=True) + "\n"
    _write_file(lay.state_file, text, mode=0o600)
    if lay.root_mode and lay.base_dir.is_dir():
        # A root-only copy next to the data: if the run dir is deleted (`make clean`) while
        # /var/lib/borderwatch/<hash> stays, the next `up` gets the same passwords back.
        _write_file(lay.base_dir / STATE_FILE, text, mode=0o600)


def _ensure_dir(path: Path, *, mode: int, owner: str | None = None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if owner and _is_root():
        pw = pwd.getpwnam(owner)
        st = path.stat()
        if (st.st_uid, st.st_gid) != (pw.pw_uid, pw.pw_gid):
            os.chown(path, pw.pw_uid, pw.pw_gid)
    if (path.stat().st_mode & 0o777) != mode:
        os.chmod(path, mode)


def _chown_to(path: Path, owner: str, mode: int) -> None:
    if _is_root():
        pw = pwd.getpwnam(owner)
        os.chown(path, pw.pw_uid, pw.pw_gid)
    os.chmod(path, mode)


def _read_env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key.strip()] = value.strip().strip("'\"")
    return out


@contextlib.contextmanager
def _locked(rd: Path) -> Iterator[None]:
    rd.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(rd, 0o700)
    with open(rd / LOCK_FILE, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# --------------------------------------------------------------------------- processes


def _clean_env() -> dict[str, str]:
    # PG* variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATA...) must not redirect our tools.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LANG", "C.UTF-8")
    return env


def _redact(text: str, secrets_: Sequence[str]) -> str:
    for s in secrets_:
        if s:
            text = text.replace(s, "******")
    return text


def _run(
    cmd: Sequence[str],
    *,
    what: str,
    as_user: str | None = None,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    check: bool = True,
    hide: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run a command (as ``as_user`` via runuser when we are root); raise ServiceError with its output."""
    full = [str(c) for c in cmd]
    if as_user and _is_root() and as_user != "root":
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        full = [runuser, "-u", as_user, "--", *full]
    shown = _redact(" ".join(full), hide)
    try:
        cp = subprocess.run(
            full,
            input=input,
            capture_output=True,
            text=True,
            env=env or _clean_env(),
            cwd="/",  # initdb/pg_ctl fail if they cannot read the current directory
            timeout=timeout,
        )
    except FileNotFoundError as exc:
        raise ServiceError(f"{what}: {full[0]} not found. Run scripts/install-system.sh.") from exc
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(f"{what}: `{shown}` did not finish within {timeout:.0f}s.") from exc
    if check and cp.returncode != 0:
        output = _redact((cp.stdout or "") + (cp.stderr or ""), hide).strip()
        raise ServiceError(f"{what} failed (exit {cp.returncode}): `{shown}`\n{output}")
    return cp


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not running any more.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _proc_user(pid: int) -> str | None:
    try:
        uid = Path(f"/proc/{pid}").stat().st_uid
        return pwd.getpwuid(uid).pw_name
    except (OSError, KeyError):
        return None


def _read_from(path: Path, offset: int) -> str:
    """What was appended to a log since ``offset``."""
    try:
        with open(path, errors="replace") as fh:
            fh.seek(offset)
            return fh.read()
    except OSError:
        return ""


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read {path}: {exc})"


# --------------------------------------------------------------------------- ports


def _port_free(port: int) -> bool:
    # SO_REUSEADDR like PostgreSQL and Mosquitto use themselves: a port in TIME_WAIT
    # is usable, one that something listens on is not.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_port(start: int, avoid: set[int]) -> int:
    for port in range(start, start + PORT_SEARCH_SPAN):
        if port not in avoid and _port_free(port):
            return port
    raise ServiceError(f"No free TCP port on 127.0.0.1 in {start}-{start + PORT_SEARCH_SPAN - 1}; free one and retry.")


def _listening_on(pid: int, port: int) -> bool:
    """Process ``pid`` itself holds the listening socket on 127.0.0.1:port (not some other process)."""
    inodes: set[str] = set()
    wanted = {f"0100007F:{port:04X}", f"00000000:{port:04X}"}
    with contextlib.suppress(OSError):
        for ln in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            f = ln.split()
            if len(f) > 9 and f[1] in wanted and f[3] == "0A":
                inodes.add(f[9])
    if not inodes:
        return False
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except PermissionError:  # not ours to inspect: settle for "something listens"
        return True
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(fd) in {f"socket:[{i}]" for i in inodes}:
                return True
    return False


def _port_accepts(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- binaries


def _which(name: str) -> str | None:
    path = os.environ.get("PATH", "")
    return shutil.which(name, path=f"{path}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")


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


def _missing_components() -> list[str]:
    missing: list[str] = []
    bindir = _pg_bindir()
    if bindir is None:
        missing.append("PostgreSQL server (initdb/pg_ctl under /usr/lib/postgresql/<major>/bin)")
    elif not _postgis_control(bindir).exists():
        missing.append(f"PostGIS 3 for PostgreSQL {_pg_major(bindir)} ({_postgis_control(bindir)})")
    for name in ("mosquitto", "mosquitto_passwd", "mosquitto_pub", "mosquitto_sub"):
        if _which(name) is None:
            missing.append(name)
    # Debian's python3-venv is what puts ensurepip into /usr/bin/python3's stdlib.
    sys_py = Path("/usr/bin/python3")
    if not sys_py.exists() or subprocess.run(
        [str(sys_py), "-c", "import ensurepip, venv"], capture_output=True, cwd="/"
    ).returncode != 0:
        missing.append("python3-venv (/usr/bin/python3 -m venv)")
    return missing


def _ensure_system_packages(con: Console) -> None:
    missing = _missing_components()
    if not missing:
        return
    con.print(f"[yellow]Missing system packages:[/] {', '.join(missing)}")
    if not INSTALL_SCRIPT.exists():
        raise ServiceError(f"{INSTALL_SCRIPT} is missing; cannot install: {', '.join(missing)}")
    con.print(f"Running {INSTALL_SCRIPT} ...")
    lines: list[str] = []
    proc = subprocess.Popen(
        ["bash", str(INSTALL_SCRIPT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd="/",
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        con.print(f"  {line.rstrip()}", markup=False, highlight=False)
    rc = proc.wait()
    if rc != 0:
        hint = next((ln.strip() for ln in lines if ln.strip().startswith("sudo ")), None)
        if not _is_root():
            raise ServiceError(
                "System packages are missing and installing them needs root. Run:\n  "
                + (hint or f"sudo {INSTALL_SCRIPT}")
                + "\nthen `borderwatch services up` again."
            )
        raise ServiceError(f"{INSTALL_SCRIPT} failed (exit {rc}):\n" + "\n".join(lines[-30:]))
    still = _missing_components()
    if still:
        raise ServiceError(f"Still missing after {INSTALL_SCRIPT}: {', '.join(still)}")


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
    if state is None and lay.root_mode and (lay.base_dir / STATE_FILE).exists():
        with contextlib.suppress(ServiceError):
            state = _read_state(lay.base_dir)
            if state and state.get("run_dir") == str(lay.run_dir):
                con.print(f"Recovered ports and passwords from {lay.base_dir / STATE_FILE}")
            else:
                state = None
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
            "mqtt_passwords": {},
            "jwt_secret": None,
        }
        # A services.env without state (state deleted): keep its secrets, the database
        # role and the broker's passwd file were made with them.
        old = _read_env_file(lay.env_file)
        if old:
            db = urlsplit(old.get("BW_DATABASE_URL", ""))
            state["db_password"] = db.password
            for key, user in (("BW_MQTT_URL", MQTT_INGEST_USER), ("BW_MQTT_API_URL", MQTT_API_USER)):
                u = urlsplit(old.get(key, ""))
                if u.username == user and u.password:
                    state["mqtt_passwords"][user] = u.password
            state["jwt_secret"] = old.get("BW_JWT_SECRET") or None
    changed = False
    if not state.get("db_password"):
        state["db_password"] = secrets.token_urlsafe(24)
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


def _choose_port(state: dict, key: str, start: int, running: bool, avoid: set[int], con: Console, label: str) -> int:
    port = state.get(key)
    if port and (running or (port not in avoid and _port_free(port))):
        return int(port)
    new = _pick_port(start, avoid)
    if port:
        con.print(f"[yellow]{label}: recorded port {port} is taken by another process; moving to {new}.[/]")
    state[key] = new
    return new


# --------------------------------------------------------------------------- PostgreSQL


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

    return f"""# Borderwatch project-local cluster: written by cli/local.py on every `services up`.
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
    return f"""# Borderwatch project-local cluster: written by cli/local.py.
# TYPE  DATABASE  USER              ADDRESS        METHOD
# Unix socket (directory mode 0700): only the cluster owner, as its own role.
local   all       {_pg_superuser(lay):<17} {"":<14} peer
# TCP on loopback only, passwords (SCRAM) for every role.
host    all       all               127.0.0.1/32   scram-sha-256
"""


def _pg_psql(lay: _Layout, bindir: Path, port: int, sql: str, *, what: str, db: str = "postgres", hide=()) -> str:
    cp = _run(
        [bindir / "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
         "-h", lay.pg_socket_dir, "-p", str(port), "-U", _pg_superuser(lay), "-d", db],
        what=what, as_user=lay.pg_user, input=sql, hide=hide,
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
            raise ServiceError(
                f"{lay.pg_data} exists but is not a PostgreSQL data directory; move it away and retry."
            )
        with con.status(f"initdb PostgreSQL {major} cluster in {lay.pg_data} ..."):
            locale = _initdb_locale()
            _run(
                [bindir / "initdb", "-D", lay.pg_data, "-U", _pg_superuser(lay),
                 "--auth-local=peer", "--auth-host=scram-sha-256",
                 "--encoding=UTF8", f"--locale={locale}", "--no-instructions"],
                what="initdb", as_user=lay.pg_user, timeout=180,
            )
        con.print(f"[green]✓[/] PostgreSQL {major} cluster created in {lay.pg_data}")

    changed = _write_file(lay.pg_data / "borderwatch.conf", _pg_conf(lay, port), owner=lay.pg_user)
    changed |= _write_file(lay.pg_data / "pg_hba.conf", _pg_hba(lay), owner=lay.pg_user)
    main_conf = lay.pg_data / "postgresql.conf"
    text = main_conf.read_text()
    include = "include_if_exists = 'borderwatch.conf'"
    if include not in text:
        _write_file(main_conf, text.rstrip("\n") + f"\n\n# Borderwatch settings (cli/local.py)\n{include}\n",
                    owner=lay.pg_user, only_if_changed=False)
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
                    [bindir / "pg_ctl", "-D", lay.pg_data, "-l", lay.pg_log, "-w", "-t", str(START_TIMEOUT_S), "-s", "start"],
                    what="pg_ctl start", as_user=lay.pg_user, timeout=START_TIMEOUT_S + 15,
                )
            except ServiceError as exc:
                raise ServiceError(f"{exc}\n--- {lay.pg_log} (last lines) ---\n{_tail(lay.pg_log)}") from None
        pid = _pg_pid(lay)
        con.print(f"[green]✓[/] PostgreSQL started (pid {pid}, 127.0.0.1:{port}, log {lay.pg_log})")

    # Role, databases, PostGIS: idempotent, as the superuser over the private socket.
    pw = state["db_password"]
    lit = "'" + pw.replace("'", "''") + "'"
    sql = [
        f"SELECT 'CREATE ROLE {DB_ROLE} LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{DB_ROLE}') \\gexec",
        f"ALTER ROLE {DB_ROLE} WITH LOGIN NOSUPERUSER PASSWORD {lit};",
    ]
    for db in DATABASES:
        sql.append(
            f"SELECT 'CREATE DATABASE {db} OWNER {DB_ROLE}' "
            f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{db}') \\gexec"
        )
    for db in DATABASES:
        sql.append(f"\\connect {db}")
        sql.append("CREATE EXTENSION IF NOT EXISTS postgis;")
    with con.status("Creating role, databases and PostGIS extension ..."):
        _pg_psql(lay, bindir, port, "\n".join(sql) + "\n", what="provisioning the database", hide=[pw])

        # What the application will do: log in over TCP with the password.
        env = _clean_env()
        env["PGPASSWORD"] = pw
        deadline = time.monotonic() + 15
        while True:
            cp = _run(
                [bindir / "psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(port), "-U", DB_ROLE,
                 "-d", DATABASES[0], "-c", "SELECT postgis_lib_version()"],
                what="connecting as borderwatch over TCP", env=env, check=False,
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
        f"[green]✓[/] databases {', '.join(DATABASES)} owned by {DB_ROLE}, PostGIS {cp.stdout.strip()}"
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
            what="pg_ctl stop", as_user=lay.pg_user, timeout=STOP_TIMEOUT_S + 15,
        )
    if _wait_gone(pid, 10):
        con.print(f"[green]✓[/] PostgreSQL stopped (pid {pid})")
        return True
    raise ServiceError(f"PostgreSQL pid {pid} still running after pg_ctl stop; see {lay.pg_log}")


# --------------------------------------------------------------------------- Mosquitto


def _verify_mosquitto_hash(stored: str, password: str) -> bool:
    """Check a mosquitto_passwd entry (``$7$`` PBKDF2-SHA512 or ``$6$`` SHA512)."""
    parts = stored.split("$")
    try:
        if len(parts) == 5 and parts[1] == "7":
            it, salt, digest = int(parts[2]), base64.b64decode(parts[3]), base64.b64decode(parts[4])
            return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, it, len(digest)) == digest
        if len(parts) == 4 and parts[1] == "6":
            salt, digest = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            return hashlib.sha512(password.encode() + salt).digest() == digest
    except (ValueError, TypeError):
        return False
    return False


def _passwd_matches(path: Path, passwords: dict[str, str]) -> bool:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return False
    entries = dict(line.split(":", 1) for line in lines if ":" in line)
    return all(u in entries and _verify_mosquitto_hash(entries[u], pw) for u, pw in passwords.items())


def _service_acl() -> str:
    blocks = ["# Borderwatch service users (cli/local.py). `$share/<group>/borderwatch/...`",
              "# subscriptions are checked against the topic filter without the $share prefix.", ""]
    for user in MQTT_SERVICE_USERS:
        blocks += [f"user {user}", f"topic readwrite {MQTT_TOPIC_ACL}", ""]
    return "\n".join(blocks)


def _mosquitto_conf(lay: _Layout, port: int) -> str:
    user_line = "user mosquitto\n" if lay.root_mode else ""
    return f"""# Borderwatch project-local broker: written by cli/local.py on every
# `borderwatch services up` (edit there). Mosquitto 2.0.x.
{user_line}per_listener_settings false
listener {port} 127.0.0.1
allow_anonymous false
# passwd/acl = service users (copies of service.passwd/service.acl made on first start)
# plus gateway entries that another module writes before calling reload_broker()
# (SIGHUP: re-read as the unprivileged user, so they must be readable by it).
password_file {lay.mqtt_dir / "passwd"}
acl_file {lay.mqtt_dir / "acl"}

persistence true
persistence_location {lay.mqtt_persistence}/
autosave_interval 30
persistent_client_expiration 7d

pid_file {lay.mqtt_pid_file}
log_dest file {lay.mqtt_log}
log_timestamp_format %Y-%m-%dT%H:%M:%S
connection_messages true

# Flow control (mosquitto.conf(5), mosquitto 2.0.11 source):
# * max_inflight_messages N seeds BOTH per-client in-flight windows. For MQTT v5 clients the
#   outgoing window (broker -> client) is then replaced by the client's own CONNECT
#   "Receive Maximum", so our ingest consumer gets as many unacked QoS 1 messages as it
#   asks for (BW_INGEST_RECEIVE_MAXIMUM, e.g. 4000) whatever N is. N > 0 is also sent in
#   CONNACK as the broker's Receive Maximum, which caps how many QoS 1 PUBLISHes a v5
#   client (gateway, load generator) may have un-acked towards the broker, and it stays
#   the outgoing window of MQTT 3.1.1 clients. 0 = "no maximum": no Receive Maximum in
#   CONNACK (clients use the protocol maximum, 65535) and no broker-side cap, so the
#   only window is the one the consumer declares.
max_inflight_messages 0
max_inflight_bytes 0
# Messages queued per client beyond the in-flight window (a consumer that is behind or a
# persistent session that is offline); beyond this QoS 1 messages are silently dropped.
max_queued_messages 1000000
max_queued_bytes 0
# The whole packet (header + topic + properties + payload): 1 MiB payload + 64 KiB.
max_packet_size {MQTT_MAX_PACKET_SIZE}
"""


def _broker_pid(lay: _Layout) -> int | None:
    """PID of our broker: from its pid file, else any mosquitto running with exactly our config."""
    conf = str(lay.mqtt_conf)

    def ours(pid: int) -> bool:
        cmd = _cmdline(pid)
        if not cmd or Path(cmd[0]).name != "mosquitto":
            return False
        return any(cmd[i] == "-c" and cmd[i + 1] == conf for i in range(len(cmd) - 1)) or f"--config-file={conf}" in cmd

    with contextlib.suppress(OSError, ValueError):
        pid = int(lay.mqtt_pid_file.read_text().strip())
        if _pid_alive(pid) and ours(pid):
            return pid
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            if ours(pid) and _pid_alive(pid):
                return pid
    return None


def _mqtt_connect_rc(port: int, user: str, password: str, timeout: float = 3.0) -> int:
    """MQTT 3.1.1 CONNECT with username/password; the CONNACK return code (0 = accepted)."""

    def s(b: bytes) -> bytes:
        return len(b).to_bytes(2, "big") + b

    client_id = f"bw-services-check-{secrets.token_hex(4)}".encode()
    body = s(b"MQTT") + bytes([4, 0xC2]) + (10).to_bytes(2, "big")
    body += s(client_id) + s(user.encode()) + s(password.encode())
    rem, n = b"", len(body)
    while True:
        byte, n = n % 128, n // 128
        rem += bytes([byte | (0x80 if n else 0)])
        if not n:
            break
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"\x10" + rem + body)
            data = b""
            while len(data) < 4:
                chunk = sock.recv(4 - len(data))
                if not chunk:
                    break
                data += chunk
            if len(data) < 4 or data[0] != 0x20:
                return -1
            if data[3] == 0:
                with contextlib.suppress(OSError):
                    sock.sendall(b"\xe0\x00")
            return data[3]
    except OSError:  # refused, reset, timed out
        return -1


def _make_service_passwd(lay: _Layout, state: dict) -> bool:
    """(Re)write service.passwd if it does not hold the current service passwords."""
    target = lay.mqtt_dir / "service.passwd"
    pws = state["mqtt_passwords"]
    if _passwd_matches(target, pws):
        _chown_to(target, lay.mqtt_user, 0o600)
        return False
    mosquitto_passwd = _which("mosquitto_passwd")
    if not mosquitto_passwd:
        raise ServiceError("mosquitto_passwd not found; run scripts/install-system.sh.")
    tmp = lay.mqtt_dir / ".service.passwd.new"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    for i, user in enumerate(MQTT_SERVICE_USERS):
        args = [mosquitto_passwd, *(["-c"] if i == 0 else []), "-b", tmp, user, pws[user]]
        _run(args, what=f"mosquitto_passwd ({user})", as_user=lay.mqtt_user, hide=[pws[user]])
    _chown_to(tmp, lay.mqtt_user, 0o600)
    os.replace(tmp, target)
    return True


def _mqtt_up(lay: _Layout, state: dict, con: Console, avoid: set[int]) -> None:
    mosquitto = _which("mosquitto")
    if not mosquitto:
        raise ServiceError("mosquitto not found; run scripts/install-system.sh.")
    if lay.root_mode:
        try:
            pwd.getpwnam("mosquitto")
        except KeyError:
            raise ServiceError("System user 'mosquitto' is missing; reinstall the mosquitto package.") from None

    pid = _broker_pid(lay)
    if pid is not None:
        # Running: keep the port of the config it was started with.
        with contextlib.suppress(OSError):
            m = re.search(r"^listener (\d+) ", lay.mqtt_conf.read_text(), re.M)
            if m:
                state["mqtt_port"] = int(m.group(1))
    port = _choose_port(state, "mqtt_port", MQTT_PORT_START, pid is not None, avoid, con, "Mosquitto")
    _write_state(lay, state)

    if lay.root_mode:
        _ensure_dir(SYSTEM_BASE, mode=0o755, owner="root")
        _ensure_dir(lay.base_dir, mode=0o755, owner="root")
    _ensure_dir(lay.mqtt_dir, mode=0o700, owner=lay.mqtt_user)
    _ensure_dir(lay.mqtt_persistence, mode=0o700, owner=lay.mqtt_user)

    _make_service_passwd(lay, state)
    _write_file(lay.mqtt_dir / "service.acl", _service_acl(), owner=lay.mqtt_user)
    passwd_fixed = False
    for name in ("passwd", "acl"):
        live, src = lay.mqtt_dir / name, lay.mqtt_dir / f"service.{name}"
        if not live.exists():
            _write_file(live, src.read_text(), owner=lay.mqtt_user)
            con.print(f"[green]✓[/] {live} created from {src.name}")
        else:
            # Kept as is (it also holds the gateways' entries) ...
            _chown_to(live, lay.mqtt_user, 0o600)
    # ... except that the service users' own entries must match their passwords (they
    # differ only if the state was lost): update just those lines, keep everything else.
    live_passwd = lay.mqtt_dir / "passwd"
    for user, pw in state["mqtt_passwords"].items():
        if not _passwd_matches(live_passwd, {user: pw}):
            _run([_which("mosquitto_passwd") or "mosquitto_passwd", "-b", live_passwd, user, pw],
                 what=f"mosquitto_passwd ({user})", as_user=lay.mqtt_user, hide=[pw])
            _chown_to(live_passwd, lay.mqtt_user, 0o600)
            con.print(f"[yellow]{live_passwd}: updated the entry of {user} (other entries kept).[/]")
            passwd_fixed = True
    conf_changed = _write_file(lay.mqtt_conf, _mosquitto_conf(lay, port), owner=lay.mqtt_user)

    if pid is not None:
        if conf_changed or passwd_fixed:
            con.print("[yellow]Broker config or passwd changed while it runs: reloading (SIGHUP).[/]")
            os.kill(pid, signal.SIGHUP)
            time.sleep(0.3)
        con.print(f"[green]✓[/] Mosquitto already running (pid {pid}, 127.0.0.1:{port})")
    else:
        with contextlib.suppress(FileNotFoundError):
            lay.mqtt_pid_file.unlink()
        log_size = lay.mqtt_log.stat().st_size if lay.mqtt_log.exists() else 0
        with con.status(f"Starting Mosquitto on 127.0.0.1:{port} ..."):
            # As root it reads the config, drops to `user mosquitto` at once, then writes
            # the pid file, log, persistence and reads passwd/acl as that user.
            _run([mosquitto, "-d", "-c", lay.mqtt_conf], what="mosquitto -d", timeout=30)
            # The daemon writes its pid file before it binds: wait until that pid holds
            # the listening socket; give up early if it appeared and died, or never appeared.
            t0 = time.monotonic()
            seen, ready = None, False
            while time.monotonic() < t0 + START_TIMEOUT_S / 2:
                pid = _broker_pid(lay)
                if pid and _listening_on(pid, port):
                    ready = True
                    break
                if pid:
                    seen = pid
                elif seen or time.monotonic() > t0 + 5 or "Error" in _read_from(lay.mqtt_log, log_size):
                    break
                time.sleep(0.1)
            if not ready:
                new_log = _read_from(lay.mqtt_log, log_size)[-4000:]
                state_txt = f"pid {pid} still running" if pid else "the broker exited"
                raise ServiceError(
                    f"Mosquitto did not start listening on 127.0.0.1:{port} ({state_txt}).\n"
                    f"--- {lay.mqtt_log} ---\n{new_log or _tail(lay.mqtt_log)}"
                )
        con.print(f"[green]✓[/] Mosquitto started (pid {pid} as {_proc_user(pid) or '?'}, 127.0.0.1:{port}, log {lay.mqtt_log})")

    rc = _mqtt_connect_rc(port, MQTT_INGEST_USER, state["mqtt_passwords"][MQTT_INGEST_USER])
    if rc == -1:
        raise ServiceError(
            f"No MQTT answer on 127.0.0.1:{port} (is something else listening there?).\n"
            f"--- {lay.mqtt_log} (last lines) ---\n{_tail(lay.mqtt_log)}"
        )
    if rc != 0:
        raise ServiceError(
            f"The broker on 127.0.0.1:{port} rejects {MQTT_INGEST_USER} (CONNACK {rc}): "
            f"{lay.mqtt_dir / 'passwd'} lacks the service entries of service.passwd. Put them back "
            f"(or delete passwd and acl to recreate them) and run `borderwatch services up`."
        )


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return not _pid_alive(pid)


def _mqtt_down(lay: _Layout, con: Console) -> bool:
    pid = _broker_pid(lay)
    if pid is None:
        con.print("Mosquitto: not running")
        return False
    with con.status(f"Stopping Mosquitto (pid {pid}) ..."):
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, STOP_TIMEOUT_S):
            con.print(f"[yellow]Mosquitto pid {pid} ignored SIGTERM for {STOP_TIMEOUT_S}s: SIGKILL.[/]")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not _wait_gone(pid, 5):
                raise ServiceError(f"Mosquitto pid {pid} does not exit; see {lay.mqtt_log}")
    con.print(f"[green]✓[/] Mosquitto stopped (pid {pid})")
    return True


# --------------------------------------------------------------------------- env file


def _write_env(lay: _Layout, state: dict) -> None:
    pg, mq = state["pg_port"], state["mqtt_port"]
    pw = state["db_password"]
    mpw = state["mqtt_passwords"]
    lines = [
        "# Written by cli/local.py (`borderwatch services up`). Secrets: keep private (mode 600).",
        f"BW_DATABASE_URL=postgresql+psycopg://{DB_ROLE}:{pw}@127.0.0.1:{pg}/{DATABASES[0]}",
        f"BW_TEST_DATABASE_URL=postgresql+psycopg://{DB_ROLE}:{pw}@127.0.0.1:{pg}/{DATABASES[1]}",
        f"BW_MQTT_URL=mqtt://{MQTT_INGEST_USER}:{mpw[MQTT_INGEST_USER]}@127.0.0.1:{mq}",
        f"BW_MQTT_API_URL=mqtt://{MQTT_API_USER}:{mpw[MQTT_API_USER]}@127.0.0.1:{mq}",
        f"BW_JWT_SECRET={state['jwt_secret']}",
        f"BW_MOSQUITTO_DIR={lay.mqtt_dir}",
    ]
    _write_file(lay.env_file, "\n".join(lines) + "\n", mode=0o600)


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
        info = status()
    print_status(info, con)
    return info


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
        con.print(f"[cyan]Note:[/] the environment points at external servers: {ext['database_url']}, {ext['mqtt_url']}")
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
