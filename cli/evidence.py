"""`borderwatch evidence`: evidence on incidents and its chain of custody."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cli.common import console, fail, progress_bar

app = typer.Typer(help="Evidence on incidents and its chain of custody.", no_args_is_help=True)


# -- evidence -------------------------------------------------------------------------------
@app.command("verify")
def evidence_verify(
    item: Annotated[Optional[int], typer.Option(min=1, help="Check only this evidence item's chain.")] = None,
) -> None:
    """Check the chain of custody of every evidence item (or one); name each item and event where a chain
    breaks (altered, removed, reordered events, an item record changed), exit 1 if one does."""
    from core.db import session_scope
    from core.errors import BorderwatchError
    from patrols.evidence import verification as evidence

    with session_scope() as session:
        # One snapshot for the whole walk: events appended meanwhile are checked next time.
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        total = evidence.count_items(session=session, item_id=item)
        with progress_bar() as progress:
            task = progress.add_task("verifying chains of custody", total=total)
            try:
                result = evidence.verify(
                    session=session, item_id=item, progress=lambda n: progress.update(task, completed=n)
                )
            except BorderwatchError as exc:
                fail(exc.message)
            progress.update(task, completed=result.items, total=max(total, result.items))
    for item_id, problems in result.broken.items():
        for problem in problems:
            console.print(f"[bold red]item {item_id}[/]: {problem.kind} at event {problem.seq}: {problem.message}")
    if not result.ok:
        first = next(iter(result.broken.items()))
        console.print(
            f"[bold red]chain of custody broken[/] for {len(result.broken)} of {result.items} item(s); "
            f"first: item {first[0]} at event {first[1][0].seq}"
        )
        raise typer.Exit(1)
    console.print(f"[green]chains of custody intact[/]: {result.items} item(s), {result.events} event(s)")
