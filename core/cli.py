"""The ``borderwatch`` command: services, schema, borders, registry, ingest, API, simulator."""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.settings import REPO_ROOT, get_settings, run_dir

app = typer.Typer(help="Borderwatch: border surveillance and patrol coordination.", no_args_is_help=True)
services_app = typer.Typer(help="Start, stop and inspect the project-local PostgreSQL/PostGIS and Mosquitto.")
gateway_app = typer.Typer(help="Register sensor gateways and their sensors (and their broker credentials).")
app.add_typer(services_app, name="services")
app.add_typer(gateway_app, name="gateway")
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
evidence_app = typer.Typer(help="Evidence on incidents and its chain of custody.", no_args_is_help=True)
app.add_typer(evidence_app, name="evidence")
console = Console(stderr=True)


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def _cli_actor() -> str:
    """Who the audit trail records for a command: the operating-system user who ran it."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid-{os.getuid()}"


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


# -- audit ----------------------------------------------------------------------------------
@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[Optional[str], typer.Option(
        help="SEQ:HASH printed by an earlier verify and kept outside the database: also catches entries "
             "cut from the end and a chain rewritten from there.")] = None,
) -> None:
    """Check the whole hash chain; say where it breaks (altered, removed, reordered entries), exit 1 if it does."""
    from audit import service as audit
    from core.db import session_scope
    from core.errors import BorderwatchError

    try:
        pinned = audit.parse_anchor(anchor) if anchor else None
    except BorderwatchError as exc:
        _fail(exc.message)
    with session_scope() as session:
        # One snapshot for the whole walk: entries appended meanwhile are checked next time.
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        total = audit.count_entries(session=session)
        with _progress() as progress:
            task = progress.add_task("verifying the audit chain", total=total)
            result = audit.verify(session=session, anchor=pinned,
                                  progress=lambda n: progress.update(task, completed=n))
            progress.update(task, completed=result.checked, total=max(total, result.checked))
    for problem in result.problems:
        console.print(f"[bold red]{problem.kind}[/] at {problem.seq}: {problem.message}")
    if result.more_problems:
        console.print(f"[red]... and {result.more_problems} more")
    if not result.ok:
        console.print(f"[bold red]audit chain broken[/]: {len(result.problems) + result.more_problems} problem(s) "
                      f"in {result.checked} entries; first at entry {result.problems[0].seq}")
        raise typer.Exit(1)
    console.print(f"[green]audit chain intact[/]: {result.checked} entries")
    if result.head_seq:
        # The head, to keep elsewhere and pass back as --anchor next time.
        print(f"{result.head_seq}:{result.head_hash}")


# -- evidence -------------------------------------------------------------------------------
@evidence_app.command("verify")
def evidence_verify(
    item: Annotated[Optional[int], typer.Option(min=1, help="Check only this evidence item's chain.")] = None,
) -> None:
    """Check the chain of custody of every evidence item (or one); name each item and event where a chain
    breaks (altered, removed, reordered events, an item record changed), exit 1 if one does."""
    from core.db import session_scope
    from core.errors import BorderwatchError
    from evidence import service as evidence

    with session_scope() as session:
        # One snapshot for the whole walk: events appended meanwhile are checked next time.
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        total = evidence.count_items(session=session, item_id=item)
        with _progress() as progress:
            task = progress.add_task("verifying chains of custody", total=total)
            try:
                result = evidence.verify(session=session, item_id=item,
                                         progress=lambda n: progress.update(task, completed=n))
            except BorderwatchError as exc:
                _fail(exc.message)
            progress.update(task, completed=result.items, total=max(total, result.items))
    for item_id, problems in result.broken.items():
        for problem in problems:
            console.print(f"[bold red]item {item_id}[/]: {problem.kind} at event {problem.seq}: {problem.message}")
    if not result.ok:
        first = next(iter(result.broken.items()))
        console.print(f"[bold red]chain of custody broken[/] for {len(result.broken)} of {result.items} item(s); "
                      f"first: item {first[0]} at event {first[1][0].seq}")
        raise typer.Exit(1)
    console.print(f"[green]chains of custody intact[/]: {result.items} item(s), {result.events} event(s)")


# -- services -------------------------------------------------------------------------------
@services_app.command("up")
def services_up() -> None:
    """Install what is missing, then start PostGIS and Mosquitto on free loopback ports (idempotent)."""
    from core import services

    try:
        services.up()
    except services.ServiceError as exc:
        _fail(str(exc))
    get_settings.cache_clear()


@services_app.command("down")
def services_down() -> None:
    """Stop exactly the services `services up` started."""
    from core import services

    services.down()


@services_app.command("status")
def services_status() -> None:
    """Show whether the project-local services run, on which ports."""
    from core import services

    services.print_status(services.status())


# -- schema and borders ---------------------------------------------------------------------
def _alembic_config(url: str | None = None):
    from alembic.config import Config

    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate_database(url: str | None = None) -> None:
    from alembic import command

    command.upgrade(_alembic_config(url or get_settings().database_url), "head")


@app.command()
def migrate(
    database_url: Annotated[Optional[str], typer.Option(help="Database URL (default: BW_DATABASE_URL).")] = None,
) -> None:
    """Bring the database schema up to date (Alembic upgrade head)."""
    migrate_database(database_url)
    console.print("[green]schema up to date")


@app.command("load-borders")
def load_borders(
    buffer_m: Annotated[Optional[float], typer.Option(help="Width of the border buffer strips in metres.")] = None,
) -> None:
    """Load the shipped border segments, territorial seas, joint sectors and states (idempotent)."""
    from core.db import session_scope
    from geo import service

    settings = get_settings()
    with _progress() as progress, session_scope() as session:
        task = progress.add_task("loading borders", total=len(service.SHIPPED_FILES))

        def step(name: str, loaded: int, total: int) -> None:
            progress.update(task, advance=1, description=f"{name}: {loaded}/{total}")

        report = service.load_shipped_borders(
            session=session, buffer_m=buffer_m or settings.border_buffer_m, progress=step
        )
        progress.update(task, completed=len(service.SHIPPED_FILES))
    console.print(
        f"[green]{report.states} states, {report.segments} segments, {report.zones} zones "
        f"(incl. buffer strips) loaded[/]"
    )
    for line in report.repaired + report.rejected:
        console.print(f"  [yellow]{line}")


@app.command("import-borders")
def import_borders(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="GeoJSON, GeoPackage, Shapefile, ...")],
    layer: Annotated[Optional[str], typer.Option(help="Layer to read (GeoPackage and other multi-layer files).")] = None,
    source: Annotated[str, typer.Option(help="Provenance recorded with each segment.")] = "",
    kind: Annotated[Optional[str], typer.Option(help="Default kind (land/maritime for lines, zone kind for polygons).")] = None,
    left_state: Annotated[Optional[str], typer.Option(help="Default state on the left of lines.")] = None,
    right_state: Annotated[Optional[str], typer.Option(help="Default state on the right of lines.")] = None,
    owner_agency: Annotated[Optional[str], typer.Option(help="Default owner agency of polygons.")] = None,
    impact_level: Annotated[Optional[str], typer.Option(help="Default impact level (low/medium/high).")] = None,
    buffer_m: Annotated[Optional[float], typer.Option(help="Rebuild land border buffers with this width.")] = None,
) -> None:
    """Import an agency's official boundaries: lines become segments, polygons zones (upsert by name).

    The file is reprojected to EPSG:4326; invalid geometries are repaired or rejected, with a
    message per feature.
    """
    from core.db import session_scope
    from core.errors import BorderwatchError
    from geo import service

    defaults = {
        k: v
        for k, v in {
            "kind": kind,
            "left_state": left_state,
            "right_state": right_state,
            "owner_agency": owner_agency,
            "impact_level": impact_level,
        }.items()
        if v
    }
    try:
        frame = service.read_features(file, layer=layer)
        with _progress() as progress, session_scope() as session:
            task = progress.add_task(f"importing {file.name}", total=len(frame))
            report = service.import_features(
                session=session,
                frame=frame,
                source=source or file.name,
                defaults=defaults,
                progress=lambda n: progress.advance(task, n),
            )
            if report.segments:
                service.build_border_buffers(session=session, width_m=buffer_m or get_settings().border_buffer_m)
    except BorderwatchError as exc:
        _fail(exc.message)
    for line in report.repaired:
        console.print(f"  [yellow]repaired[/] {line}")
    for line in report.rejected:
        console.print(f"  [red]rejected[/] {line}")
    console.print(f"[green]{report.segments} segments and {report.zones} zones imported, {len(report.rejected)} rejected")
    if report.rejected and not (report.segments or report.zones):
        raise typer.Exit(1)


# -- agencies, users, gateways --------------------------------------------------------------
@app.command("create-agency")
def create_agency(
    code: Annotated[str, typer.Argument(help="Country code + short name, e.g. TH-RTP.")],
    name: Annotated[str, typer.Option(help="Full name.")],
    country: Annotated[Optional[str], typer.Option(help="ISO 3166 alpha-2 (default: from the code).")] = None,
) -> None:
    """Create an agency."""
    from core import service
    from core.db import session_scope
    from core.errors import BorderwatchError

    try:
        with session_scope() as session:
            service.create_agency(session=session, code=code, country=country or code[:2], name=name,
                                  actor=_cli_actor())
    except BorderwatchError as exc:
        _fail(exc.message)
    console.print(f"[green]agency {code} created")


@app.command("create-user")
def create_user(
    username: Annotated[str, typer.Argument()],
    agency: Annotated[str, typer.Option(help="Agency code, e.g. TH-RTP.")],
    role: Annotated[str, typer.Option(help="admin, supervisor, operator, patrol_unit or liaison.")] = "operator",
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
) -> None:
    """Create a user of one agency; the password is prompted (or read from stdin)."""
    from core import service
    from core.db import session_scope
    from core.errors import BorderwatchError

    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    try:
        with session_scope() as session:
            service.create_user(session=session, username=username, agency_code=agency, role=role, password=password,
                                actor=_cli_actor())
    except BorderwatchError as exc:
        _fail(exc.message)
    console.print(f"[green]user {username} ({agency}, {role}) created")


def _sync_broker(session) -> int:
    from sensors import access

    return access.sync_broker(session=session, settings=get_settings())


@gateway_app.command("add")
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
            _sync_broker(session)
    except BorderwatchError as exc:
        _fail(exc.message)
    console.print(f"[green]gateway {gateway_id} registered[/]; MQTT username {gateway_id}, password (shown once):")
    print(password)


@gateway_app.command("add-sensor")
def gateway_add_sensor(
    sensor_id: Annotated[str, typer.Argument()],
    gateway: Annotated[str, typer.Option(help="Gateway the sensor publishes through.")],
    kind: Annotated[str, typer.Option(help="camera, ground_sensor, radar, anpr, ais_receiver or other.")],
    lon: Annotated[float, typer.Option()],
    lat: Annotated[float, typer.Option()],
    range_m: Annotated[Optional[float], typer.Option(help="Coverage radius in metres.")] = None,
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
        _fail(str(exc))
    except BorderwatchError as exc:
        _fail(exc.message)
    console.print(f"[green]sensor {sensor_id} registered")


@gateway_app.command("frigate-zone")
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
        _fail(exc.message)
    console.print(f"[green]Frigate zone {zone} of {sensor_id} placed")


@gateway_app.command("sync-broker")
def gateway_sync_broker() -> None:
    """Rewrite the broker's password file and ACL from the registry and reload it."""
    from core.db import session_scope

    with session_scope() as session:
        count = _sync_broker(session)
    console.print(f"[green]broker credentials written for {count} gateways")


