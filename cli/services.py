"""`borderwatch services`: the project-local PostgreSQL/PostGIS and Mosquitto (cli/local.py)."""

from __future__ import annotations

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
