"""``ctx``: the second argument of every handler, what it uses to reach state and streams,
enqueue messages and log.

The context speaks to a :class:`~raypipe.runtime_protocols.Runtime` (Ray actors in
production, in-process services in :mod:`raypipe.testing`) through small protocols, so this
module never imports Ray.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from raypipe import trigger_kind
from raypipe.calls import Calls, scheduled
from raypipe.effects import Effect
from raypipe.enqueue import publish
from raypipe.errors import EnqueueError, UsageError
from raypipe.handlers import invoke
from raypipe.logger import StepLogger
from raypipe.runtime_protocols import Origin, Runtime, TelemetrySink
from raypipe.settings import LogFormat
from raypipe.state.api import StateAPI
from raypipe.streams.api import Streams
from raypipe.trigger_kind import TriggerKind

if TYPE_CHECKING:
    from raypipe.app import App
    from raypipe.refs import Ref
    from raypipe.steps import Step
    from raypipe.triggers import Trigger

__all__ = ["FlowContext"]


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
        self._effects: dict[str, int] = {}
        self._calls = Calls()
        #: What the handler was given (Motia 1.x's ``ctx.input_value``).
        self.input_value: Any = None
        self._state: StateAPI | None = None
        self._streams: Streams | None = None
        self._logger: StepLogger | None = None

    # Made when first used: a context is made per delivery, and most handlers use one or two
    # of them (each costs about as much as the rest of the context together). Not
    # functools.cached_property: on Python 3.11 it takes a lock on every first use.
    @property
    def state(self) -> StateAPI:
        if self._state is None:
            self._state = StateAPI(self._runtime.state, self._origin, self._calls)
        return self._state

    @property
    def streams(self) -> Streams:
        if self._streams is None:
            self._streams = Streams(self._runtime.streams, list(self.app.streams),
                                    self._origin, self._calls)
        return self._streams

    @property
    def logger(self) -> StepLogger:
        if self._logger is None:
            step, app = self.step, self.app
            sink: TelemetrySink | None = getattr(self._runtime, "telemetry", None)
            self._logger = StepLogger(
                step.name if step else None, self.trace_id,
                tuple(step.config.flows) if step else (),
                sink=(lambda rec: sink.record([rec], ())) if sink else None,
                json_lines=app.settings.log_format == LogFormat.JSON, file=app.settings.log_file)
        return self._logger

    def _effect_id(self, target: str) -> Effect | None:
        """``<delivery>|<target>|<n>`` for the n-th effect on ``target`` (an item written with
        the same kind of operation, or a topic) in this delivery. A retry that repeats an
        effect reproduces its id, so the effect is not applied twice; effects on other targets,
        skipped or reordered, do not shift it. Values are not part of the id: a retry that
        computes a different value for the same write still counts as the same write."""
        if self._delivery_id is None:
            return None
        n = self._effects[target] = self._effects.get(target, 0) + 1
        # Hashed to a fixed size: message ids become delivery ids downstream, and would
        # otherwise grow with every hop.
        raw = f"{self._delivery_id}|{target}|{n}"
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
        if not isinstance(topic, str) and isinstance(topic, Mapping):
            return await self._emit(topic)
        await publish(self.app, self._runtime, topic, data, trace_id=self.trace_id,
                      source=self.step, group_id=message_group_id,
                      effect=self._effect_id(f"enqueue|{topic}"))
        if not self.app.subscribers(topic) and not self.app.drawn_subscribers(topic):
            # A step that subscribes virtually (a noop step drawing where the topic goes,
            # outside the app) says the message is meant to leave it: no warning then.
            self.logger.warn("no step subscribes to this topic; the message is not delivered",
                             topic=topic)

    # --- values by reference -------------------------------------------------------------
    async def put(self, value: Any) -> Ref:
        """Hold ``value`` (anything Ray can serialise: numpy arrays, bytes, Arrow tables,
        frames) outside the message, as ``ray.put`` does, and answer its reference: a small
        JSON value to enqueue, store in state or streams, and read back with :meth:`get`.
        The value is held while anything that can still run or be read names the reference
        (see :mod:`raypipe.objects`)."""
        return await self._runtime.objects.put(value, self._origin("put"))

    async def get(self, ref: Ref | Mapping[str, Any]) -> Any:
        """The value of a reference from :meth:`put` (as ``ray.get``; a numpy array comes
        back read-only, without a copy, on Ray)."""
        return await self._runtime.objects.get(ref)

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
    def discard(self) -> None:
        """Drop the calls the handler left un-awaited (it failed)."""
        self._calls.discard()

    async def settle(self) -> None:
        """Run the calls the handler left un-awaited (see :mod:`raypipe.calls`)."""
        await self._calls.settle()
