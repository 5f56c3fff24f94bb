"""The ``raypipe`` command, one module per command group. Ray is imported inside the commands
that need it, so ``--help``, ``flows`` and load checks stay fast."""

from raypipe.cli import create, deployments, dev, dlq, enqueue, flows, state, watch  # noqa: F401
from raypipe.cli._app import COMMAND_ORDER, app, main
from raypipe.cli.watch import _complete

__all__ = ["_complete", "app", "main"]

app.registered_commands.sort(
    key=lambda c: COMMAND_ORDER.index(c.name or getattr(c.callback, "__name__", "")))
