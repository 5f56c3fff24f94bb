"""The table of values held for references, and when each may go (Ray-free).

A value put by a delivery's handler is held while that delivery can still run, and after
that while anything that can still run or be read names its reference: a delivery not yet
settled or a dead letter (which may be replayed), a state item, a stream item. What names a
reference is found by a sweep that asks each of those places about the references held
(:meth:`ObjectTable.candidates`); a value none of them named in two sweeps in a row goes. Two,
because a sweep asks the places one after the other, and a reference on its way from one
to another (a handler that read it from state, deleted the item and enqueued it) can be
missed by one sweep, never by two: the step that moved it is still in flight at the next.

A value put outside a delivery (an HTTP step's handler) has no delivery to hold it: it is
kept for ``grace`` seconds at least, the longest a request runs.

The Ray shell is :mod:`raypipe.runtime.object_keeper`; :class:`LocalObjects` runs it in one
process for :mod:`raypipe.testing`.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from raypipe.errors import RefGoneError
from raypipe.refs import Ref, as_ref, describe
from raypipe.runtime_protocols import Origin

__all__ = ["Held", "LocalObjects", "ObjectTable", "holder_of", "new_ref", "parse_ref"]

T = TypeVar("T")

#: Sweeps in a row that must find a reference unnamed before its value goes.
MISSES_TO_FREE = 2


def new_ref(value: Any) -> Ref:
    """A new reference for ``value``: a fresh id, its type and size."""
    type_name, size = describe(value)
    return Ref(secrets.token_hex(16), type_name, size)


def holder_of(origin: Origin) -> str | None:
    """The delivery that holds what ``origin`` puts (``None`` outside a delivery)."""
    return origin.effect.owner if origin.effect else None


def parse_ref(value: Any) -> Ref:
    """``value`` as a reference, or a TypeError saying what ``ctx.get`` takes."""
    found = as_ref(value)
    if found is None:
        raise TypeError(f"ctx.get() takes a reference from ctx.put(), not {value!r}")
    return found


@dataclass
class Held(Generic[T]):
    """A value held for a reference: ``value`` is what the runtime keeps (the value itself
    in one process, an ObjectRef on Ray); ``holder`` is the delivery that put it."""

    ref: Ref
    value: T
    holder: str | None
    made_at: float
    misses: int = 0


class ObjectTable(Generic[T]):
    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.held: dict[str, Held[T]] = {}

    def hold(self, ref: Ref, value: T, holder: str | None, now: float) -> None:
        self.held[ref.id] = Held(ref, value, holder, now)

    def lookup(self, ref_id: str) -> Held[T] | None:
        return self.held.get(ref_id)

    def candidates(self) -> dict[str, str | None]:
        """Each held reference's id and the delivery that holds it: what a sweep asks about."""
        return {i: h.holder for i, h in self.held.items()}

    def sweep(self, in_use: set[str], now: float) -> list[Held[T]]:
        """One sweep's verdict, ``in_use`` being the references something named (or whose
        holder is still in flight): the values that go now."""
        gone = []
        for ref_id, held in list(self.held.items()):
            if ref_id in in_use:
                held.misses = 0
                continue
            if held.holder is None and now - held.made_at < self.grace:
                continue
            held.misses += 1
            if held.misses >= MISSES_TO_FREE:
                gone.append(self.held.pop(ref_id))
        return gone

    def stats(self) -> dict[str, Any]:
        sizes = [h.ref.size for h in self.held.values() if h.ref.size is not None]
        return {"objects": len(self.held), "bytes": sum(sizes)}


#: Asks the places that can name references which of these they do.
InUse = Callable[[Mapping[str, str | None]], Awaitable[set[str]]]


class LocalObjects:
    """An :class:`~raypipe.runtime_protocols.ObjectStore` of one process: values held as
    they are (no copy), freed by :meth:`sweep` as on a cluster."""

    def __init__(self, grace: float, clock: Callable[[], float], in_use: InUse) -> None:
        self.table: ObjectTable[Any] = ObjectTable(grace)
        self._clock = clock
        self._in_use = in_use

    async def put(self, value: Any, origin: Origin) -> Ref:
        ref = new_ref(value)
        self.table.hold(ref, value, holder_of(origin), self._clock())
        return ref

    async def get(self, ref: Any) -> Any:
        found = parse_ref(ref)
        held = self.table.lookup(found.id)
        if held is None:
            raise RefGoneError(found.id, "no value is held for it (freed, or never put here)")
        return held.value

    async def sweep(self) -> list[str]:
        """One sweep; returns the ids of the values that went."""
        if not self.table.held:
            return []
        in_use = await self._in_use(self.table.candidates())
        return [h.ref.id for h in self.table.sweep(in_use, self._clock())]

    async def settle(self) -> None:
        """As many sweeps as freeing takes: what nothing names now goes now."""
        for _ in range(MISSES_TO_FREE):
            await self.sweep()

    def stats(self) -> dict[str, Any]:
        return self.table.stats()
