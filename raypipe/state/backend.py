"""The interface every state backend implements (memory, Redis)."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any

from raypipe import constants
from raypipe.effects import Effect
from raypipe.shared_types import Groups, Items
from raypipe.state.change import StateChange

__all__ = ["Observe", "Pair", "StateBackend", "ignore", "make_backend"]

#: ``list`` is also a method name below; the aliases keep annotations unambiguous.
Removed = list[tuple[str, Any]]

#: What a write returns: ``(old, new)``, or for an update made in place a change whose values
#: are made when read (as :meth:`StateBackend.applied` makes them).
Pair = tuple[Any, Any] | StateChange

#: Told a write's ``(old, new)`` as soon as they are computed, before anything else can write
#: the item (called again if the write is computed again, the last call being the one that
#: committed; a repeated write's is its first result). ``old`` is a
#: :class:`~raypipe.state.in_place.Before` for an update made in place, ``new`` then the live
#: item: the state service evaluates trigger conditions there and then.
Observe = Callable[[Any, Any], None]


def ignore(_old: Any, _new: Any) -> None:
    """The :data:`Observe` of a caller that reads only what a write returns."""


class StateBackend(abc.ABC):
    """Groups of items keyed by id; values are JSON. Each write is atomic for its item and
    tells ``observe``, and returns, what the item held before and after, which state triggers
    are made from. A value a backend hands out is never changed after.

    A write may name its ``effect`` (see :mod:`raypipe.effects`): a write whose effect was
    already applied changes nothing and returns the first result. The backend keeps that
    record as durably as the items themselves, so a restarted state actor still knows, until
    the delivery that owns it settles."""

    @abc.abstractmethod
    async def get(self, group: str, key: str) -> Any: ...

    @abc.abstractmethod
    async def set(
        self, group: str, key: str, value: Any, effect: Effect | None = None,
        observe: Observe = ignore,
    ) -> Pair: ...

    @abc.abstractmethod
    async def delete(self, group: str, key: str, effect: Effect | None = None,
                     observe: Observe = ignore) -> Any:
        """Remove an item; returns its old value (``None`` if there was none)."""

    @abc.abstractmethod
    async def list(self, group: str) -> Items:
        """``[{"id", "data"}, ...]`` in id order."""

    @abc.abstractmethod
    async def list_groups(self) -> Groups: ...

    @abc.abstractmethod
    async def clear(self, group: str, effect: Effect | None = None) -> Removed:
        """Remove a whole group; returns ``(id, old_value)`` of every removed item."""

    @abc.abstractmethod
    async def update(
        self, group: str, key: str, ops: Sequence[dict[str, Any]], effect: Effect | None = None,
        observe: Observe = ignore,
    ) -> Pair:
        """Apply ``ops`` atomically; an item that does not exist starts as ``{}``. A large
        item only this backend holds may be changed in place (:mod:`raypipe.state.in_place`):
        ``old`` is then a :class:`~raypipe.state.in_place.Before`."""

    @abc.abstractmethod
    async def applied(self, effect: Effect) -> tuple[Any, Any] | None:
        """``(old, new)`` of an item write whose ``effect`` was already applied, else ``None``."""

    async def release(self, owners: Sequence[str]) -> None:  # noqa: B027 - optional hook
        """Forget the effect records of these deliveries (they settled)."""

    async def sweep_records(self) -> int:
        """Forget the records of deliveries the journals no longer hold (releases lost with a
        restarting actor); how many owners' records went. Kept in memory, records go with
        the process: nothing to sweep."""
        return 0

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def make_backend(url: str, app: str, space: str = constants.STATE_SPACE, shard: int = 0,
                 shards: int = 1) -> StateBackend:
    """``memory``, or a ``redis://`` (``redis+cluster://``) URL: shard ``shard`` of
    ``shards`` of ``app``'s ``space``."""
    if url == "memory":
        from raypipe.state.backends.memory import MemoryBackend

        return MemoryBackend()
    from raypipe.state.backends.redis import RedisBackend

    return RedisBackend(url, app, space, shard, shards)