@gateway_app.command("init-broker")
def gateway_init_broker(
    directory: Annotated[Optional[Path], typer.Option(help="Broker config folder (default: BW_MOSQUITTO_DIR).")] = None,
) -> None:
    """For a broker this project does not start (docker compose): write the service users' password
    and ACL entries from BW_MQTT_URL / BW_MQTT_API_URL, then the gateways' entries."""
    from core.db import session_scope
    from sensors import access

    settings = get_settings()
    target = directory or (Path(settings.mosquitto_dir) if settings.mosquitto_dir else None)
    if target is None:
        _fail("set BW_MOSQUITTO_DIR or pass --directory")
    users = access.write_service_entries(settings=settings, directory=target)
    settings = settings.model_copy(update={"mosquitto_dir": str(target)})
    with session_scope() as session:
        count = access.sync_broker(session=session, settings=settings)
    console.print(f"[green]broker files in {target}: service users {', '.join(users)}, {count} gateways")


@app.command("seed-demo")
def seed_demo() -> None:
    """Create the demo gateways, sensors, operator accounts, patrol units and sharing agreements (idempotent);
    credentials go to .run/."""
    from core import service as core_service
    from core.db import session_scope
    from core.models import User
    from geo import service as geo_service
    from patrols.demo import seed_demo_units
    from sensors import service
    from sharing.demo import seed_demo_agreements
    from sensors.demo import DEMO_GATEWAYS, DEMO_USERS
    from sensors.models import Gateway, Sensor
    from sensors.schemas import GatewayCreate, SensorCreate

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
                            id=s["id"], gateway_id=gw["id"], kind=s["kind"], lon=s["lon"], lat=s["lat"],
                            coverage_radius_m=s["range_m"],
                        ),
                    )
            out.append({**gw, "password": password})
        for u in DEMO_USERS:
            known = u["username"] in users
            password = users.setdefault(u["username"], secrets.token_urlsafe(12))
            if session.query(User).filter_by(username=u["username"]).first() is None:
                core_service.create_user(
                    session=session, username=u["username"], agency_code=u["agency"], role=u["role"],
                    password=password, actor=_cli_actor(),
                )
            elif not known:
                # The demo account exists but its password file was lost: give it a new one.
                core_service.set_password(session=session, username=u["username"], password=password,
                                          actor=_cli_actor())
        new_units = seed_demo_units(session=session)
        new_agreements = seed_demo_agreements(session=session)
    with session_scope() as session:
        _sync_broker(session)
    creds_path.parent.mkdir(parents=True, exist_ok=True)
    for path, content in ((creds_path, {"gateways": out}), (users_path, users)):
        path.write_text(json.dumps(content, indent=2))
        path.chmod(0o600)
    console.print(f"[green]{len(out)} demo gateways and {len(DEMO_USERS)} demo users ready, {new_units} new demo "
                  f"patrol units, {new_agreements} new demo sharing agreements[/] ({creds_path}, {users_path})")


