from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

#: ``can_access(subscription, auth)``: ``subscription`` is ``{"streamName", "groupId", "id"}``,
#: ``auth`` what the app's ``authenticate(request)`` returned (``None`` without one).
AccessCheck = Callable[[dict[str, Any], Any], "bool | Awaitable[bool]"]


@dataclass(frozen=True)
class StreamConfig:
    """A stream declaration: ``config = StreamConfig(name="workflows", schema=WorkflowItem)``."""

    name: str
    #: A pydantic type or JSON-schema dict describing an item (its ``id`` is added by raypipe).
    schema: Any = None
    description: str = ""
    can_access: AccessCheck | None = None
