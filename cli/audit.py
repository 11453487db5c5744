"""`borderwatch audit`: the tamper-evident audit trail."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cli.common import console, fail, progress_bar

app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


# -- audit ----------------------------------------------------------------------------------
@app.command("verify")
def audit_verify(
    anchor: Annotated[
        Optional[str],
        typer.Option(
            help="SEQ:HASH printed by an earlier verify and kept outside the database: also catches entries "
            "cut from the end and a chain rewritten from there."
        ),
    ] = None,
) -> None:
    """Check the whole hash chain; say where it breaks (altered, removed, reordered entries), exit 1 if it does."""
    from audit import service as audit
    from core.db import session_scope
    from core.errors import BorderwatchError

    try:
        pinned = audit.parse_anchor(anchor) if anchor else None
    except BorderwatchError as exc:
        fail(exc.message)
    with session_scope() as session:
        # One snapshot for the whole walk: entries appended meanwhile are checked next time.
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        total = audit.count_entries(session=session)
        with progress_bar() as progress:
            task = progress.add_task("verifying the audit chain", total=total)
            result = audit.verify(session=session, anchor=pinned, progress=lambda n: progress.update(task, completed=n))
            progress.update(task, completed=result.checked, total=max(total, result.checked))
    for problem in result.problems:
        console.print(f"[bold red]{problem.kind}[/] at {problem.seq}: {problem.message}")
    if result.more_problems:
        console.print(f"[red]... and {result.more_problems} more")
    if not result.ok:
        console.print(
            f"[bold red]audit chain broken[/]: {len(result.problems) + result.more_problems} problem(s) "
            f"in {result.checked} entries; first at entry {result.problems[0].seq}"
        )
        raise typer.Exit(1)
    console.print(f"[green]audit chain intact[/]: {result.checked} entries")
    if result.head_seq:
        # The head, to keep elsewhere and pass back as --anchor next time.
        print(f"{result.head_seq}:{result.head_hash}")
