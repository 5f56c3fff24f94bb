"""The embedded default: dicts in the state actor's process.

Values are never mutated in place (``apply_ops`` builds new ones), so handing out the stored
object is safe and old values stay valid for state triggers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from raypipe.effects import Effect, EffectLog
from raypipe.shared_types import Groups, Items
from raypipe.state.backend import Removed, StateBackend
from raypipe.state.ops import apply_ops

__all__ = ["MemoryBackend"]


class MemoryBackend(StateBackend):
    def __init__(self) -> None:
        self._groups: dict[str, dict[str, Any]] = {}
        self._effects = EffectLog()

    async def get(self, group: str, key: str) -> Any:
        return self._groups.get(group, {}).get(key)

    def _write(self, group: str, key: str, effect: Effect | None,
               compute: Callable[[Any], Any]) -> tuple[Any, Any]:
        # No await between read and write: the actor's event loop makes this atomic.
        if self._effects.seen(effect):
            return self._effects.result(effect)  # type: ignore[arg-type,no-any-return]
        items = self._groups.setdefault(group, {})
        old = items.get(key)
        new = compute(old)
        if new is None:
            items.pop(key, None)
            if not items:
                del self._groups[group]
        else:
            items[key] = new
        self._effects.record(effect, (old, new))
        return old, new

    async def set(
        self, group: str, key: str, value: Any, effect: Effect | None = None
    ) -> tuple[Any, Any]:
        return self._write(group, key, effect, lambda _old: value)

    async def update(
        self, group: str, key: str, ops: Sequence[dict[str, Any]], effect: Effect | None = None
    ) -> tuple[Any, Any]:
        return self._write(group, key, effect, lambda old: apply_ops(old, ops))

    async def delete(self, group: str, key: str, effect: Effect | None = None) -> Any:
        if group not in self._groups:
            return None
        old, _ = self._write(group, key, effect, lambda _old: None)
        return old

    async def release(self, owners: Sequence[str]) -> None:
        self._effects.release(list(owners))

    async def applied(self, effect: Effect) -> tuple[Any, Any] | None:
        first = self._effects.result(effect) if self._effects.seen(effect) else None
        return first if isinstance(first, tuple) else None

    async def list(self, group: str) -> Items:
        items = self._groups.get(group, {})
        return [{"id": k, "data": items[k]} for k in sorted(items)]

    async def list_groups(self) -> Groups:
        return sorted(self._groups)

    async def clear(self, group: str, effect: Effect | None = None) -> Removed:
        if self._effects.seen(effect):
            return []
        self._effects.record(effect)
        return sorted(self._groups.pop(group, {}).items())
