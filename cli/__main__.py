"""``python -m cli``: the ``borderwatch`` command."""

from cli.app import app

app()