@app.command()
def retention(
    keep_days: Annotated[Optional[int], typer.Option(
        help="Keep detections of this many days (default: BW_DETECTION_RETENTION_DAYS).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be dropped.")] = False,
) -> None:
    """Drop the monthly detection partitions wholly older than the retention policy (without blocking ingest)."""
    from core.db import get_engine
    from sensors import retention as policy

    settings = get_settings()
    days = keep_days if keep_days is not None else settings.detection_retention_days
    engine = get_engine()
    try:
        todo = policy.plan(engine, keep_days=days, min_days=settings.max_detection_age_days)
    except policy.PolicyTooShort as exc:
        _fail(str(exc))
    table = Table(title=f"Detection partitions older than {days} days (before {todo.cutoff:%Y-%m-%d %H:%M} UTC)")
    for col in ("partition", "ends", "rows"):
        table.add_column(col)
    for part in todo.partitions:
        table.add_row(part.name, f"{part.upper:%Y-%m-%d}", f"{part.rows:,}" + (" (detach pending)" if part.pending else ""))
    console.print(table)
    console.print(f"detection_keys rows to delete: {todo.keys:,}")
    if dry_run or not todo.partitions:
        console.print("dry run: nothing dropped" if dry_run else "nothing to drop")
        return
    with _progress() as progress:
        parts = progress.add_task("detaching and dropping partitions", total=len(todo.partitions))
        keys = progress.add_task("deleting detection keys", total=max(todo.keys, 1))

        def step(what: str, n: int) -> None:
            if what == "detection_keys":
                progress.update(keys, advance=n)
            else:
                progress.update(parts, advance=1, description=f"dropped {what}")

        report = policy.apply(engine, todo, progress=step)
        progress.update(keys, completed=max(todo.keys, 1))
    console.print(
        f"[green]dropped {len(report.partitions_dropped)} partitions ({report.rows_dropped:,} detections), "
        f"deleted {report.keys_deleted:,} detection keys"
    )


