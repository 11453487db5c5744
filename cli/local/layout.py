"""Where the project-local services live, and the plumbing both of them use.

The run dir and :class:`_Layout` (every path of a setup), the state file
``services.json``, atomic writes with mode and owner, the run dir's lock, running
commands (as another user when root), processes found through ``/proc`` and free
loopback ports. Nothing here knows PostgreSQL from Mosquitto: see ``postgres.py`` and
``mosquitto.py``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

# cli/local/layout.py -> the repository root is three levels up.
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SYSTEM_BASE = Path("/var/lib/borderwatch")

PORT_SEARCH_SPAN = 500

STATE_FILE = "services.json"
ENV_FILE = "services.env"
LOCK_FILE = ".services.lock"
STATE_VERSION = 1

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


class ServiceError(Exception):
    """A service could not be set up, started, stopped or reached; the message says what to do."""


# --------------------------------------------------------------------------- paths


def run_dir() -> Path:
    """``$BW_RUN_DIR`` or ``<repo root>/.run`` (the repo root is the parent of ``cli/``)."""
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


# --------------------------------------------------------------------------- ports in the state


def _choose_port(state: dict, key: str, start: int, running: bool, avoid: set[int], con: Console, label: str) -> int:
    port = state.get(key)
    if port and (running or (port not in avoid and _port_free(port))):
        return int(port)
    new = _pick_port(start, avoid)
    if port:
        con.print(f"[yellow]{label}: recorded port {port} is taken by another process; moving to {new}.[/]")
    state[key] = new
    return new


# --------------------------------------------------------------------------- stopping


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return not _pid_alive(pid)
