"""`borderwatch create-agency`, `create-user`, `disable-user`, `enable-user`, `reset-password`:
agencies and their users. Every change is in the audit trail as the operating-system user's."""

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
            service.create_agency(session=session, code=code, country=country or code[:2], name=name, actor=cli_actor())
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

    password = _read_password(password_stdin, "Password")
    try:
        with session_scope() as session:
            service.create_user(
                session=session, username=username, agency_code=agency, role=role, password=password, actor=cli_actor()
            )
    except BorderwatchError as exc:
        fail(exc.message)
    console.print(f"[green]user {username} ({agency}, {role}) created")


@app.command("disable-user")
def disable_user(username: Annotated[str, typer.Argument(help="The user to disable.")]) -> None:
    """Disable a user: no more sign-ins, and every token of theirs stops working at once (open live
    feeds and CoT streams end within BW_STREAM_RECHECK_S seconds)."""
    from accounts import service
    from core.db import session_scope
    from core.errors import BorderwatchError

    try:
        with session_scope() as session:
            service.disable_user(session=session, username=username, actor=cli_actor())
    except BorderwatchError as exc:
        fail(exc.message)
    console.print(f"[green]user {username} disabled; their tokens are revoked")


@app.command("enable-user")
def enable_user(username: Annotated[str, typer.Argument(help="The user to enable again.")]) -> None:
    """Let a disabled user sign in again (their old tokens stay revoked)."""
    from accounts import service
    from core.db import session_scope
    from core.errors import BorderwatchError

    try:
        with session_scope() as session:
            service.enable_user(session=session, username=username, actor=cli_actor())
    except BorderwatchError as exc:
        fail(exc.message)
    console.print(f"[green]user {username} enabled")


@app.command("reset-password")
def reset_password(
    username: Annotated[str, typer.Argument(help="The user whose password to set.")],
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
) -> None:
    """Set a user's password (prompted, or read from stdin); every token of theirs stops working at once."""
    from accounts import service
    from core.db import session_scope
    from core.errors import BorderwatchError

    password = _read_password(password_stdin, "New password")
    try:
        with session_scope() as session:
            service.set_password(session=session, username=username, password=password, actor=cli_actor())
    except BorderwatchError as exc:
        fail(exc.message)
    console.print(f"[green]password of {username} set; their tokens are revoked")


def _read_password(from_stdin: bool, prompt: str) -> str:
    """A password from standard input's first line, or prompted twice without echo."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
