"""`borderwatch services`: the project-local PostgreSQL/PostGIS and Mosquitto (cli/local/)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import fail
from core.settings import get_settings

app = typer.Typer(help="Start, stop and inspect the project-local PostgreSQL/PostGIS and Mosquitto.")


# -- services -------------------------------------------------------------------------------
@app.command("up")
def services_up() -> None:
    """Install what is missing, then start PostGIS and Mosquitto on free loopback ports (idempotent)."""
    from cli import local as services

    try:
        services.up()
    except services.ServiceError as exc:
        fail(str(exc))
    get_settings.cache_clear()


@app.command("down")
def services_down() -> None:
    """Stop exactly the services `services up` started."""
    from cli import local as services

    services.down()


@app.command("status")
def services_status() -> None:
    """Show whether the project-local services run, on which ports."""
    from cli import local as services

    services.print_status(services.status())


@app.command("purge")
def services_purge(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking first.")] = False,
) -> None:
    """Stop the services and delete their data for a fresh start: databases, broker files (gateways'
    passwords included), ports, passwords, JWT secret; as root also /var/lib/borderwatch/<hash>.

    Acts on the run dir `services up` uses ($BW_RUN_DIR or .run); `make clean PURGE=1` does it for all.
    """
    from cli import local as services

    try:
        targets = services.purge_targets()
        if not targets:
            services.console.print(f"Nothing to purge for {services.run_dir()}.")
            return
        if not yes:
            services.console.print("This deletes, for good:")
            for path in targets:
                services.console.print(f"  {path}", highlight=False)
            typer.confirm("Stop the services and delete this data?", abort=True)
        services.purge()
    except services.ServiceError as exc:
        fail(str(exc))
