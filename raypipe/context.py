"""``ctx``: what a handler uses to reach state, enqueue messages and log.

The context speaks to a :class:`Runtime` (Ray actors in production, in-process objects in
tests of the model) through two small protocols, so this module never imports Ray.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from raypipe.effects import Effect
from raypipe.errors import EnqueueError, EnqueueValidationError, SchemaValidationError
from raypipe.jsonvalues import plain_json
from raypipe.logger import StepLogger
from raypipe.messages import Message, new_id
from raypipe.state.backend import Groups, Items, Ops
from raypipe.state.change import StateChange
from raypipe.state.ops import validate_ops
from raypipe.streams.api import StreamAPI, Streams, StreamStore
from raypipe.streams.relay import Relay

if TYPE_CHECKING:
    from raypipe.app import App
    from raypipe.steps import Step
    from raypipe.triggers import Trigger

__all__ = ["Bus", "DeadLetters", "FlowContext", "Origin", "Runtime", "StateAPI", "StateStore",
           "publish"]

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
    """``ctx.state``: groups of items; every write is atomic per item."""

    def __init__(self, store: StateStore, origin: Callable[[str], Origin]) -> None:
        self._store = store
        self._origin = origin

    async def get(self, group: str, key: str) -> Any:
        return await self._store.get(group, key)

    async def set(self, group: str, key: str, value: Any) -> StateChange:
        """Store ``value``; returns the change: ``old, new = ...``, or ``.old_value`` and
        ``.new_value``."""
        value = plain_json(value, f"the state item {group}/{key}")
        return StateChange.of(await self._store.set(group, key, value,
                                                    self._origin(f"set|{group}|{key}")))

    async def delete(self, group: str, key: str) -> Any:
        """Remove an item; returns what it held (``None`` if nothing)."""
        return await self._store.delete(group, key, self._origin(f"delete|{group}|{key}"))

    async def list(self, group: str) -> Items:
        """Every item of ``group`` as ``{"id", "data"}``."""
        return await self._store.list(group)

    #: Motia 0.x's name for ``list``.
    get_group = list

    async def list_groups(self) -> Groups:
        return await self._store.list_groups()

    async def clear(self, group: str) -> None:
        await self._store.clear(group, self._origin(f"clear|{group}"))

    async def update(
        self, group: str, key: str, ops: Sequence[Mapping[str, Any]]
    ) -> StateChange:
        """Apply ``ops`` atomically (set, merge, increment, decrement, remove, append on dot
        paths); returns the change, as :meth:`set` does."""
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
        raise EnqueueError(
            f"step {source.name!r} enqueued {topic!r}, which is not in its enqueues "
            f"{list(source.config.enqueues)}")
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
        self.state = StateAPI(runtime.state, self._origin)
        self.streams = Streams(runtime.streams, list(app.streams), self._origin)
        sink: TelemetrySink | None = getattr(runtime, "telemetry", None)
        self.logger = StepLogger(step.name if step else None, trace_id,
                                 tuple(step.config.flows) if step else (),
                                 sink=(lambda rec: sink.record([rec], ())) if sink else None)

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

    async def enqueue(self, topic: str | Mapping[str, Any], data: Any = None,
                      message_group_id: str | None = None) -> None:
        """Deliver ``data`` to every step subscribed to ``topic``. Returns once accepted.

        ``enqueue({"topic": ..., "data": ...})`` (Motia's object form) works too."""
        if isinstance(topic, Mapping):
            return await self.emit(topic)
        subscribers = self.app.subscribers(topic)
        await publish(self.app, self._runtime, topic, data, trace_id=self.trace_id,
                      source=self.step, group_id=message_group_id,
                      effect=self._effect_id(f"enqueue|{topic}"))
        if not subscribers:
            self.logger.warn("no step subscribes to this topic; the message is not delivered",
                             topic=topic)

    async def emit(self, event: Mapping[str, Any]) -> None:
        """Motia 0.x's ``emit({"topic", "data", "messageGroupId"?})``."""
        if "topic" not in event:
            raise EnqueueError("emit() takes {'topic': ..., 'data': ...}")
        await self.enqueue(
            str(event["topic"]), event.get("data"),
            event.get("messageGroupId", event.get("message_group_id")),
        )


class SyncProxy:
    """Lets a plain ``def`` handler, run in a thread, call the async context API as if it were
    synchronous: every coroutine it starts runs on the delivery's event loop."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if inspect.iscoroutinefunction(value):
            @functools.wraps(value)
            def call(*args: Any, **kwargs: Any) -> Any:
                fut = asyncio.run_coroutine_threadsafe(value(*args, **kwargs), self._loop)
                return fut.result()
            return call
        if isinstance(value, (StateAPI, Streams, StreamAPI)):
            return SyncProxy(value, self._loop)
        return value


async def call_handler(handler: Any, value: Any, ctx: FlowContext) -> Any:
    """Run an async handler on this loop, a plain one in a thread with a synchronous ctx."""
    if inspect.iscoroutinefunction(handler):
        return await handler(value, ctx)
    loop = asyncio.get_running_loop()
    result = await asyncio.to_thread(handler, value, SyncProxy(ctx, loop))
    if inspect.isawaitable(result):
        result = await result
    return result
