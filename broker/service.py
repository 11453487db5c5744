"""Broker credentials from the registry: Mosquitto's password file and ACL, and their reload.

The service users' entries (``service.passwd``/``service.acl``, written by ``borderwatch services
up`` or ``write_service_entries``; each service user limited to the topics it uses) come first; each gateway then gets its own password line and an
ACL that lets it write only under its own topic, and each patrol unit with a credential one that
lets it read only its own taskings topic.

A broker that runs from the directory (its ``mosquitto.pid`` there, as the project-local one does)
is sent SIGHUP to re-read both files; one that does not (docker compose: the broker's entrypoint
watches the shared volume) picks them up by itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from pathlib import Path

from sqlalchemy.orm import Session

from core import topics
from core.errors import ConfigurationError
from core.security import mosquitto_password_hash
from core.settings import Settings
from patrols import units
from sensors import service as sensors

# How long a broker takes to re-read its files after SIGHUP before its log is read for errors.
_RELOAD_SETTLE_S = 0.3


class BrokerReloadFailed(ConfigurationError):
    code = "broker_reload_failed"


def _write_like(path: Path, content: str) -> None:
    """Replace a file atomically, keeping the owner and mode the broker needs to read it."""
    st = path.stat() if path.exists() else None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    if st is not None:
        os.chmod(tmp, st.st_mode & 0o777)
        if os.geteuid() == 0:
            os.chown(tmp, st.st_uid, st.st_gid)
    else:
        os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def sync_broker(*, session: Session, settings: Settings) -> int:
    """Rewrite the broker's password file and ACL from the registry and reload the broker.

    Returns the number of credentials written (gateways and units).
    """
    if not settings.mosquitto_dir:
        raise ConfigurationError("BW_MOSQUITTO_DIR is not set: run `borderwatch services up` (or set it)")
    directory = Path(settings.mosquitto_dir)
    base_passwd, base_acl = directory / "service.passwd", directory / "service.acl"
    if not base_passwd.exists() or not base_acl.exists():
        raise ConfigurationError(
            f"no broker files in {directory}: run `borderwatch services up` (or set BW_MOSQUITTO_DIR)"
        )
    passwd_lines, acl_blocks = sensors.broker_entries(session=session, topic_root=settings.mqtt_topic_root)
    # Patrol units with a credential: each may read only its own taskings topic.
    unit_passwd, unit_acl = units.broker_entries(session=session, topic_root=settings.mqtt_topic_root)
    passwd_lines, acl_blocks = passwd_lines + unit_passwd, acl_blocks + unit_acl
    passwd = base_passwd.read_text().rstrip("\n") + "\n" + "".join(line + "\n" for line in passwd_lines)
    acl = base_acl.read_text().rstrip("\n") + "\n\n" + "\n".join(acl_blocks)
    _write_like(directory / "passwd", passwd)
    _write_like(directory / "acl", acl)
    reload(directory)
    return len(passwd_lines)


def reload(directory: Path) -> bool:
    """Make the Mosquitto that runs from ``directory`` re-read passwd and acl; False when none runs
    from there (a broker that watches its files itself, or one not started yet, reads them later)."""
    try:
        pid = int((directory / "mosquitto.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    signal_reload(pid, directory / "mosquitto.log")
    return True


def signal_reload(pid: int, log: Path) -> None:
    """SIGHUP the broker ``pid``; raises ``BrokerReloadFailed`` if it logs an error or dies."""
    log_size = log.stat().st_size if log.exists() else 0
    os.kill(pid, signal.SIGHUP)
    time.sleep(_RELOAD_SETTLE_S)
    new = ""
    with contextlib.suppress(OSError), open(log, errors="replace") as handle:
        handle.seek(log_size)
        new = handle.read()
    errors = [line for line in new.splitlines() if "Error" in line]
    alive = True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        alive = False
    except PermissionError:
        pass
    if errors or not alive:
        raise BrokerReloadFailed(f"Mosquitto reload failed (pid {pid}):\n" + "\n".join(errors or [f"see {log}"]))


def write_service_entries(*, settings: Settings, directory: Path) -> list[str]:
    """Write ``service.passwd``/``service.acl`` for the service users named in the MQTT URLs.

    For deployments whose broker is not started by ``borderwatch services up`` (docker compose):
    the users and passwords come from ``BW_MQTT_URL`` (the ingest worker) and ``BW_MQTT_API_URL``
    (the API); each gets the ACL of the topics its service uses (``core.topics.service_acl``).
    """
    users: dict[str, str] = {}
    services: dict[str, tuple[str, ...]] = {}
    for url, service in ((settings.mqtt_url, "ingest"), (settings.mqtt_api_url, "api")):
        if url:
            _, _, user, password = settings.mqtt_parts(url)
            if not user or not password:
                raise ConfigurationError(f"MQTT URL {url.split('@')[-1]} has no user and password")
            users[user] = password
            services[user] = (*services.get(user, ()), service)
    if not users:
        raise ConfigurationError("BW_MQTT_URL is not set")
    directory.mkdir(parents=True, exist_ok=True)
    _write_like(directory / "service.passwd", "".join(f"{u}:{mosquitto_password_hash(p)}\n" for u, p in users.items()))
    _write_like(directory / "service.acl", topics.service_acl(settings.mqtt_topic_root, services))
    return sorted(users)
