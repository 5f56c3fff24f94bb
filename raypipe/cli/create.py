"""``raypipe create``: scaffold an app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from raypipe.cli._app import (
    _fail,
    command,
)

_SCAFFOLD = {
    "pyproject.toml": """[project]
name = "{name}"
version = "0.1.0"
dependencies = ["raypipe"]

[tool.raypipe]
name = "{name}"
port = 3111
""",
    "steps/hello_api_step.py": """from pydantic import BaseModel

from raypipe import ApiRequest, FlowContext, StepConfig, http


class Hello(BaseModel):
    name: str = "world"


config = StepConfig(
    name="hello-api",
    description="Greets, and hands the greeting to a queue step",
    triggers=[http("POST", "/hello", body_schema=Hello)],
    enqueues=["hello.said"],
    flows=["hello"],
)


async def handler(request: ApiRequest, ctx: FlowContext) -> dict:
    await ctx.enqueue("hello.said", {"name": request.body.name})
    return {"status": 200, "body": {"message": f"hello, {request.body.name}"}}
""",
    "steps/count_hellos_step.py": """from raypipe import FlowContext, StepConfig, queue

config = StepConfig(
    name="count-hellos",
    description="Counts greetings per name",
    triggers=[queue("hello.said")],
    flows=["hello"],
)


async def handler(message: dict, ctx: FlowContext) -> None:
    await ctx.state.update("hellos", message["name"], [{"type": "increment", "path": "n"}])
    ctx.logger.info("counted a hello", name=message["name"])
""",
}


@command()
def create(
    name: Annotated[str, typer.Argument(help="The new app's directory (and name).")],
) -> None:
    """Scaffold an app: an http step that enqueues, and a queue step that updates state."""
    root = Path(name)
    if root.exists() and any(root.iterdir()):
        _fail(f"{root} exists and is not empty", 2)
    for rel, text in _SCAFFOLD.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{name}", root.name))
    typer.echo(f"created {root}/ — run it with: raypipe dev {root}")
