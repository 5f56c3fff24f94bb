"""``raypipe enqueue``: a message to a running app, checked as a step's enqueue is."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from raypipe.cli._app import (
    AppOpt,
    _fail,
    _join,
    _json_arg,
    _load,
    _spec,
    command,
)
from raypipe.errors import RaypipeError


@command()
def enqueue(
    topic: Annotated[str, typer.Argument(help="The topic.")],
    data: Annotated[str, typer.Argument(help="The message, as JSON.")] = "{}",
    app_dir: AppOpt = Path("."),
    group_id: Annotated[str | None, typer.Option(help="FIFO message group.")] = None,
) -> None:
    """Send a message to every step subscribed to TOPIC (exit 1 if no step is)."""
    spec = _spec(app_dir)
    loaded = _load(spec)
    payload = _json_arg(data, "DATA")
    if not loaded.subscribers(topic):
        known = sorted({t for s in loaded.steps.values() for t in s.subscribes})
        _fail(f"no step subscribes to {topic!r}; the app's topics: "
              f"{', '.join(known) or '(none)'}")
    _join(spec)
    from raypipe.enqueue import publish
    from raypipe.messages import new_id
    from raypipe.runtime.bridge import runtime_for

    trace_id = new_id()
    try:
        message_id = asyncio.run(publish(loaded, runtime_for(spec), topic, payload,
                                         trace_id=trace_id, group_id=group_id))
    except RaypipeError as exc:
        _fail(str(exc))
    subscribers = [s.name for s in loaded.subscribers(topic)]
    typer.echo(json.dumps({"messageId": message_id, "traceId": trace_id,
                           "deliveredTo": subscribers}))