# -- long-running processes -----------------------------------------------------------------
@app.command()
def ingest(
    client_id: Annotated[Optional[str], typer.Option(help="MQTT client id (one per worker; shares the load).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run an ingest worker: MQTT detections -> PostGIS -> alerts, until SIGINT/SIGTERM."""
    from core.db import get_engine
    from sensors.ingest import IngestWorker

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s")
    worker = IngestWorker(get_settings(), get_engine(), client_id=client_id)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: worker.stop())
    started = time.monotonic()
    worker.run()
    if worker.failed:
        _fail("the ingest worker stopped on an error (see the log above)")
    t = worker.totals
    console.print(
        f"ingest stopped after {time.monotonic() - started:.0f} s: {t['messages']} messages, {t['stored']} stored, "
        f"{t['duplicates']} duplicates, {t['dead']} dead letters, {t['alerts']} alerts"
    )


@app.command()
def api(
    host: Annotated[Optional[str], typer.Option()] = None,
    port: Annotated[Optional[int], typer.Option()] = None,
) -> None:
    """Serve the HTTP API and map pages (uvicorn)."""
    import uvicorn

    settings = get_settings()
    uvicorn.run("api.app:app", host=host or settings.api_host, port=port or settings.api_port, log_level="info")


@app.command()
def simulate(
    rate: Annotated[float, typer.Option(help="Detections per second.")] = 20.0,
    duration: Annotated[float, typer.Option(help="Seconds to run (0: until interrupted).")] = 0.0,
    crossing_share: Annotated[float, typer.Option(help="Share of tracks that cross the border.")] = 0.3,
    seed: Annotated[Optional[int], typer.Option(help="Random seed for repeatable scenarios.")] = None,
) -> None:
    """Publish demo detections over MQTT as the demo gateways would (run `seed-demo` first)."""
    from sensors.simulator import Simulator, load_gateways

    settings = get_settings()
    host, port, _, _ = settings.mqtt_parts()
    try:
        gateways = load_gateways(Path(settings.demo_gateways_file))
    except FileNotFoundError as exc:
        _fail(str(exc))
    sim = Simulator(gateways=gateways, mqtt_host=host, mqtt_port=port, topic_root=settings.mqtt_topic_root,
                    crossing_share=crossing_share, seed=seed)
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    with _progress() as progress:
        task = progress.add_task(f"publishing at {rate:g}/s", total=int(rate * duration) if duration else None)

        def tick(sent: int) -> None:
            progress.update(task, completed=sent)
            if stop["flag"]:
                raise KeyboardInterrupt

        try:
            sent = sim.run(rate=rate, duration=duration, on_tick=tick)
        except KeyboardInterrupt:
            sent = sim.sent
        finally:
            sim.close()
    console.print(f"published {sent} detections")


def _free_port(host: str, start: int) -> int:
    """The first port from ``start`` on that nothing listens on (a demo must not fail on a busy 8000)."""
    import socket

    for port in range(start, start + 100):
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise typer.BadParameter(f"no free port in {start}..{start + 99}")


@app.command()
def run(
    rate: Annotated[float, typer.Option(help="Simulator detections per second.")] = 20.0,
    port: Annotated[Optional[int], typer.Option(help="API port.")] = None,
) -> None:
    """Everything for a demo: services, schema, borders, demo registry, ingest, API and simulator."""
    services_up()
    migrate_database()
    load_borders(buffer_m=None)
    seed_demo()
    settings = get_settings()
    port = port or _free_port(settings.api_host, settings.api_port)
    exe = [sys.executable, "-m", "core.cli"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = {
        "ingest": subprocess.Popen([*exe, "ingest"], env=env),
        "api": subprocess.Popen([*exe, "api", "--port", str(port)], env=env),
    }
    time.sleep(2)
    procs["simulator"] = subprocess.Popen([*exe, "simulate", "--rate", str(rate)], env=env, stderr=subprocess.DEVNULL)
    users = json.loads((run_dir() / "demo-users.json").read_text())
    table = Table(title="Borderwatch is running", show_header=False)
    table.add_row("API", f"http://{settings.api_host}:{port}/api/v1  (docs: http://{settings.api_host}:{port}/docs)")
    table.add_row("Map", f"http://{settings.api_host}:{port}/maps/cop  (also /maps/overview, /maps/coverage)")
    table.add_row("Health", f"http://{settings.api_host}:{port}/health")
    for name, password in users.items():
        table.add_row("Login", f"{name} / {password}")
    table.add_row("Stop", "Ctrl-C stops ingest, API and simulator (`borderwatch services down` stops the databases)")
    Console().print(table)
    try:
        while all(p.poll() is None for p in procs.values()):
            time.sleep(0.5)
        failed = [name for name, p in procs.items() if p.poll() is not None]
        console.print(f"[red]{', '.join(failed)} stopped; stopping the rest")
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


@app.command("cot-serve")
def cot_serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback: the stream is plain TCP).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (8087 is TAK's usual plain CoT input).")] = 8087,
    interval: Annotated[float, typer.Option(help="Seconds between looks for changes.")] = 1.0,
    refresh: Annotated[float, typer.Option(help="Seconds between full pictures (markers stay fresh).")] = 60.0,
    alert_hours: Annotated[float, typer.Option(help="Alerts observed within this many hours are in the picture.")] = 24.0,
) -> None:
    """Stream Cursor-on-Target events of units, alerts and incidents over TCP to TAK clients.

    A client's first line is its access token (POST /api/v1/auth/token); it then receives its
    agency's picture and one event per change.
    """
    import asyncio

    from interop.cot_server import CotServer

    server = CotServer(interval=interval, refresh=refresh, alert_hours=alert_hours,
                       on_event=lambda message: console.log(message))

    def ready(bound: int) -> None:
        console.print(f"[green]CoT stream on {host}:{bound}[/] (first line: an access token)")

    try:
        asyncio.run(server.serve(host, port, ready))
    except KeyboardInterrupt:
        console.print("stopped")



@app.command("webhooks-deliver")
def webhooks_deliver(
    interval: Annotated[float, typer.Option(help="Seconds between cycles when there is nothing to do.")] = 1.0,
    timeout: Annotated[float, typer.Option(help="Seconds a receiver has to answer.")] = 10.0,
    max_attempts: Annotated[int, typer.Option(help="Attempts before a delivery is given up.")] = 6,
    backoff: Annotated[float, typer.Option(help="Seconds before the first retry; doubled each time.")] = 30.0,
    once: Annotated[bool, typer.Option(help="Run one cycle and exit.")] = False,
) -> None:
    """Deliver the agencies' alerts to their webhook subscriptions (signed POSTs, retries with back-off)."""
    from core.db import session_scope
    from interop.webhooks import Deliverer

    deliverer = Deliverer(session_scope, allowed_networks=get_settings().webhook_networks(), timeout_s=timeout,
                          max_attempts=max_attempts, backoff_s=backoff)
    delivered = failed = 0
    try:
        with console.status("delivering webhooks") as status:
            while True:
                queued, outcomes = deliverer.run_once()
                delivered += sum(o.delivered for o in outcomes)
                failed += sum(not o.delivered for o in outcomes)
                status.update(f"delivering webhooks: {delivered} delivered, {failed} failed attempts")
                if queued or outcomes:
                    console.log(f"queued {queued}, attempted {len(outcomes)}")
                if once:
                    break
                if not outcomes:
                    time.sleep(interval)
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        deliverer.close()
    console.print(f"{delivered} delivered, {failed} failed attempts")


if __name__ == "__main__":
    app()
