"""Motia 1.x's module-level helpers and step builders, on raypipe's context.

``enqueue``, ``logger``, ``stateManager`` and ``Stream`` reach the running handler's context
(:data:`raypipe.calls.current`), so they work in both of the SDK's styles: awaited in an
``async def`` handler (its releases before March 2026) and called plainly from a ``def``
handler (its later releases).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from raypipe import trigger_kind
from raypipe.calls import current
from raypipe.context import FlowContext
from raypipe.errors import RuntimeNotRunningError, UsageError
from raypipe.handlers import invoke
from raypipe.schemas import Schema
from raypipe.steps import StepConfig as _StepConfig
from raypipe.streams.config import StreamConfig as _StreamConfig

__all__ = [
    "Enqueue", "MultiTriggerStepBuilder", "QueryParam", "StateManager", "StepBuilder",
    "StepConfig", "StepDefinition", "StreamAuthInput", "StreamAuthResult", "StreamConfig",
    "StreamSubscription", "TriggerInfo", "enqueue", "generate_step_id", "logger",
    "multi_trigger_step", "schema_to_json_schema", "stateManager", "step",
]

#: Motia's namespace for step ids (uuid5 of the step file's path), so ids match Motia's.
_STEP_NAMESPACE = uuid.UUID("7f1c3ff2-9b00-4d0a-bdd7-efb8bca49d4f")

_log = logging.getLogger("raypipe.motia")


def _ctx(what: str) -> FlowContext:
    ctx = current.get()
    if ctx is None:
        raise RuntimeNotRunningError(
            f"motia.{what} was called outside a handler: it acts for the running handler")
    return ctx  # type: ignore[no-any-return]


def enqueue(event: Mapping[str, Any]) -> Any:
    """``enqueue({"topic": ..., "data": ..., "messageGroupId"?: ...})`` from the running step."""
    return _ctx("enqueue").emit(event)


class _Logger:
    """``logger.info("message", {"field": value})``: the running step's logger (tagged with its
    step and trace, shown in the workbench); Python logging outside a handler."""

    def _emit(self, level: str, message: str, args: tuple[Any, ...], fields: Any) -> None:
        ctx = current.get()
        if ctx is not None:
            getattr(ctx.logger, level)(message, *args, **fields)
        else:
            _log.log(logging.getLevelName("WARNING" if level == "warn" else level.upper()),
                     "%s %s", message, [*args, fields] if fields else list(args))

    def debug(self, message: str, *args: Any, **fields: Any) -> None:
        self._emit("debug", message, args, fields)

    def info(self, message: str, *args: Any, **fields: Any) -> None:
        self._emit("info", message, args, fields)

    def warn(self, message: str, *args: Any, **fields: Any) -> None:
        self._emit("warn", message, args, fields)

    warning = warn

    def error(self, message: str, *args: Any, **fields: Any) -> None:
        self._emit("error", message, args, fields)


logger = _Logger()


class StateManager:
    """``stateManager``: the running step's ``ctx.state`` with Motia 1.x's results (``set``
    and ``update`` return the change, read as ``{"new_value", "old_value"}``; ``list`` the
    values)."""

    def get(self, scope: str, key: str) -> Any:
        return _ctx("stateManager.get").state.get(scope, key)

    def set(self, scope: str, key: str, value: Any) -> Any:
        return _ctx("stateManager.set").state.set(scope, key, value)

    def update(self, scope: str, key: str, ops: Sequence[Mapping[str, Any]]) -> Any:
        return _ctx("stateManager.update").state.update(scope, key, ops)

    def delete(self, scope: str, key: str) -> Any:
        return _ctx("stateManager.delete").state.delete(scope, key)

    def list(self, scope: str) -> Any:
        return _ctx("stateManager.list").state.list(scope)

    def list_groups(self) -> Any:
        return _ctx("stateManager.list_groups").state.list_groups()

    def clear(self, scope: str) -> Any:
        return _ctx("stateManager.clear").state.clear(scope)


stateManager = StateManager()


@dataclass(frozen=True)
class StepConfig(_StepConfig):
    """Motia 1.x's ``StepConfig(name=..., triggers=[...], enqueues=[...])``."""

    #: Files Motia bundled with the step; raypipe runs the app directory as it is.
    include_files: Sequence[str] | None = None


