"""``raypipe dlq``: inspect and replay a running app's dead letters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from raypipe.cli._app import (
    AppOpt,
    _fail,
    _print,
    _runtime_call,
    command,
    dlq_app,
)


@command(dlq_app, "list")
def dlq_list(app_dir: AppOpt = Path(".")) -> None:
    """One line per dead letter: id, step, topic, attempts, last error."""
    entries = _runtime_call(app_dir, "dead_letters", "list")
    if not entries:
        typer.echo("no dead letters")
    for e in entries:
        typer.echo(f"{e['id']}  {e['step']}  {e['topic'] or e['kind']}  "
                   f"attempts={len(e['errors'])}  {e['errors'][-1]['error']}")


@command(dlq_app, "show")
def dlq_show(entry_id: str, app_dir: AppOpt = Path(".")) -> None:
    """A dead letter in full: message, trace id, every attempt's error and traceback."""
    entry = _runtime_call(app_dir, "dead_letters", "get", entry_id)
    if entry is None:
        _fail(f"no dead letter {entry_id!r}")
    _print(entry)


@command(dlq_app, "replay")
def dlq_replay(
    entry_id: Annotated[str | None, typer.Argument(help="The dead letter to replay.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
    app_dir: AppOpt = Path("."),
) -> None:
    """Run a dead letter (or all) again: the same delivery, with a fresh set of attempts;
    what its failed attempts applied is not applied twice."""
    if (entry_id is None) == (not all_):
        _fail("give one dead letter ID or --all", 2)
    replayed = _runtime_call(app_dir, "dead_letters", "replay", None if all_ else [entry_id])
    if entry_id is not None and not replayed:
        _fail(f"no dead letter {entry_id!r}")
    typer.echo(json.dumps({"replayed": replayed}))
