"""What the ``raypipe`` commands share: the Typer apps, the argument types, and the helpers
that find, load and join an app, failing in one line."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.models import CommandFunctionType

from raypipe.cli._help import PlainHelpCommand, PlainHelpGroup
from raypipe.errors import AppLoadError, ConfigError, RaypipeError

app = typer.Typer(help="Motia-style workflows on Ray.", no_args_is_help=True,
                  pretty_exceptions_enable=False, cls=PlainHelpGroup)
state_app = typer.Typer(help="Read and write the app's state.", no_args_is_help=True,
                        cls=PlainHelpGroup)
app.add_typer(state_app, name="state")
dlq_app = typer.Typer(help="Inspect and replay dead letters.", no_args_is_help=True,
                      cls=PlainHelpGroup)
app.add_typer(dlq_app, name="dlq")

#: ``raypipe --help`` lists the commands in this order (a command's module registers it).
COMMAND_ORDER = ("dev", "start", "status", "stop", "enqueue", "watch", "flows", "create")


def command(typer_app: typer.Typer = app, name: str | None = None
            ) -> Callable[[CommandFunctionType], CommandFunctionType]:
    """``@command()``: a command of ``typer_app`` whose help reads plainly
    (:mod:`raypipe.cli._help`)."""
    return typer_app.command(name, cls=PlainHelpCommand)

AppArg = Annotated[Path, typer.Argument(help="The app directory.")]
AppOpt = Annotated[Path, typer.Option("--app", "-a", help="The app directory.")]
PortOpt = Annotated[int | None, typer.Option(help="HTTP port (default 3111).")]
HostOpt = Annotated[str | None, typer.Option(help="HTTP host (default 127.0.0.1).")]
StateOpt = Annotated[str | None, typer.Option(
    help="State backend: memory, a redis:// URL, or redis+cluster:// and a Redis Cluster node.")]


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _json_arg(text: str, what: str) -> Any:
    """A JSON argument as raypipe stores it (no NaN, nested at most as deep as a body)."""
    from raypipe.errors import NotJSONError
    from raypipe.jsonvalues import plain_json

    try:
        return plain_json(json.loads(text), what)
    except (ValueError, NotJSONError) as exc:  # JSONLimitError is a ValueError
        _fail(f"{what} is not valid JSON: {exc}", 2)


def _spec(app_dir: Path, **overrides: Any) -> Any:
    from raypipe.runtime.spec import AppSpec

    if not app_dir.is_dir():
        _fail(f"{app_dir} is not a directory", 2)
    try:
        return AppSpec.from_dir(app_dir, **overrides)
    except ConfigError as exc:
        _fail(str(exc), 2)


def _load(spec: Any) -> Any:
    from raypipe.loader import load_app

    try:
        return load_app(spec.root, spec.settings)
    except AppLoadError as exc:
        _fail(str(exc))


def _join(spec: Any) -> None:
    """Connect to the running cluster that serves ``spec``'s app."""
    from raypipe.runtime.deploy import connect

    try:
        connect(namespace=spec.namespace, app=spec.settings.name, app_root=spec.root)
    except RaypipeError as exc:
        _fail(str(exc))
    except (ConnectionError, RuntimeError) as exc:
        _fail(f"no Ray cluster to join ({exc}); start the app with `raypipe dev` first, or set "
              "RAY_ADDRESS")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _runtime_call(app_dir: Path, part: str, method: str, *args: Any) -> Any:
    """Call ``runtime.<part>.<method>(*args)`` on the running app."""
    spec = _spec(app_dir)
    _join(spec)
    from raypipe.runtime.bridge import runtime_for

    try:
        return asyncio.run(getattr(getattr(runtime_for(spec), part), method)(*args))
    except RaypipeError as exc:
        _fail(str(exc))


def _state_call(app_dir: Path, method: str, *args: Any) -> Any:
    from raypipe.messages import new_id
    from raypipe.runtime_protocols import Origin

    if method in ("set", "delete", "clear", "update"):
        args = (*args, Origin(new_id(), "cli"))
    return _runtime_call(app_dir, "state", method, *args)


def _print(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def _skipped(loaded: Any) -> str:
    files = loaded.skipped
    return (f"{len(files)} step file(s) in another language, not run (raypipe runs Python "
            f"steps): {', '.join(files)}")


def main() -> None:
    try:
        app(prog_name="raypipe")
    except RaypipeError as exc:  # pragma: no cover - commands report their own
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        sys.exit(1)
