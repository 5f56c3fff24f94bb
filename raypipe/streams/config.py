from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StreamConfig:
    """A stream declaration: ``config = StreamConfig(name="workflows", schema=WorkflowItem)``."""

    name: str
    #: A pydantic type or JSON-schema dict describing an item (its ``id`` is added by raypipe).
    schema: Any = None
    description: str = ""
