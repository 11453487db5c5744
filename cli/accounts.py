"""`borderwatch create-agency`, `create-user`: agencies and their users."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from cli.common import cli_actor, console, fail

app = typer.Typer()


# -- agencies, users, gateways --------------------------------------------------------------
@app.command("create-agency")
def create_agency(
    code: Annotated[str, typer.Argument(help="Country code + short name, e.g. TH-RTP.")],
    name: Annotated[str, typer.Option(help="Full name.")],
    country: Annotated[Optional[str], typer.Option(help="ISO 3166 alpha-2 (default: from the code).")] = None,
) -> None:
    """Create an agency."""
    from accounts import service
    from core.db import session_scope
    from core.errors import BorderwatchError

    try:
        with session_scope() as session:
            service.create_agency(session=session, code=code, country=country or code[:2], name=name,
                                  actor=cli_actor())
    except BorderwatchError as exc:
        fail(exc.message)
    console.print(f"[green]agency {code} created")


@app.command("create-user")
def create_user(
    username: Annotated[str, typer.Argument()],
    agency: Annotated[str, typer.Option(help="Agency code, e.g. TH-RTP.")],
    role: Annotated[str, typer.Option(help="admin, supervisor, operator, patrol_unit or liaison.")] = "operator",
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
) -> None:
    """Create a user of one agency; the password is prompted (or read from stdin)."""
    from accounts import service
    from core.db import session_scope
    from core.errors import BorderwatchError

    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    try:
        with session_scope() as session:
            service.create_user(session=session, username=username, agency_code=agency, role=role, password=password,
                                actor=cli_actor())
    except BorderwatchError as exc:
        fail(exc.message)
    console.print(f"[green]user {username} ({agency}, {role}) created")
