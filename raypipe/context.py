"""``ctx``: what a handler uses to reach state, enqueue messages and log.

The context speaks to a :class:`Runtime` (Ray actors in production, in-process objects in
tests of the model) through two small protocols, so this module never imports Ray.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from raypipe import trigger_kind
from raypipe.calls import Calls, current, scheduled
from raypipe.effects import Effect
from raypipe.errors import EnqueueError, EnqueueValidationError, SchemaValidationError, UsageError
from raypipe.jsonvalues import plain_json
from raypipe.logger import StepLogger
from raypipe.messages import Message, new_id
from raypipe.settings import LogFormat
from raypipe.shared_types import Groups, Items, Ops
from raypipe.state.change import StateChange
from raypipe.state.ids import check_ids
from raypipe.state.ops import validate_ops
from raypipe.streams.api import Streams, StreamStore
from raypipe.streams.relay import Relay
from raypipe.trigger_kind import TriggerKind

if TYPE_CHECKING:
    from raypipe.app import App
    from raypipe.steps import Step
    from raypipe.triggers import Trigger

__all__ = ["Bus", "DeadLetters", "FlowContext", "Origin", "Runtime", "StateAPI", "StateStore",
           "publish"]

log = logging.getLogger("raypipe.steps")

#: Dead-letter ids (``list`` is also a method name in the protocols below).
Ids = list[str]
#: A write's result: ``(old, new)``, or a :class:`StateChange` (possibly fetched lazily).
StateResult = tuple[Any, Any] | StateChange


@dataclass(frozen=True)
class Origin:
    """Who makes a change. The trace id is carried to state triggers; ``effect`` identifies the
    change within its delivery so that a repeat of it (a retry, a recovery, a replay) is
    recognised and not applied twice. Changes from outside a delivery have no ``effect``."""

    trace_id: str
    step: str | None = None
    effect: Effect | None = None


class StateStore(Protocol):
    async def get(self, group: str, key: str) -> Any: ...
    async def set(self, group: str, key: str, value: Any, origin: Origin) -> StateResult: ...
    async def delete(self, group: str, key: str, origin: Origin) -> Any: ...
    async def list(self, group: str) -> Items: ...
    async def list_groups(self) -> Groups: ...
    async def clear(self, group: str, origin: Origin) -> None: ...
    async def update(
        self, group: str, key: str, ops: Ops, origin: Origin
    ) -> StateResult: ...


class Bus(Protocol):
    async def publish(self, messages: Sequence[Message]) -> None: ...


class DeadLetters(Protocol):
    async def list(self) -> Items: ...
    async def get(self, entry_id: str) -> dict[str, Any] | None: ...
    async def replay(self, entry_ids: Sequence[str] | None = None) -> Ids: ...


class TelemetrySink(Protocol):
    """Where log lines and spans go for the workbench; never waited on. A runtime may offer
    one as its ``telemetry`` attribute."""

    def record(self, lines: Sequence[dict[str, Any]], spans: Sequence[dict[str, Any]]) -> None:
        ...


class Runtime(Protocol):
    @property
    def state(self) -> StateStore: ...
    @property
    def bus(self) -> Bus: ...
    @property
    def dead_letters(self) -> DeadLetters: ...
    @property
    def streams(self) -> StreamStore: ...
    def relay(self) -> Relay: ...


class StateAPI:
    """``ctx.state``: groups of items; every write is atomic per item. Every method may be
    awaited, left un-awaited or called from a plain ``def`` handler (:mod:`raypipe.calls`)."""

    def __init__(self, store: StateStore, origin: Callable[[str], Origin], calls: Calls) -> None:
        self._store = store
        self._origin = origin
        self._calls = calls

    @scheduled
    async def get(self, group: str, key: str) -> Any:
        check_ids(group=group, item=key)
        return await self._store.get(group, key)

    @scheduled
    async def set(self, group: str, key: str, value: Any) -> StateChange:
        """Store ``value``; returns the change: ``old, new = ...``, or ``.old_value`` and
        ``.new_value``."""
        check_ids(group=group, item=key)
        value = plain_json(value, f"the state item {group}/{key}")
        return StateChange.of(await self._store.set(group, key, value,
                                                    self._origin(f"set|{group}|{key}")))

    @scheduled
    async def delete(self, group: str, key: str) -> Any:
        """Remove an item; returns what it held (``None`` if nothing)."""
        check_ids(group=group, item=key)
        return await self._store.delete(group, key, self._origin(f"delete|{group}|{key}"))

    @scheduled
    async def list(self, group: str) -> Items:
        """The values stored in ``group``, as Motia returns them."""
        check_ids(group=group)
        return [item["data"] for item in await self._store.list(group)]

    #: Motia 0.x's name for ``list``.
    get_group = list

    @scheduled
    async def items(self, group: str) -> Items:
        """Every item of ``group`` with its key: ``{"id", "data"}``."""
        check_ids(group=group)
        return await self._store.list(group)

    @scheduled
    async def list_groups(self) -> Groups:
        return await self._store.list_groups()

    @scheduled
    async def clear(self, group: str) -> None:
        check_ids(group=group)
        await self._store.clear(group, self._origin(f"clear|{group}"))

    @scheduled
    async def update(
        self, group: str, key: str, ops: Sequence[Mapping[str, Any]]
    ) -> StateChange:
        """Apply ``ops`` atomically (set, merge, increment, decrement, remove, append on dot
        paths); returns the change, as :meth:`set` does."""
        check_ids(group=group, item=key)
        checked = validate_ops(plain_json(list(ops), f"the update of {group}/{key}"))
        # Not the ops' paths: they may hold values (``nodes.<node id>``) that a retry on
        # another node computes differently, and it is still the same write.
        return StateChange.of(await self._store.update(group, key, checked,
                                                       self._origin(f"update|{group}|{key}")))


def build_message(
    app: App, topic: str, data: Any, *, trace_id: str, source: Step | None,
    group_id: str | None = None, message_id: str | None = None, parent: str | None = None,
) -> Message:
    """Check an enqueue the way every caller must: declared topic, subscribers' schemas."""
    if source is not None and topic not in source.config.enqueues:
        problem = (f"step {source.name!r} enqueued {topic!r}, which is not in its enqueues "
                   f"{list(source.config.enqueues)}")
        if not source.lenient:
            raise EnqueueError(problem)
        log.warning("%s; delivered anyway, as Motia does (strict = true makes it an error)",
                    problem)
    payload = plain_json(data, f"the message on {topic!r}")
    for sub in app.subscribers(topic):
        schema = sub.queue_trigger(topic).input
        if schema is not None:
            try:
                schema.validate(payload, what=f"message on {topic!r}")
            except SchemaValidationError as exc:
                raise EnqueueValidationError(topic, sub.name, exc.errors) from None
    return Message(topic=topic, data=payload, trace_id=trace_id, group_id=group_id,
                   source=source.name if source else None, id=message_id or new_id(),
                   parent=parent)


