"""`borderwatch gateway`: sensor gateways, their sensors and their broker credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import cli_actor, console, fail
from core.settings import get_settings

app = typer.Typer(help="Register sensor gateways and their sensors (and their broker credentials).")


def sync_broker(session) -> int:
    from broker import service as access

    return access.sync_broker(session=session, settings=get_settings())


@app.command("add")
def gateway_add(
    gateway_id: Annotated[str, typer.Argument(help="Lower-case id, also its MQTT username.")],
    agency: Annotated[str, typer.Option(help="Owning agency code.")],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
) -> None:
    """Register a gateway; prints its MQTT password once and updates the broker's password file and ACL."""
    from core.db import session_scope
    from core.errors import BorderwatchError
    from sensors import service
    from sensors.schemas import GatewayCreate

    try:
        with session_scope() as session:
            _, password = service.create_gateway(
                session=session, gateway_in=GatewayCreate(id=gateway_id, agency_code=agency, name=name)
            )
        # The broker learns of the gateway once the registry has committed it.
        with session_scope() as session:
            sync_broker(session)
    except BorderwatchError as exc:
        fail(exc.message)
    console.print(f"[green]gateway {gateway_id} registered[/]; MQTT username {gateway_id}, password (shown once):")
    print(password)


@app.command("rotate")
def gateway_rotate(gateway_id: Annotated[str, typer.Argument(help="The gateway's id (its MQTT username).")]) -> None:
    """Give a gateway a new broker password (printed once); the old one is refused once the broker reloads."""
    from core.db import session_scope
    from core.errors import BorderwatchError
    from sensors import service

    try:
        with session_scope() as session:
            password = service.rotate_gateway_credential(session=session, gateway_id=gateway_id, actor=cli_actor())
        with session_scope() as session:
            sync_broker(session)
    except BorderwatchError as exc:
        fail(exc.message)
    console.print(f"[green]gateway {gateway_id}: new broker password (shown once):")
    print(password)


@app.command("revoke")
def gateway_revoke(gateway_id: Annotated[str, typer.Argument(help="The gateway's id (its MQTT username).")]) -> None:
    """Withdraw a gateway's broker credential: it can no longer connect or publish (`rotate` issues a new one)."""
    from core.db import session_scope
    from core.errors import BorderwatchError
    from sensors import service

    try:
        with session_scope() as session:
            service.revoke_gateway_credential(session=session, gateway_id=gateway_id, actor=cli_actor())
        with session_scope() as session:
            sync_broker(session)
    except BorderwatchError as exc:
        fail(exc.message)
    console.print(f"[green]gateway {gateway_id}: broker credential withdrawn")


@app.command("add-sensor")
def gateway_add_sensor(
    sensor_id: Annotated[str, typer.Argument()],
    gateway: Annotated[str, typer.Option(help="Gateway the sensor publishes through.")],
    kind: Annotated[str, typer.Option(help="camera, ground_sensor, radar, anpr, ais_receiver or other.")],
    lon: Annotated[float, typer.Option()],
    lat: Annotated[float, typer.Option()],
    range_m: Annotated[
        Optional[float],
        typer.Option(
            help="Coverage radius in metres; detections further away are refused (default: the kind's BW_SENSOR_RANGE_<KIND>_M)."
        ),
    ] = None,
    name: Annotated[str, typer.Option()] = "",
) -> None:
    """Register a sensor under a gateway."""
    from pydantic import ValidationError

    from core.db import session_scope
    from core.errors import BorderwatchError
    from sensors import service
    from sensors.schemas import SensorCreate

    try:
        sensor_in = SensorCreate(
            id=sensor_id, gateway_id=gateway, kind=kind, name=name, lon=lon, lat=lat, coverage_radius_m=range_m
        )
        with session_scope() as session:
            service.create_sensor(session=session, sensor_in=sensor_in)
    except ValidationError as exc:
        fail(str(exc))
    except BorderwatchError as exc:
        fail(exc.message)
    console.print(f"[green]sensor {sensor_id} registered")


@app.command("frigate-zone")
def gateway_frigate_zone(
    sensor_id: Annotated[str, typer.Argument(help="The camera's sensor id.")],
    zone: Annotated[str, typer.Argument(help="The zone's name in the camera's Frigate configuration.")],
    polygon: Annotated[str, typer.Option(help="The zone on the ground: WKT POLYGON in lon/lat (WGS 84).")],
) -> None:
    """Place a Frigate zone of a camera on the map: its detections in that zone are put there."""
    from core.db import session_scope
    from core.errors import BorderwatchError
    from sensors import frigate

    try:
        with session_scope() as session:
            frigate.set_zone(session=session, sensor_id=sensor_id, name=zone, polygon_wkt=polygon)
    except BorderwatchError as exc:
        fail(exc.message)
    console.print(f"[green]Frigate zone {zone} of {sensor_id} placed")


@app.command("sync-broker")
def gateway_sync_broker() -> None:
    """Rewrite the broker's password file and ACL from the registry and reload it."""
    from core.db import session_scope

    with session_scope() as session:
        count = sync_broker(session)
    console.print(f"[green]broker credentials written for {count} gateways")


@app.command("init-broker")
def gateway_init_broker(
    directory: Annotated[Optional[Path], typer.Option(help="Broker config folder (default: BW_MOSQUITTO_DIR).")] = None,
) -> None:
    """For a broker this project does not start (docker compose): write the service users' password
    and ACL entries from BW_MQTT_URL / BW_MQTT_API_URL, then the gateways' entries."""
    from broker import service as access
    from core.db import session_scope

    settings = get_settings()
    target = directory or (Path(settings.mosquitto_dir) if settings.mosquitto_dir else None)
    if target is None:
        fail("set BW_MOSQUITTO_DIR or pass --directory")
    users = access.write_service_entries(settings=settings, directory=target)
    settings = settings.model_copy(update={"mosquitto_dir": str(target)})
    with session_scope() as session:
        count = access.sync_broker(session=session, settings=settings)
    console.print(f"[green]broker files in {target}: service users {', '.join(users)}, {count} gateways")
