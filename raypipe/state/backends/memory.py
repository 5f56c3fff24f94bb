"""The embedded default: dicts in the state actor's process.

Values are never mutated in place (``apply_ops`` builds new ones), so handing out the stored
object is safe and old values stay valid for state triggers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from raypipe.state.backend import Groups, Items, Removed, StateBackend
from raypipe.state.ops import apply_ops

__all__ = ["MemoryBackend"]


class MemoryBackend(StateBackend):
    def __init__(self) -> None:
        self._groups: dict[str, dict[str, Any]] = {}

    async def get(self, group: str, key: str) -> Any:
        return self._groups.get(group, {}).get(key)

    async def set(self, group: str, key: str, value: Any) -> tuple[Any, Any]:
        items = self._groups.setdefault(group, {})
        old = items.get(key)
        items[key] = value
        return old, value

    async def delete(self, group: str, key: str) -> Any:
        items = self._groups.get(group)
        if not items:
            return None
        old = items.pop(key, None)
        if not items:
            del self._groups[group]
        return old

    async def list(self, group: str) -> Items:
        items = self._groups.get(group, {})
        return [{"id": k, "data": items[k]} for k in sorted(items)]

    async def list_groups(self) -> Groups:
        return sorted(self._groups)

    async def clear(self, group: str) -> Removed:
        return sorted(self._groups.pop(group, {}).items())

    async def update(
        self, group: str, key: str, ops: Sequence[dict[str, Any]]
    ) -> tuple[Any, Any]:
        # No await between read and write: the actor's event loop makes this atomic.
        items = self._groups.setdefault(group, {})
        old = items.get(key)
        new = apply_ops(old, ops)
        items[key] = new
        return old, new