async def publish(
    app: App, runtime: Runtime, topic: str, data: Any, *, trace_id: str,
    source: Step | None = None, group_id: str | None = None, effect: Effect | None = None,
) -> str:
    """Validate and hand one message to the bus; returns its id. A message that is a
    delivery's ``effect`` is named after it, so a repeat of that enqueue is recognised."""
    msg = build_message(app, topic, data, trace_id=trace_id, source=source, group_id=group_id,
                        message_id=effect.id if effect else None,
                        parent=effect.owner if effect else None)
    await runtime.bus.publish([msg])
    return msg.id


class FlowContext:
    """The second argument of every handler."""

    def __class_getitem__(cls, item: Any) -> type[FlowContext]:
        # ``FlowContext[Any]`` in annotations, as Motia 1.x writes them.
        return cls

    def __init__(
        self,
        app: App,
        runtime: Runtime,
        *,
        step: Step | None,
        trace_id: str,
        trigger: Trigger | None = None,
        message_id: str | None = None,
        delivery_id: str | None = None,
        attempt: int = 1,
    ) -> None:
        self.app = app
        self.step = step
        self.trace_id = trace_id
        self.trigger = trigger
        self.message_id = message_id
        self.attempt = attempt
        self._runtime = runtime
        self._delivery_id = delivery_id
        self._effects: Counter[str] = Counter()
        self._calls = Calls()
        #: What the handler was given (Motia 1.x's ``ctx.input_value``).
        self.input_value: Any = None
        self.state = StateAPI(runtime.state, self._origin, self._calls)
        self.streams = Streams(runtime.streams, list(app.streams), self._origin, self._calls)
        sink: TelemetrySink | None = getattr(runtime, "telemetry", None)
        self.logger = StepLogger(step.name if step else None, trace_id,
                                 tuple(step.config.flows) if step else (),
                                 sink=(lambda rec: sink.record([rec], ())) if sink else None,
                                 json_lines=app.settings.log_format == LogFormat.JSON,
                                 file=app.settings.log_file)

    def _effect_id(self, target: str) -> Effect | None:
        """``<delivery>|<target>|<n>`` for the n-th effect on ``target`` (an item written with
        the same kind of operation, or a topic) in this delivery. A retry that repeats an
        effect reproduces its id, so the effect is not applied twice; effects on other targets,
        skipped or reordered, do not shift it. Values are not part of the id: a retry that
        computes a different value for the same write still counts as the same write."""
        if self._delivery_id is None:
            return None
        self._effects[target] += 1
        # Hashed to a fixed size: message ids become delivery ids downstream, and would
        # otherwise grow with every hop.
        raw = f"{self._delivery_id}|{target}|{self._effects[target]}"
        return Effect(self._delivery_id,
                      hashlib.blake2b(raw.encode(), digest_size=16).hexdigest())

    def _origin(self, target: str) -> Origin:
        return Origin(self.trace_id, self.step.name if self.step else None,
                      self._effect_id(target))

    @scheduled
    async def enqueue(self, topic: str | Mapping[str, Any], data: Any = None,
                      message_group_id: str | None = None) -> None:
        """Deliver ``data`` to every step subscribed to ``topic``. Returns once accepted.

        ``enqueue({"topic": ..., "data": ...})`` (Motia's object form) works too."""
        if isinstance(topic, Mapping):
            return await self._emit(topic)
        subscribers = self.app.subscribers(topic)
        await publish(self.app, self._runtime, topic, data, trace_id=self.trace_id,
                      source=self.step, group_id=message_group_id,
                      effect=self._effect_id(f"enqueue|{topic}"))
        if not subscribers and not self.app.drawn_subscribers(topic):
            # A step that subscribes virtually (a noop step drawing where the topic goes,
            # outside the app) says the message is meant to leave it: no warning then.
            self.logger.warn("no step subscribes to this topic; the message is not delivered",
                             topic=topic)

    @scheduled
    async def emit(self, event: Mapping[str, Any]) -> None:
        """Motia 0.x's ``emit({"topic", "data", "messageGroupId"?})``."""
        await self._emit(event)

    async def _emit(self, event: Mapping[str, Any]) -> None:
        if "topic" not in event:
            raise EnqueueError("emit() takes {'topic': ..., 'data': ...}")
        await self.enqueue(
            str(event["topic"]), event.get("data"),
            event.get("messageGroupId", event.get("message_group_id")),
        )


    # --- Motia 1.x's FlowContext ---------------------------------------------------------
    def _kind(self) -> TriggerKind | None:
        return getattr(self.trigger, "type", None)

    def is_api(self) -> bool:
        return self._kind() == TriggerKind.HTTP

    def is_queue(self) -> bool:
        return self._kind() == TriggerKind.QUEUE

    def is_cron(self) -> bool:
        return self._kind() == TriggerKind.CRON

    def is_state(self) -> bool:
        return self._kind() == TriggerKind.STATE

    def is_stream(self) -> bool:
        return self._kind() == TriggerKind.STREAM

    def get_data(self) -> Any:
        """The trigger's payload: a request's body, a message's data, ``None`` for cron."""
        if self.is_cron():
            return None
        return getattr(self.input_value, "body", None) if self.is_api() else self.input_value

    async def match(self, handlers: Mapping[str, Callable[..., Any]]) -> Any:
        """Run the handler for the trigger that fired: ``{"http" (or "api"), "queue",
        "cron", "state", "stream", "default"}``; cron's takes no argument, the rest the
        input."""
        kind = self._kind()
        spec = None if kind is None else trigger_kind.get(kind)
        keys = (spec.kind.value, *spec.aliases) if spec else ()
        fn = next((handlers[k] for k in keys if handlers.get(k)), None)
        if fn is not None:
            assert spec is not None
            return await invoke(fn, (self.input_value,) if spec.has_input else ())
        if handlers.get("default"):
            return await invoke(handlers["default"], (self.input_value,))
        raise UsageError(f"no handler for a {kind} trigger in ctx.match(); it has "
                           f"{sorted(k for k in handlers if k != 'default')}")

    # --- the run of a handler ------------------------------------------------------------
    async def settle(self) -> None:
        """Run the calls the handler left un-awaited (see :mod:`raypipe.calls`)."""
        await self._calls.settle()


