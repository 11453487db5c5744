"""The ``borderwatch`` command: the entry point on top of every package, one module per command group.

Nothing imports this package; it may import every other one.
"""

from __future__ import annotations

import typer

from cli import accounts, audit, demo, evidence, gateways, runtime, schema, services

app = typer.Typer(help="Borderwatch: border surveillance and patrol coordination.", no_args_is_help=True)
app.add_typer(services.app, name="services")
app.add_typer(gateways.app, name="gateway")
# The plural reads naturally too: `borderwatch gateways revoke gw-1`.
app.add_typer(gateways.app, name="gateways", hidden=True)
app.add_typer(audit.app, name="audit")
app.add_typer(evidence.app, name="evidence")
for commands in (schema, accounts, demo, runtime):
    app.add_typer(commands.app)
