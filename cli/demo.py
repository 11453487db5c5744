"""`borderwatch seed-demo`: the demonstration agencies, users, gateways, units and agreements of `make run`."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import typer

from cli.common import cli_actor, console
from cli.gateways import sync_broker
from core.settings import get_settings, run_dir

app = typer.Typer()


@app.command("seed-demo")
def seed_demo() -> None:
    """Create the demo gateways, sensors, operator accounts, patrol units and sharing agreements (idempotent);
    credentials go to .run/."""
    from accounts import service as accounts
    from core.db import session_scope
    from core.models import User
    from geo import service as geo_service
    from patrols.demo import seed_demo_units
    from sensors import service
    from sensors.demo import DEMO_GATEWAYS, DEMO_USERS
    from sensors.models import Gateway, Sensor
    from sensors.schemas import GatewayCreate, SensorCreate
    from sharing.demo import seed_demo_agreements

    settings = get_settings()
    creds_path = Path(settings.demo_gateways_file)
    users_path = run_dir() / "demo-users.json"
    saved = json.loads(creds_path.read_text()) if creds_path.exists() else {"gateways": []}
    passwords = {g["id"]: g["password"] for g in saved["gateways"]}
    users = json.loads(users_path.read_text()) if users_path.exists() else {}
    with session_scope() as session:
        geo_service.ensure_agencies(session=session)
        out = []
        for gw in DEMO_GATEWAYS:
            existing = session.get(Gateway, gw["id"])
            password = passwords.get(gw["id"]) or secrets.token_urlsafe(18)
            if existing is None:
                service.create_gateway(
                    session=session,
                    gateway_in=GatewayCreate(id=gw["id"], agency_code=gw["agency"], name=gw["name"]),
                    password=password,
                )
            elif gw["id"] not in passwords:
                existing.mqtt_password_hash = service.mosquitto_password_hash(password)
            for s in gw["sensors"]:
                if session.get(Sensor, s["id"]) is None:
                    service.create_sensor(
                        session=session,
                        sensor_in=SensorCreate(
                            id=s["id"],
                            gateway_id=gw["id"],
                            kind=s["kind"],
                            lon=s["lon"],
                            lat=s["lat"],
                            coverage_radius_m=s["range_m"],
                        ),
                    )
            out.append({**gw, "password": password})
        for u in DEMO_USERS:
            known = u["username"] in users
            password = users.setdefault(u["username"], secrets.token_urlsafe(12))
            if session.query(User).filter_by(username=u["username"]).first() is None:
                accounts.create_user(
                    session=session,
                    username=u["username"],
                    agency_code=u["agency"],
                    role=u["role"],
                    password=password,
                    actor=cli_actor(),
                )
            elif not known:
                # The demo account exists but its password file was lost: give it a new one.
                accounts.set_password(session=session, username=u["username"], password=password, actor=cli_actor())
        new_units = seed_demo_units(session=session)
        new_agreements = seed_demo_agreements(session=session)
    with session_scope() as session:
        sync_broker(session)
    creds_path.parent.mkdir(parents=True, exist_ok=True)
    for path, content in ((creds_path, {"gateways": out}), (users_path, users)):
        path.write_text(json.dumps(content, indent=2))
        path.chmod(0o600)
    console.print(
        f"[green]{len(out)} demo gateways and {len(DEMO_USERS)} demo users ready, {new_units} new demo "
        f"patrol units, {new_agreements} new demo sharing agreements[/] ({creds_path}, {users_path})"
    )
