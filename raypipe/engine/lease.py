"""A lease: which of an app's dispatcher shards runs its cron schedules. The holder renews it
every third of its term; a holder that dies stops renewing, and the first shard to ask after
the term ends takes it over (and catches up the tick its journal says was missed).

:class:`MemoryLease` keeps it in one process (the shards of :mod:`raypipe.testing`, or the
state actor that holds it for a memory-state app on Ray); the Redis one
(:mod:`raypipe.engine.redis_journal`) in the app's Redis.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Callable

from raypipe.engine.clock import Clock

__all__ = ["LEASE_SECONDS", "Lease", "MemoryLease", "hold"]

log = logging.getLogger("raypipe.engine")

#: A lease's term: how long the cron schedules may go unrun after their holder dies.
LEASE_SECONDS = 6.0


class Lease(abc.ABC):
    @abc.abstractmethod
    async def acquire(self, owner: str, seconds: float) -> bool:
        """Take the lease for ``seconds`` if it is free or ``owner``'s (a renewal); whether
        ``owner`` holds it now."""


class MemoryLease(Lease):
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._owner: str | None = None
        self._until = 0.0

    async def acquire(self, owner: str, seconds: float) -> bool:
        now = self._now()
        if self._owner in (None, owner) or now >= self._until:
            self._owner, self._until = owner, now + seconds
        return self._owner == owner


async def hold(lease: Lease, owner: str, clock: Clock, on_change: Callable[[bool], None],
               seconds: float = LEASE_SECONDS) -> None:
    """Ask for the lease every third of its term, forever; ``on_change(held)`` each time
    holding it starts or stops. An error asking counts as not holding it: a shard that cannot
    reach the lease's store stops its schedules before another may take them."""
    held = False
    while True:
        try:
            now_held = await lease.acquire(owner, seconds)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("the cron lease could not be asked for", exc_info=True)
            now_held = False
        if now_held != held:
            held = now_held
            on_change(held)
        await clock.sleep(seconds / 3)
