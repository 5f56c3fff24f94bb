"""``raypipe watch``: follow a stream of a running app."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer

from raypipe.cli._app import (
    AppOpt,
    _fail,
    _join,
    _spec,
    command,
)


@command()
def watch(
    stream: Annotated[str, typer.Argument(help="The stream, e.g. workflows.")],
    group: Annotated[str, typer.Argument(help="The group, e.g. active-workflows.")],
    item_id: Annotated[str | None, typer.Argument(help="Only this item.")] = None,
    app_dir: AppOpt = Path("."),
    done: Annotated[str, typer.Option(help="Field counting progress.")] = "completedSteps",
    total: Annotated[str, typer.Option(help="Field holding the total.")] = "totalSteps",
    until_complete: Annotated[
        bool, typer.Option("--until-complete", help=(
            "Exit once every item that moved while watching is complete (with ITEM_ID: "
            "once it is)."))
    ] = False,
) -> None:
    """Follow a stream live: one progress bar per item, filling as its steps complete."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    spec = _spec(app_dir)
    _join(spec)
    from raypipe.runtime.subscribe import subscribe

    async def follow() -> None:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn()) as progress:
            bars: dict[str, Any] = {}
            full: dict[str, bool] = {}
            #: Items changed since the sync: an item a run finished earlier is not this one.
            moved: set[str] = set()

            def show(item: dict[str, Any]) -> None:
                key = str(item.get("id"))
                n, of = item.get(done), item.get(total)
                if not isinstance(n, (int, float)) or not isinstance(of, (int, float)):
                    return
                if key not in bars:
                    bars[key] = progress.add_task(key[:36], total=of)
                progress.update(bars[key], completed=n, total=of)
                full[key] = n >= of

            async for message in subscribe(stream, group, item_id, app=spec):
                event = message["event"]
                if event["type"] == "sync":
                    data = event["data"]
                    for item in data if isinstance(data, list) else [data] if data else []:
                        show(item)
                elif event["type"] in ("create", "update"):
                    show(event["data"])
                    moved.add(str(event["data"].get("id")))
                elif event["type"] == "delete" and str(message.get("id")) in bars:
                    progress.remove_task(bars.pop(str(message.get("id"))))
                    full.pop(str(message.get("id")), None)
                elif event["type"] == "error":
                    _fail(event["data"]["message"])
                if until_complete and _complete(item_id, moved, full):
                    return

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(follow())


def _complete(item_id: str | None, moved: set[str], full: dict[str, bool]) -> bool:
    """``watch --until-complete``: the one item asked for is full, or every item that moved
    while watching is (and one did)."""
    if item_id is not None:
        return full.get(item_id, False)
    watched = moved & full.keys()
    return bool(watched) and all(full[k] for k in watched)
