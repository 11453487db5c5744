"""A test's own MQTT topic root on the project's broker: for the tests and the eval and bench
scripts whose ingest workers must take a stream no other worker takes (no fixtures here, so
scripts import it without the test services' settings)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import Engine

from broker import service as access
from core import topics
from core.db import session_scope
from core.settings import Settings


@contextmanager
def topic_root_on_broker(settings: Settings, engine: Engine, root: str, publisher: str) -> Iterator[None]:
    """Open a test's own topic root on the broker (so that no other worker takes its stream): the
    service users get the topics under ``root`` that they have under the deployment's root, and the
    registered gateway ``publisher`` may write anywhere under ``root/gw/`` (its streams carry other
    gateways' and malformed topics too). The broker's base ACL is restored on exit."""
    base = Path(settings.mosquitto_dir) / "service.acl"
    original = base.read_text()
    ingest_user = settings.mqtt_parts(settings.mqtt_url)[2]
    api_user = settings.mqtt_parts(settings.mqtt_api_url)[2]
    extra = topics.service_acl(root, {ingest_user: ("ingest",), api_user: ("api",)})
    extra += f"\nuser {publisher}\ntopic write {root}/gw/#\n"

    def rewrite(content: str) -> None:
        with open(base, "w") as handle:  # in place: the broker's owner and mode stay
            handle.write(content)
        with session_scope(engine) as s:
            access.sync_broker(session=s, settings=settings)

    rewrite(original.rstrip("\n") + "\n\n# A test's own topic root\n" + extra)
    try:
        yield
    finally:
        rewrite(original)
