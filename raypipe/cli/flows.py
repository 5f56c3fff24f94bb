"""``raypipe flows``: the app's flow graph as text, Mermaid or JSON (no cluster needed)."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from raypipe.cli._app import (
    AppArg,
    _fail,
    _load,
    _skipped,
    _spec,
    command,
)


class GraphFormat(str, Enum):
    TEXT = "text"
    MERMAID = "mermaid"
    JSON = "json"


@command()
def flows(
    app_dir: AppArg = Path("."),
    format: Annotated[GraphFormat, typer.Option("--format", "-f", help="How to draw it.")
                      ] = GraphFormat.TEXT,
    flow: Annotated[str | None, typer.Option(help="Only this flow.")] = None,
) -> None:
    """Show the app's steps, topics and edges."""
    from raypipe import flows as fl

    renderers: dict[GraphFormat, Callable[[fl.FlowGraph], str]] = {
        GraphFormat.TEXT: fl.to_text,
        GraphFormat.MERMAID: fl.to_mermaid,
        GraphFormat.JSON: lambda g: json.dumps(fl.to_json(g), indent=2),
    }
    loaded = _load(_spec(app_dir))
    try:
        graph = fl.build_graph(loaded, flow)
    except ValueError as exc:
        _fail(str(exc), 2)
    typer.echo(renderers[format](graph))
    if loaded.skipped:  # on stderr: the diagram on stdout stays machine-readable
        typer.secho(_skipped(loaded), fg=typer.colors.YELLOW, err=True)
