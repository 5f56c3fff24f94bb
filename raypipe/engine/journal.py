"""The engine's journal: deliveries accepted and not yet settled, in the order accepted; dead
letters; which messages and deliveries each delivery caused (so a recovered one does not cause
them twice); and the last tick each cron step fired.

:class:`MemoryJournal` is the embedded default: nothing survives the process. The Redis one
(:mod:`raypipe.engine.redis_journal`) makes an app recoverable: a restarted dispatcher, or a
whole cluster started again, re-runs every delivery accepted but not settled, in order, and
keeps its dead letters.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from raypipe.engine.delivery import Delivery
from raypipe.engine.records import DeadLetter

__all__ = ["Journal", "MemoryJournal", "make_journal"]


class Journal(abc.ABC):
    @abc.abstractmethod
    async def start(self) -> int:
        """Called once per engine life before anything else; returns this life's number,
        higher than any before it (it orders deliveries accepted across lives)."""

    @abc.abstractmethod
    async def accepted(self, deliveries: Sequence[Delivery], caused: Sequence[tuple[str, str]]
                       ) -> None:
        """Journal deliveries before they start, with ``(parent, id)`` of every message or
        delivery id a running delivery caused (kept until the parent settles)."""

    @abc.abstractmethod
    async def settled(self, delivery_ids: Sequence[str]) -> None:
        """These deliveries are done: drop them and what they caused here (the records of
        their effects are released by the shards that keep them)."""

    @abc.abstractmethod
    async def dead(self, entry: DeadLetter) -> None:
        """Move a delivery from the pending ones to the dead letters (its records stay)."""

    @abc.abstractmethod
    async def revived(self, entry_id: str, delivery: Delivery) -> None:
        """Move a dead letter back to the pending deliveries, as ``delivery``."""

    @abc.abstractmethod
    async def pending(self) -> list[Delivery]:
        """Deliveries accepted and not settled, in the order they were accepted."""

    @abc.abstractmethod
    async def dead_letters(self) -> list[DeadLetter]: ...

    @abc.abstractmethod
    async def caused(self, parents: Sequence[str]) -> list[tuple[str, str]]:
        """``(parent, id)`` recorded by :meth:`accepted` for these parents."""

    @abc.abstractmethod
    async def ticked(self, step: str, due: float) -> None: ...

    @abc.abstractmethod
    async def last_tick(self, step: str) -> float | None: ...

    async def forgotten(self, delivery_ids: Sequence[str]) -> None:  # noqa: B027 - optional
        """These deliveries settled in another shard: what they caused here may go."""

    async def other_shards_owners(self) -> list[str]:
        """Ids of deliveries pending or dead in the app's other dispatcher shards: what this
        shard accepted from them is deduplicated until they settle. None kept: none."""
        return []

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class MemoryJournal(Journal):
    """Nothing to recover after a restart: only cron ticks are kept, for this life."""

    def __init__(self) -> None:
        self._ticks: dict[str, float] = {}

    async def start(self) -> int:
        return 0

    async def accepted(self, deliveries: Sequence[Delivery], caused: Sequence[tuple[str, str]]
                       ) -> None:
        pass

    async def settled(self, delivery_ids: Sequence[str]) -> None:
        pass

    async def dead(self, entry: DeadLetter) -> None:
        pass

    async def revived(self, entry_id: str, delivery: Delivery) -> None:
        pass

    async def pending(self) -> list[Delivery]:
        return []

    async def dead_letters(self) -> list[DeadLetter]:
        return []

    async def caused(self, parents: Sequence[str]) -> list[tuple[str, str]]:
        return []

    async def ticked(self, step: str, due: float) -> None:
        self._ticks[step] = due

    async def last_tick(self, step: str) -> float | None:
        return self._ticks.get(step)


def make_journal(url: str, app: str, shard: int = 0, shards: int = 1) -> Journal:
    """The journal of dispatcher shard ``shard`` of ``shards``."""
    if url == "memory":
        return MemoryJournal()
    from raypipe.engine.redis_journal import RedisJournal

    return RedisJournal(url, app, shard, shards)
