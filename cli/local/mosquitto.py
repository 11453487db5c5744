"""The project-local Mosquitto broker: its config, the service users' passwords and ACL,
start, stop, and a minimal MQTT CONNECT to check that it accepts them."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import pwd
import re
import secrets
import signal
import socket
import time
from pathlib import Path

from rich.console import Console

from cli.local.layout import (
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    SYSTEM_BASE,
    ServiceError,
    _choose_port,
    _chown_to,
    _cmdline,
    _ensure_dir,
    _Layout,
    _listening_on,
    _pid_alive,
    _proc_user,
    _read_from,
    _run,
    _tail,
    _wait_gone,
    _which,
    _write_file,
    _write_state,
)
from core import topics
from core.settings import Settings

MQTT_PORT_START = 51883

MQTT_INGEST_USER = "bw-ingest"
MQTT_API_USER = "bw-api"
MQTT_SERVICE_USERS = (MQTT_INGEST_USER, MQTT_API_USER)

# Largest MQTT packet the broker accepts (the whole packet, not just the payload --
# mosquitto.conf(5)): 1 MiB of payload plus 64 KiB for fixed header, topic and v5
# properties, so payloads up to 1 MiB reach the ingest worker, which dead-letters the
# ones above its own BW_MAX_PAYLOAD_BYTES.
MQTT_MAX_PACKET_SIZE = 1024 * 1024 + 64 * 1024


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


def _topic_root() -> str:
    """The topic root the services will use (``BW_MQTT_TOPIC_ROOT``, else the settings' default)."""
    return os.environ.get("BW_MQTT_TOPIC_ROOT") or Settings.model_fields["mqtt_topic_root"].default


def _service_acl() -> str:
    header = "# Borderwatch service users (cli/local/mosquitto.py, core/topics.py): each only the topics it uses.\n\n"
    return header + topics.service_acl(_topic_root(), {MQTT_INGEST_USER: ("ingest",), MQTT_API_USER: ("api",)})


def _refresh_live_acl(live: Path, service_acl: str) -> str:
    """The live ACL with the service users' blocks replaced by ``service_acl`` (the gateways' and
    units' blocks, written by ``sync_broker``, kept as they are)."""
    kept: list[str] = []
    keep = False
    for line in live.read_text().splitlines():
        if line.startswith("user "):
            keep = line.split(None, 1)[1].strip() not in MQTT_SERVICE_USERS
        if keep:
            kept.append(line)
    rest = "".join(line + "\n" for line in kept)
    return service_acl.rstrip("\n") + "\n" + ("\n" + rest if rest else "")


def _mosquitto_conf(lay: _Layout, port: int) -> str:
    user_line = "user mosquitto\n" if lay.root_mode else ""
    return f"""# Borderwatch project-local broker: written by cli/local/mosquitto.py on every
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
    # ... except the service users' ACL blocks, which follow service.acl ...
    live_acl = lay.mqtt_dir / "acl"
    acl_fixed = _write_file(live_acl, _refresh_live_acl(live_acl, _service_acl()), owner=lay.mqtt_user)
    if acl_fixed:
        con.print(f"[yellow]{live_acl}: the service users' entries follow service.acl (other entries kept).[/]")
    # ... and the service users' own password entries must match their passwords (they
    # differ only if the state was lost): update just those lines, keep everything else.
    live_passwd = lay.mqtt_dir / "passwd"
    for user, pw in state["mqtt_passwords"].items():
        if not _passwd_matches(live_passwd, {user: pw}):
            _run(
                [_which("mosquitto_passwd") or "mosquitto_passwd", "-b", live_passwd, user, pw],
                what=f"mosquitto_passwd ({user})",
                as_user=lay.mqtt_user,
                hide=[pw],
            )
            _chown_to(live_passwd, lay.mqtt_user, 0o600)
            con.print(f"[yellow]{live_passwd}: updated the entry of {user} (other entries kept).[/]")
            passwd_fixed = True
    conf_changed = _write_file(lay.mqtt_conf, _mosquitto_conf(lay, port), owner=lay.mqtt_user)

    if pid is not None:
        if conf_changed or passwd_fixed or acl_fixed:
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
        con.print(
            f"[green]✓[/] Mosquitto started (pid {pid} as {_proc_user(pid) or '?'}, 127.0.0.1:{port}, log {lay.mqtt_log})"
        )

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
