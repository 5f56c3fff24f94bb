"""What starts a step: http, queue, cron, state and stream triggers, and their constructors."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union

__all__ = [
    "Condition",
    "CronTrigger",
    "HttpTrigger",
    "QueueConfig",
    "QueueTrigger",
    "StateTrigger",
    "StreamTrigger",
    "Trigger",
    "check_condition",
    "cron",
    "http",
    "queue",
    "state",
    "stream",
    "wants_ctx",
]

#: ``condition(input)`` or ``condition(input, ctx)``, sync or async; gates the handler.
Condition = Callable[..., "bool | Awaitable[bool]"]

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_COLON_PARAM = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")


def normalize_path(path: str) -> str:
    """Motia's ``/users/:userId`` and FastAPI's ``/users/{userId}`` mean the same route."""
    return _COLON_PARAM.sub(r"{\1}", path)


@dataclass(frozen=True)
class QueueConfig:
    """Delivery settings of one queue subscription (Motia's ``infrastructure.queue``)."""

    type: Literal["standard", "fifo"] = "standard"
    max_retries: int = 3
    backoff: Literal["exponential", "fixed"] = "exponential"
    backoff_delay_ms: int = 1000
    #: The longest wait between two attempts, however many failed (exponential backoff
    #: doubles up to it).
    max_backoff_ms: int = 60_000
    delay_seconds: float = 0.0
    #: Seconds a handler may run before the attempt counts as failed.
    visibility_timeout: float | None = None
    #: Deliveries of this step in flight at once; ``None`` means no limit.
    concurrency: int | None = None


@dataclass(frozen=True)
class HttpTrigger:
    method: str
    path: str
    #: A pydantic type or a JSON-schema dict.
    body_schema: Any = None
    #: One schema for every status, or ``{status: schema}``.
    response_schema: Any = None
    query_params: Sequence[Any] = ()
    middleware: Sequence[Callable[..., Any]] = ()
    condition: Condition | None = None
    type: Literal["http"] = field(default="http", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", str(self.method).upper())
        object.__setattr__(self, "path", normalize_path(str(self.path)))


@dataclass(frozen=True)
class QueueTrigger:
    topic: str
    input: Any = None
    config: QueueConfig = field(default_factory=QueueConfig)
    condition: Condition | None = None
    type: Literal["queue"] = field(default="queue", init=False)


@dataclass(frozen=True)
class CronTrigger:
    expression: str
    condition: Condition | None = None
    type: Literal["cron"] = field(default="cron", init=False)


@dataclass(frozen=True)
class StateTrigger:
    condition: Condition | None = None
    group_id: str | None = None
    type: Literal["state"] = field(default="state", init=False)


@dataclass(frozen=True)
class StreamTrigger:
    stream_name: str
    group_id: str | None = None
    item_id: str | None = None
    condition: Condition | None = None
    type: Literal["stream"] = field(default="stream", init=False)


Trigger = Union[HttpTrigger, QueueTrigger, CronTrigger, StateTrigger, StreamTrigger]  # noqa: UP007 - a runtime alias on 3.10


def http(
    method: str,
    path: str,
    body_schema: Any = None,
    response_schema: Any = None,
    query_params: Sequence[Any] | None = None,
    middleware: Sequence[Callable[..., Any]] | None = None,
    condition: Condition | None = None,
) -> HttpTrigger:
    """An HTTP route; ``path`` takes ``{param}`` or ``:param``."""
    return HttpTrigger(
        method, path, body_schema, response_schema, tuple(query_params or ()),
        tuple(middleware or ()), condition,
    )


def queue(
    topic: str,
    input: Any = None,
    config: QueueConfig | None = None,
    condition: Condition | None = None,
) -> QueueTrigger:
    """A subscription to ``topic``; every subscriber gets its own copy of each message."""
    return QueueTrigger(topic, input, config or QueueConfig(), condition)


def cron(expression: str, condition: Condition | None = None) -> CronTrigger:
    """A schedule: 5 cron fields, or 6 with seconds first."""
    return CronTrigger(expression, condition)


def state(condition: Condition | None = None, group_id: str | None = None) -> StateTrigger:
    """Fires after each committed state change (in ``group_id`` if given) passing ``condition``."""
    return StateTrigger(condition, group_id)


def stream(
    stream_name: str,
    group_id: str | None = None,
    item_id: str | None = None,
    condition: Condition | None = None,
) -> StreamTrigger:
    """Fires on a change of an item of ``stream_name``."""
    return StreamTrigger(stream_name, group_id, item_id, condition)


@functools.lru_cache(maxsize=4096)
def wants_ctx(fn: Callable[..., Any]) -> bool:
    """Whether a condition takes ``(input, ctx)``; asked on every evaluation, so cached."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2


async def check_condition(condition: Condition | None, value: Any, ctx: Any) -> bool:
    """Evaluate a trigger condition, passing ``ctx`` only to conditions that take it."""
    if condition is None:
        return True
    result = condition(value, ctx) if wants_ctx(condition) else condition(value)
    if inspect.isawaitable(result):
        result = await result
    return bool(result)
