"""The MQTT topic layout (docs/mqtt.md): the one place that builds and parses topics and broker user names."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InvalidPayload


@dataclass(frozen=True)
class Topic:
    kind: str  # "detections", "ais", "frigate" or "status"
    agency: str
    gateway: str
    sensor: str | None = None


def gateway_prefix(root: str, agency: str, gateway: str) -> str:
    """Everything a gateway may publish lies below this (its broker ACL says so)."""
    return f"{root}/gw/{agency}/{gateway}"


def detections(root: str, agency: str, gateway: str, sensor: str) -> str:
    return f"{gateway_prefix(root, agency, gateway)}/{sensor}/detections"


def ais(root: str, agency: str, gateway: str, sensor: str) -> str:
    """Raw NMEA sentences (``!AIVDM``/``!AIVDO``) of an AIS receiver, one or more lines per message."""
    return f"{gateway_prefix(root, agency, gateway)}/{sensor}/ais"


def frigate(root: str, agency: str, gateway: str, sensor: str) -> str:
    """Frigate's ``frigate/events`` messages of the camera ``sensor``, relayed as they are."""
    return f"{gateway_prefix(root, agency, gateway)}/{sensor}/frigate"


def gateway_status(root: str, agency: str, gateway: str) -> str:
    return f"{gateway_prefix(root, agency, gateway)}/status"


def alerts(root: str, agency: str) -> str:
    return f"{root}/alerts/{agency}"


def taskings(root: str, agency: str, unit_id: int) -> str:
    """A patrol unit's taskings: only that unit's broker user may read it."""
    return f"{root}/units/{agency}/{unit_id}/taskings"


def unit_username(unit_id: int) -> str:
    """A patrol unit's broker user; a dot cannot appear in a gateway id, so a unit never shares one with a gateway."""
    return f"unit.{unit_id}"


def worker_status(root: str, client_id: str) -> str:
    return f"{root}/system/ingest/{client_id}"


def ingest_subscriptions(root: str, share_group: str) -> list[str]:
    # Everything under gw/, so a message on a wrong topic still reaches the dead letters.
    # No share group: one worker with a plain subscription, which Mosquitto 2.0 restores intact
    # from its persistence file after a restart (a restored $share subscription receives nothing
    # until its worker subscribes again).
    if not share_group:
        return [f"{root}/gw/#"]
    return [f"$share/{share_group}/{root}/gw/#"]


def service_acl_rules(root: str, service: str) -> list[tuple[str, str]]:
    """The broker ACL of a service user, as (access, topic filter) pairs: exactly the topics it uses.

    ``ingest`` (the ingest worker) reads every gateway's topics and writes alerts and its own
    status; ``api`` writes the partner pushes on the alert topics (and may read them) and the
    units' taskings. Neither may write under ``gw/``: detections come from gateways only.
    ``$share/<group>/...`` subscriptions are checked against the filter without the prefix.
    """
    if service == "ingest":
        return [("read", f"{root}/gw/#"), ("write", f"{root}/alerts/+"), ("write", f"{root}/system/ingest/+")]
    if service == "api":
        return [("readwrite", f"{root}/alerts/+"), ("write", f"{root}/units/+/+/taskings")]
    raise ValueError(f"unknown service {service!r}")


def service_acl(root: str, users: dict[str, tuple[str, ...]]) -> str:
    """Mosquitto ACL blocks for the service users: ``{user: (service, ...)}`` (one user may serve both)."""
    blocks = []
    for user, services in users.items():
        rules = dict.fromkeys(
            f"topic {access} {topic}" for s in services for access, topic in service_acl_rules(root, s)
        )
        blocks.append("\n".join([f"user {user}", *rules]) + "\n")
    return "\n".join(blocks)


def parse(root: str, topic: str) -> Topic:
    """Split a gateway topic; raises ``InvalidPayload`` for anything outside the contract."""
    prefix = root + "/gw/"
    if not topic.startswith(prefix):
        raise InvalidPayload(f"topic {topic!r} is outside {prefix}")
    parts = topic[len(prefix) :].split("/")
    if len(parts) == 4 and parts[3] == "detections":
        return Topic("detections", parts[0], parts[1], parts[2])
    if len(parts) == 4 and parts[3] == "ais":
        return Topic("ais", parts[0], parts[1], parts[2])
    if len(parts) == 4 and parts[3] == "frigate":
        return Topic("frigate", parts[0], parts[1], parts[2])
    if len(parts) == 3 and parts[2] == "status":
        return Topic("status", parts[0], parts[1])
    raise InvalidPayload(f"topic {topic!r} is not a detections or status topic (nor an ais or frigate topic)")
