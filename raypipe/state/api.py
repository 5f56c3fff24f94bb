"""``ctx.state``: the state API a handler uses (groups of items, atomic per item)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from raypipe.calls import Calls, scheduled
from raypipe.jsonvalues import plain_json
from raypipe.runtime_protocols import Origin, StateStore
from raypipe.shared_types import Groups, Items
from raypipe.state.change import StateChange
from raypipe.state.ids import check_ids
from raypipe.state.ops import validate_ops

__all__ = ["StateAPI"]


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
