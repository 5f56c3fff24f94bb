"""What the handler layer needs of a runtime, as Protocols (Ray actors in production,
in-process services under :mod:`raypipe.testing`), and :class:`Origin`, who makes a change.
A leaf: the modules that implement these import it, never the other way round."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from raypipe.effects import Effect
from raypipe.messages import Message
from raypipe.shared_types import Groups, Items, Ops

if TYPE_CHECKING:
    from raypipe.refs import Ref
    from raypipe.state.change import StateChange
    from raypipe.streams.api import StreamStore
    from raypipe.streams.relay import Subscriptions

__all__ = ["Bus", "DeadLetters", "Ids", "ObjectStore", "Origin", "Runtime", "StateResult",
           "StateStore", "TelemetrySink"]

#: Dead-letter ids (``list`` is also a method name in the protocols below).
Ids = list[str]
#: A write's result: ``(old, new)``, or a :class:`StateChange` (possibly fetched lazily).
StateResult: TypeAlias = "tuple[Any, Any] | StateChange"


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


class ObjectStore(Protocol):
    """Values passed by reference (``ctx.put`` / ``ctx.get``): see :mod:`raypipe.objects`."""

    async def put(self, value: Any, origin: Origin) -> Ref: ...
    async def get(self, ref: Any) -> Any: ...


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
    @property
    def objects(self) -> ObjectStore: ...
    def relay(self) -> Subscriptions: ...
