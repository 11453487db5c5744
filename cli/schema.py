"""`borderwatch migrate`, `load-borders`, `import-borders`: the database schema and the border data in it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import console, fail, progress_bar
from core.settings import REPO_ROOT, get_settings

app = typer.Typer()


# -- schema and borders ---------------------------------------------------------------------
def alembic_config(url: str | None = None):
    from alembic.config import Config

    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate_database(url: str | None = None) -> list[str]:
    """Upgrade to head as the owner role, then (again) grant the runtime roles their rights: a role
    created after the migration that grants them still gets them. Returns the roles granted to."""
    from alembic import command
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from core.roles import grant_runtime_rights

    settings = get_settings()
    url = url or settings.owner_url()
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            return grant_runtime_rights(conn, api_role=settings.db_api_role, ingest_role=settings.db_ingest_role)
    finally:
        engine.dispose()


@app.command()
def migrate(
    database_url: Annotated[
        Optional[str],
        typer.Option(
            help="URL of the role that owns the tables (default: BW_OWNER_DATABASE_URL, else BW_DATABASE_URL)."
        ),
    ] = None,
) -> None:
    """Bring the database schema up to date (Alembic upgrade head) and grant the runtime roles their rights."""
    settings = get_settings()
    if database_url is None and settings.single_role():
        console.print(
            "[yellow]warning:[/] BW_OWNER_DATABASE_URL is not set: the API and the ingest worker use the role that "
            "owns the tables, which can rewrite the audit trail (docs/security.md#database-roles)"
        )
    roles = migrate_database(database_url)
    console.print("[green]schema up to date[/]" + (f"; rights granted to {', '.join(roles)}" if roles else ""))


@app.command("load-borders")
def load_borders(
    buffer_m: Annotated[Optional[float], typer.Option(help="Width of the border buffer strips in metres.")] = None,
) -> None:
    """Load the shipped border segments, territorial seas, joint sectors and states (idempotent)."""
    from core.db import session_scope
    from geo import service

    settings = get_settings()
    with progress_bar() as progress, session_scope() as session:
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
    layer: Annotated[
        Optional[str], typer.Option(help="Layer to read (GeoPackage and other multi-layer files).")
    ] = None,
    source: Annotated[str, typer.Option(help="Provenance recorded with each segment.")] = "",
    kind: Annotated[
        Optional[str], typer.Option(help="Default kind (land/maritime for lines, zone kind for polygons).")
    ] = None,
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
        with progress_bar() as progress, session_scope() as session:
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
        fail(exc.message)
    for line in report.repaired:
        console.print(f"  [yellow]repaired[/] {line}")
    for line in report.rejected:
        console.print(f"  [red]rejected[/] {line}")
    console.print(
        f"[green]{report.segments} segments and {report.zones} zones imported, {len(report.rejected)} rejected"
    )
    if report.rejected and not (report.segments or report.zones):
        raise typer.Exit(1)