@dataclass(frozen=True)
class Enqueue(Mapping[str, Any]):
    """An ``enqueues`` entry with a label: ``Enqueue(topic="x", label="...")``."""

    topic: str
    label: str | None = None
    conditional: bool = False

    def __getitem__(self, key: str) -> Any:
        if key not in ("topic", "label", "conditional"):
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Any:
        return iter(("topic", "label", "conditional"))

    def __len__(self) -> int:
        return 3


@dataclass(frozen=True)
class QueryParam:
    name: str
    description: str = ""


@dataclass(frozen=True)
class TriggerInfo:
    """What ``ctx.trigger`` tells of the trigger that fired."""

    type: str
    index: int | None = None
    path: str | None = None
    method: str | None = None
    topic: str | None = None
    expression: str | None = None


def StreamConfig(
    name: str, description: str | None = None, schema: Any = None,
    base_config: Any = None, on_join: Any = None, on_leave: Any = None,
    can_access: Any = None,
) -> _StreamConfig:
    """Motia 1.x's stream declaration. ``base_config`` (iii's storage options) has no
    meaning here; ``on_join``/``on_leave`` hooks are not run (see the migration guide)."""
    if on_join is not None or on_leave is not None:
        _log.warning("stream %r: on_join/on_leave hooks are not supported and will not run",
                     name)
    return _StreamConfig(name=name, schema=schema, description=description or "",
                         can_access=can_access)


@dataclass(frozen=True)
class StreamSubscription:
    group_id: str
    id: str | None = None


@dataclass(frozen=True)
class StreamAuthInput:
    headers: dict[str, str]
    path: str
    query_params: dict[str, list[str]]
    addr: str


@dataclass(frozen=True)
class StreamAuthResult:
    authorized: bool
    context: Any = None


@dataclass
class StepDefinition:
    """``step(config, handler)``: what a step file may export instead of ``config`` and
    ``handler``."""

    config: Any
    handler: Callable[..., Any]


@dataclass
class StepBuilder:
    config: Any

    def handle(self, handler: Callable[..., Any]) -> StepDefinition:
        return StepDefinition(self.config, handler)


def step(config: Any, handler: Callable[..., Any] | None = None) -> StepDefinition | StepBuilder:
    """``step(config, handler)`` or ``step(config).handle(handler)``."""
    return StepDefinition(config, handler) if handler is not None else StepBuilder(config)


@dataclass
class MultiTriggerStepBuilder:
    """``multi_trigger_step(config).on_queue(f).on_http(g).handlers()``, or
    ``.handlers({"queue": f, "http": g})``: one handler per trigger type, each called with
    ``(input, ctx)`` (cron's with ``ctx``)."""

    config: Any
    _handlers: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def on_queue(self, handler: Callable[..., Any]) -> MultiTriggerStepBuilder:
        self._handlers["queue"] = handler
        return self

    def on_http(self, handler: Callable[..., Any]) -> MultiTriggerStepBuilder:
        self._handlers["http"] = handler
        return self

    def on_cron(self, handler: Callable[..., Any]) -> MultiTriggerStepBuilder:
        self._handlers["cron"] = handler
        return self

    def on_state(self, handler: Callable[..., Any]) -> MultiTriggerStepBuilder:
        self._handlers["state"] = handler
        return self

    def on_stream(self, handler: Callable[..., Any]) -> MultiTriggerStepBuilder:
        self._handlers["stream"] = handler
        return self

    def handlers(self, handlers: Mapping[str, Callable[..., Any]] | None = None
                 ) -> StepDefinition:
        by_type = {**self._handlers, **(handlers or {})}

        async def handler(input: Any, ctx: FlowContext) -> Any:
            kind = getattr(ctx.trigger, "type", None)
            fn = by_type.get(kind or "")
            if fn is None:
                raise UsageError(f"no handler for a {kind} trigger; this step has "
                                   f"{sorted(by_type)}")
            takes_input = trigger_kind.get(kind).has_input if kind else True
            return await invoke(fn, (input, ctx) if takes_input else (ctx,))

        return StepDefinition(self.config, handler)


def multi_trigger_step(config: Any) -> MultiTriggerStepBuilder:
    return MultiTriggerStepBuilder(config)


def generate_step_id(path: str) -> str:
    """The stable id Motia gives the step file at ``path``."""
    return str(uuid.uuid5(_STEP_NAMESPACE, path))


def schema_to_json_schema(schema: Any) -> dict[str, Any] | None:
    """A pydantic type's or a JSON-schema dict's JSON schema (``None`` if it is neither)."""
    if schema is None:
        return None
    try:
        return Schema(schema).json_schema()
    except Exception:
        return None
