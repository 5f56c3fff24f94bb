"""Counts greetings as they are enqueued: a one-argument queue handler."""

from typing import Any

from motia import queue, stateManager

config = {
    "name": "CountGreetings",
    "triggers": [queue("greeted", config={"maxRetries": 2})],
    "enqueues": [],
    "flows": ["greetings"],
}


def handler(input: Any) -> None:
    stateManager.update("counts", "greeted", [{"type": "increment", "path": "n", "by": 1}])
    stateManager.set("last-greeted", "name", {"name": input["name"]})
