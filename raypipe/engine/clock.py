"""The engine's sense of time: wall time for cron and timestamps, a monotonic clock for
durations and ages, and sleeping. Tests replace it with :class:`FakeClock`."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol

__all__ = ["Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    def time(self) -> float: ...
    def monotonic(self) -> float: ...
    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FakeClock:
    """Time that moves only when told: :meth:`advance` wakes the sleepers whose time came, in
    order, letting each run before the next. ``time()`` starts at ``start`` (epoch seconds)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._start = start
        self._now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self._start + self._now

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), fut))
        await fut

    def next_at(self) -> float | None:
        """When the earliest sleeper still waiting wakes (on :meth:`monotonic`'s scale)."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)  # cancelled while asleep
        return self._sleepers[0][0] if self._sleepers else None

    @property
    def sleepers(self) -> int:
        return sum(1 for *_, f in self._sleepers if not f.done())

    async def settle(self, turns: int = 20) -> None:
        """Let everything runnable run (a few turns of the loop)."""
        for _ in range(turns):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking each sleeper at its time."""
        until = self._now + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= until:
            at, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, at)
            if not fut.done():
                fut.set_result(None)
            await self.settle()
        self._now = until
        await self.settle()