async def invoke(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """``fn(*args)``: on this loop if it is async, in a thread if it is a plain ``def``
    (its ctx calls then return their results), its result awaited if it is awaitable."""
    if inspect.iscoroutinefunction(fn):
        result = await fn(*args)
    else:
        # to_thread copies the contextvars: the thread sees the current context.
        result = await asyncio.to_thread(fn, *args)
    if inspect.isawaitable(result):
        result = await result
    return result


@functools.lru_cache(maxsize=4096)
def _positional(fn: Callable[..., Any]) -> int:
    """How many positional arguments ``fn`` takes (2 for ``*args``): Motia calls a handler
    with what it takes."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return 2
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def handler_args(handler: Callable[..., Any], value: Any, ctx: FlowContext) -> tuple[Any, ...]:
    """``(input, ctx)`` for a handler that takes both, ``(input,)`` or ``()`` for one that
    takes fewer; a one-argument cron handler gets ``ctx`` (Motia 0.x's ``handler(context)``;
    1.x's ``handler(input)`` is given ``None`` as cron input and ignores it)."""
    n = _positional(handler)
    if n >= 2:
        return value, ctx
    if n == 1:
        return (ctx,) if ctx.is_cron() else (value,)
    return ()


async def call_handler(handler: Any, value: Any, ctx: FlowContext) -> Any:
    """Run a handler with the arguments it takes, as the current context; its un-awaited
    ctx calls are made before this returns, and dropped if it raised."""
    ctx.input_value = value
    token = current.set(ctx)
    try:
        result = await invoke(handler, handler_args(handler, value, ctx))
        await ctx.settle()
    except BaseException:
        ctx._calls.discard()
        raise
    finally:
        current.reset(token)
    return result
