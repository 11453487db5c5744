"""The long-running processes: `ingest`, `api`, `simulate`, `cot-serve`, `webhooks-deliver`, `retention`,
and `run`, which starts them all for a demonstration."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from cli.common import console, fail, progress_bar
from cli.demo import seed_demo
from cli.schema import load_borders, migrate_database
from cli.services import services_up
from core.settings import get_settings, run_dir

app = typer.Typer()


@app.command()
def retention(
    keep_days: Annotated[
        Optional[int], typer.Option(help="Keep detections of this many days (default: BW_DETECTION_RETENTION_DAYS).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be dropped.")] = False,
    dead_letter_days: Annotated[
        Optional[int],
        typer.Option(help="Keep dead letters of this many days (default: BW_DEAD_LETTER_RETENTION_DAYS)."),
    ] = None,
) -> None:
    """Drop the monthly detection partitions wholly older than the retention policy (without blocking
    ingest), and delete dead letters older than theirs."""
    from core.db import make_engine
    from sensors import retention as policy

    settings = get_settings()
    days = keep_days if keep_days is not None else settings.detection_retention_days
    # Detaching and dropping partitions takes their owner: the role that runs the migrations.
    engine = make_engine(settings.owner_url())
    try:
        todo = policy.plan(engine, keep_days=days, min_days=settings.max_detection_age_days)
    except policy.PolicyTooShort as exc:
        fail(str(exc))
    table = Table(title=f"Detection partitions older than {days} days (before {todo.cutoff:%Y-%m-%d %H:%M} UTC)")
    for col in ("partition", "ends", "rows"):
        table.add_column(col)
    for part in todo.partitions:
        table.add_row(
            part.name, f"{part.upper:%Y-%m-%d}", f"{part.rows:,}" + (" (detach pending)" if part.pending else "")
        )
    console.print(table)
    console.print(f"detection_keys rows to delete: {todo.keys:,}")
    letter_days = dead_letter_days if dead_letter_days is not None else settings.dead_letter_retention_days
    if dry_run:
        console.print("dry run: nothing dropped")
        return
    with progress_bar() as progress:
        letters = progress.add_task(f"deleting dead letters older than {letter_days} days", total=None)
        purged = policy.purge_dead_letters(
            engine, keep_days=letter_days, progress=lambda _, n: progress.update(letters, advance=n)
        )
    console.print(f"deleted {purged:,} dead letters older than {letter_days} days")
    if not todo.partitions:
        console.print("nothing to drop")
        return
    with progress_bar() as progress:
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
    from core.db import make_engine
    from sensors.ingest import IngestWorker

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = get_settings()
    worker = IngestWorker(settings, make_engine(settings.ingest_url()), client_id=client_id)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: worker.stop())
    started = time.monotonic()
    worker.run()
    if worker.failed:
        fail("the ingest worker stopped on an error (see the log above)")
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
    uvicorn.run(
        "api.app:app",
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level="info",
        # The scheme (for the cookies' Secure flag) and the client address (for sign-in throttling)
        # from X-Forwarded-Proto/-For, from the trusted proxies only.
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
    )


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
        fail(str(exc))
    sim = Simulator(
        gateways=gateways,
        mqtt_host=host,
        mqtt_port=port,
        topic_root=settings.mqtt_topic_root,
        crossing_share=crossing_share,
        seed=seed,
    )
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    with progress_bar() as progress:
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


def free_port(host: str, start: int) -> int:
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
    port = port or free_port(settings.api_host, settings.api_port)
    exe = [sys.executable, "-m", "cli"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = {
        "ingest": subprocess.Popen([*exe, "ingest"], env=env),
        "api": subprocess.Popen([*exe, "api", "--port", str(port)], env=env),
    }
    # Signs the head of the audit chain every BW_AUDIT_CHECKPOINT_INTERVAL_S (docs/security.md).
    if Path(settings.audit_key_file).exists():
        procs["checkpoints"] = subprocess.Popen([*exe, "audit", "checkpoint", "--every", "0"], env=env)
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
    alert_hours: Annotated[
        float, typer.Option(help="Alerts observed within this many hours are in the picture.")
    ] = 24.0,
) -> None:
    """Stream Cursor-on-Target events of units, alerts and incidents over TCP to TAK clients.

    A client's first line is its access token (POST /api/v1/auth/token); it then receives its
    agency's picture and one event per change.
    """
    import asyncio

    from interop.cot_server import CotServer

    server = CotServer(
        interval=interval, refresh=refresh, alert_hours=alert_hours, on_event=lambda message: console.log(message)
    )

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

    deliverer = Deliverer(
        session_scope,
        allowed_networks=get_settings().webhook_networks(),
        timeout_s=timeout,
        max_attempts=max_attempts,
        backoff_s=backoff,
    )
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
