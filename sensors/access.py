"""Broker credentials from the sensor registry: Mosquitto's password file and ACL.

The service users' entries (written by ``borderwatch services up``) come first; each gateway
then gets its own password line and an ACL that lets it write only under its own topic, and
each patrol unit with a credential one that lets it read only its own taskings topic.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sqlalchemy.orm import Session

from core import services
from core.errors import ConfigurationError
from core.settings import Settings
from sensors import service


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
    directory = Path(settings.mosquitto_dir) if settings.mosquitto_dir else services.mosquitto_dir()
    base_passwd, base_acl = directory / "service.passwd", directory / "service.acl"
    if not base_passwd.exists() or not base_acl.exists():
        raise ConfigurationError(
            f"no broker files in {directory}: run `borderwatch services up` (or set BW_MOSQUITTO_DIR)"
        )
    passwd_lines, acl_blocks = service.broker_entries(session=session, topic_root=settings.mqtt_topic_root)
    # Patrol units with a credential: each may read only its own taskings topic.
    from patrols.service import broker_entries as unit_broker_entries

    unit_passwd, unit_acl = unit_broker_entries(session=session, topic_root=settings.mqtt_topic_root)
    passwd_lines, acl_blocks = passwd_lines + unit_passwd, acl_blocks + unit_acl
    passwd = base_passwd.read_text().rstrip("\n") + "\n" + "".join(line + "\n" for line in passwd_lines)
    acl = base_acl.read_text().rstrip("\n") + "\n\n" + "\n".join(acl_blocks)
    _write_like(directory / "passwd", passwd)
    _write_like(directory / "acl", acl)
    services.reload_broker()
    return len(passwd_lines)


def write_service_entries(*, settings: Settings, directory: Path) -> list[str]:
    """Write ``service.passwd``/``service.acl`` for the service users named in the MQTT URLs.

    For deployments whose broker is not started by ``borderwatch services up`` (docker compose):
    the users and passwords come from ``BW_MQTT_URL`` and ``BW_MQTT_API_URL``.
    """
    users = {}
    for url in (settings.mqtt_url, settings.mqtt_api_url):
        if url:
            _, _, user, password = settings.mqtt_parts(url)
            if not user or not password:
                raise ConfigurationError(f"MQTT URL {url.split('@')[-1]} has no user and password")
            users[user] = password
    if not users:
        raise ConfigurationError("BW_MQTT_URL is not set")
    directory.mkdir(parents=True, exist_ok=True)
    root = settings.mqtt_topic_root.split("/")[0]
    _write_like(directory / "service.passwd", "".join(f"{u}:{service.mosquitto_password_hash(p)}\n" for u, p in users.items()))
    _write_like(directory / "service.acl", "".join(f"user {u}\ntopic readwrite {root}/#\n\n" for u in users))
    return sorted(users)
