"""``raypipe state``: read and write a running app's state."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from raypipe.cli._app import (
    AppOpt,
    _fail,
    _json_arg,
    _print,
    _state_call,
    command,
    state_app,
)


@command(state_app, "get")
def state_get(group: str, key: str, app_dir: AppOpt = Path(".")) -> None:
    """Print one item (exit 1 if it does not exist)."""
    value = _state_call(app_dir, "get", group, key)
    if value is None:
        _fail(f"no item {key!r} in group {group!r}")
    _print(value)


@command(state_app, "list")
def state_list(
    group: Annotated[str | None, typer.Argument(help="A group; without it, the groups.")] = None,
    app_dir: AppOpt = Path("."),
) -> None:
    """List a group's items as {id, data}, or every group's name."""
    _print(_state_call(app_dir, "list", group) if group else _state_call(app_dir, "list_groups"))


@command(state_app, "set")
def state_set(group: str, key: str, value: str, app_dir: AppOpt = Path(".")) -> None:
    """Store VALUE (JSON) as an item; state triggers fire as for any write."""
    _old, new = _state_call(app_dir, "set", group, key, _json_arg(value, "VALUE"))
    _print(new)


@command(state_app, "delete")
def state_delete(group: str, key: str, app_dir: AppOpt = Path(".")) -> None:
    """Delete an item; prints what it held (exit 1 if it does not exist)."""
    old = _state_call(app_dir, "delete", group, key)
    if old is None:
        _fail(f"no item {key!r} in group {group!r}")
    _print(old)
