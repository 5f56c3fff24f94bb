"""The embedded default: dicts in the state actor's process.

A small item is never changed in place (``apply_ops`` builds a new value), so the stored
object can be handed out as it is and an old value stays valid for state triggers. A large
item that nothing outside holds is updated in place (:mod:`raypipe.state.in_place`): its
effect record keeps what the update's paths held, and a read hands the item out, so that the
next update copies it first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from raypipe.effects import Effect, EffectLog
from raypipe.shared_types import Groups, Items
from raypipe.state.backend import Observe, Pair, Removed, StateBackend, ignore
from raypipe.state.change import StateChange, is_large
from raypipe.state.in_place import Before, Holder, PathRecord, answer
from raypipe.state.ops import apply_ops

__all__ = ["MemoryBackend"]


class MemoryBackend(StateBackend):
    def __init__(self) -> None:
        self._groups: dict[str, dict[str, Any]] = {}
        self._effects = EffectLog()
        self._holder = Holder()

    async def get(self, group: str, key: str) -> Any:
        self._holder.handed_out((group, key))
        return self._groups.get(group, {}).get(key)

    def _first(self, effect: Effect | None) -> tuple[Any, Any] | None:
        """``(old, new)`` of an item write whose effect was applied already, else ``None``."""
        if not self._effects.seen(effect):
            return None
        first = self._effects.result(effect)  # type: ignore[arg-type]
        if isinstance(first, dict):  # an in-place update's path record
            group, key = first["at"]
            return answer(first, self._groups.get(group, {}).get(key))
        return first if isinstance(first, tuple) else None

    def _repeat(self, effect: Effect | None, observe: Observe) -> Pair | None:
        """The first result of a write whose effect was applied already, else ``None``."""
        first = self._first(effect)
        if first is not None:
            observe(*first)
        return first

    def _store(self, group: str, key: str, new: Any) -> None:
        """``new`` as the item (``None`` removes it, and its group once empty)."""
        items = self._groups.setdefault(group, {})
        if new is None:
            items.pop(key, None)
            if not items:
                del self._groups[group]
        else:
            items[key] = new

    def _write(self, group: str, key: str, effect: Effect | None,
               compute: Callable[[Any], Any], observe: Observe) -> Pair:
        # No await between read and write: the actor's event loop makes this atomic.
        repeat = self._repeat(effect, observe)
        if repeat is not None:
            return repeat
        old = self._groups.get(group, {}).get(key)
        new = compute(old)
        # The stored object is the caller's (or a new one): not this backend's alone.
        self._holder.handed_out((group, key))
        self._store(group, key, new)
        self._effects.record(effect, (old, new))
        observe(old, new)
        return old, new

    async def set(self, group: str, key: str, value: Any, effect: Effect | None = None,
                  observe: Observe = ignore) -> Pair:
        return self._write(group, key, effect, lambda _old: value, observe)

    async def update(
        self, group: str, key: str, ops: Sequence[dict[str, Any]], effect: Effect | None = None,
        observe: Observe = ignore,
    ) -> Pair:
        old = self._groups.get(group, {}).get(key)
        if not is_large(old):
            return self._write(group, key, effect, lambda old: apply_ops(old, ops), observe)
        repeat = self._repeat(effect, observe)
        if repeat is not None:
            return repeat
        value = self._holder.writable((group, key), old)
        self._groups[group][key] = value
        before = PathRecord(value, ops)
        new = apply_ops(value, ops, in_place=True)  # raises with the item as it was
        self._store(group, key, new)  # a `set` of the root to null removes it
        record = before.finish(new, (group, key))
        self._effects.record(effect, record)
        observe(Before(record, new), new)
        return StateChange(load=lambda: answer(record, new))

    async def delete(self, group: str, key: str, effect: Effect | None = None,
                     observe: Observe = ignore) -> Any:
        if group not in self._groups:
            return None
        old, _ = self._write(group, key, effect, lambda _old: None, observe)
        return old

    async def release(self, owners: Sequence[str]) -> None:
        self._effects.release(list(owners))

    async def applied(self, effect: Effect) -> tuple[Any, Any] | None:
        return self._first(effect)

    async def list(self, group: str) -> Items:
        items = self._groups.get(group, {})
        self._holder.handed_out_group(group)
        return [{"id": k, "data": items[k]} for k in sorted(items)]

    async def list_groups(self) -> Groups:
        return sorted(self._groups)

    async def clear(self, group: str, effect: Effect | None = None) -> Removed:
        if self._effects.seen(effect):
            return []
        self._effects.record(effect)
        self._holder.handed_out_group(group)
        return sorted(self._groups.pop(group, {}).items())
