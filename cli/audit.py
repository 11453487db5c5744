"""`borderwatch audit`: the tamper-evident audit trail."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import console, fail, progress_bar
from core.settings import get_settings

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
    checkpoints: Annotated[
        Optional[Path],
        typer.Option(
            dir_okay=False,
            help="Signed checkpoints exported earlier (audit export-checkpoints) and kept outside the database: "
            "also catches a chain rewritten and recomputed by whoever can write the table.",
        ),
    ] = None,
    public_key: Annotated[
        Optional[Path],
        typer.Option(dir_okay=False, help="Public key the checkpoints are signed with (default: BW_AUDIT_KEY_FILE's)."),
    ] = None,
) -> None:
    """Check the whole hash chain; say where it breaks (altered, removed, reordered entries), exit 1 if it does."""
    from audit import checkpoints as signed
    from audit import service as audit
    from core.db import session_scope
    from core.errors import BorderwatchError

    try:
        pinned = audit.parse_anchor(anchor) if anchor else None
        exported = signed.read_export(checkpoints) if checkpoints else None
        trusted = [_trusted_key(public_key)] if checkpoints else []
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
        findings = signed.check(session=session, checkpoints=exported, trusted=trusted) if exported else []
    for problem in result.problems:
        console.print(f"[bold red]{problem.kind}[/] at {problem.seq}: {problem.message}")
    if result.more_problems:
        console.print(f"[red]... and {result.more_problems} more")
    for finding in findings:
        console.print(f"[bold red]{finding.kind}[/] at {finding.seq}: {finding.message}")
    if findings:
        console.print(
            f"[bold red]audit chain does not match its signed checkpoints[/]: {len(findings)} of "
            f"{len(exported)} checkpoint(s) disagree; first at entry {findings[0].seq}"
        )
        raise typer.Exit(1)
    if not result.ok:
        console.print(
            f"[bold red]audit chain broken[/]: {len(result.problems) + result.more_problems} problem(s) "
            f"in {result.checked} entries; first at entry {result.problems[0].seq}"
        )
        raise typer.Exit(1)
    console.print(f"[green]audit chain intact[/]: {result.checked} entries")
    if exported is not None:
        console.print(f"[green]matches its {len(exported)} signed checkpoint(s)[/]")
    if result.head_seq:
        # The head, to keep elsewhere and pass back as --anchor next time.
        print(f"{result.head_seq}:{result.head_hash}")


# -- signed checkpoints ----------------------------------------------------------------------
def _key_file(key_file: Path | None) -> Path:
    return key_file or Path(get_settings().audit_key_file)


def _trusted_key(public_key: Path | None):
    from audit import checkpoints as signed

    path = public_key or _key_file(None)
    if public_key is None and not path.exists() and signed.public_path(path).exists():
        path = signed.public_path(path)
    return signed.load_public_key(path)


KeyFileOption = Annotated[
    Optional[Path], typer.Option(dir_okay=False, help="The private key file (default: BW_AUDIT_KEY_FILE).")
]


@app.command("keygen")
def audit_keygen(
    key_file: KeyFileOption = None,
    force: Annotated[
        bool, typer.Option(help="Replace an existing key (checkpoints signed so far need its .pub).")
    ] = False,
) -> None:
    """Make the Ed25519 key that signs checkpoints: private key mode 0600, public key beside it (.pub)."""
    from audit import checkpoints as signed
    from core.errors import BorderwatchError

    path = _key_file(key_file)
    try:
        kid = signed.generate_key(path, force=force)
    except BorderwatchError as exc:
        fail(exc.message)
    console.print(f"[green]signing key {kid}[/] written to {path} (public key: {signed.public_path(path)})")
    print(kid)


@app.command("checkpoint")
def audit_checkpoint(
    key_file: KeyFileOption = None,
    every: Annotated[
        Optional[float],
        typer.Option(
            help="Keep signing the head every this many seconds until stopped (no value: once). "
            "0 takes BW_AUDIT_CHECKPOINT_INTERVAL_S.",
            min=0,
        ),
    ] = None,
) -> None:
    """Sign the head of the audit chain (sequence number, hash, time, node, key id) and store the checkpoint."""
    from audit import checkpoints as signed
    from core.db import session_scope
    from core.errors import BorderwatchError

    settings = get_settings()
    node = settings.audit_node or socket.gethostname()
    try:
        key = signed.load_private_key(_key_file(key_file))
    except BorderwatchError as exc:
        fail(exc.message)
    interval = (every or settings.audit_checkpoint_interval_s) if every is not None else None
    last_seq = None
    while True:
        try:
            with session_scope() as session:
                checkpoint = signed.write_checkpoint(session=session, key=key, node=node)
        except signed.ChainEmpty as exc:
            if interval is None:
                fail(exc.message)
            console.print(f"[yellow]{exc.message}")
        else:
            if checkpoint.seq != last_seq or interval is None:
                console.print(
                    f"[green]checkpoint[/] at entry {checkpoint.seq} ({checkpoint.hash[:12]}…) "
                    f"signed by {node}, key {checkpoint.key_id}"
                )
            last_seq = checkpoint.seq
        if interval is None:
            return
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            return


@app.command("export-checkpoints")
def audit_export_checkpoints(
    file: Annotated[
        Path, typer.Argument(dir_okay=False, help="Where to write them (JSON lines); - for standard output.")
    ],
    since: Annotated[int, typer.Option(help="Only checkpoints of entries after this sequence number.", min=0)] = 0,
    public_key: Annotated[
        Optional[Path],
        typer.Option(dir_okay=False, help="Public key written with them (default: BW_AUDIT_KEY_FILE's)."),
    ] = None,
) -> None:
    """Write the stored checkpoints, with their signatures and public key, for partners or offline media."""
    from audit import checkpoints as signed
    from core.db import session_scope
    from core.errors import BorderwatchError

    try:
        key = _trusted_key(public_key)
    except BorderwatchError as exc:
        fail(exc.message)
    with session_scope() as session:
        found = signed.stored(session=session, since_seq=since)
    bad = [c.seq for c in found if not signed.signature_valid(c, key)]
    if bad:
        fail(f"stored checkpoints at {', '.join(map(str, bad[:10]))} do not verify under this key: not exported")
    text = "".join(line + "\n" for line in signed.export_lines(found, key))
    if str(file) == "-":
        print(text, end="")
    else:
        file.write_text(text, encoding="utf-8")
    console.print(f"[green]{len(found)} checkpoint(s) exported[/]" + ("" if str(file) == "-" else f" to {file}"))
