"""What travels between steps: a message on a topic, and the identifiers that follow it."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Message", "new_id"]


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Message:
    topic: str
    #: Plain JSON: model instances are dumped before a message leaves its process.
    data: Any
    trace_id: str
    group_id: str | None = None
    #: The step that enqueued it, if a step did.
    source: str | None = None
    #: The delivery that enqueued it (whose effect it is), if one did.
    parent: str | None = None
    id: str = field(default_factory=new_id)
    enqueued_at: float = field(default_factory=time.time)
