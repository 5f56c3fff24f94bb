"""Calls made in one turn of an event loop, sent together at its end.

A batch task's concurrent deliveries, or a handler's ``asyncio.gather`` of a fan-out, make
their state writes and enqueues in one turn of the loop; one actor call for all of them,
instead of one each, is what keeps a 10,000-step fan-out near raw Ray's speed
(bench/results/report.md). Ray-free: ``send`` is handed in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, Generic, TypeVar

__all__ = ["LoopBatcher", "Outcome", "run_calls"]

T = TypeVar("T")
R = TypeVar("R")

#: Per item: ``(True, result)``, or ``(False, the exception its caller raises)``.
Outcome = tuple[bool, R]


class LoopBatcher(Generic[T, R]):
    """``await batcher.call(item)`` resolves with that item's outcome from one
    ``send(items)`` per loop turn, items in the order they were added. If ``send`` raises,
    every caller in its batch raises that exception."""

    def __init__(self, send: Callable[[list[T]], Awaitable[Sequence[Outcome[R]]]]) -> None:
        self._send = send
        # One open batch per event loop: a Serve replica and a worker each have their own.
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[T, asyncio.Future[R]]]] = {}

    def call(self, item: T) -> asyncio.Future[R]:
        loop = asyncio.get_running_loop()
        batch = self._pending.get(loop)
        if batch is None:
            batch = self._pending[loop] = []
            loop.call_soon(self._flush, loop)
        fut: asyncio.Future[R] = loop.create_future()
        batch.append((item, fut))
        return fut

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._pending.pop(loop)
        loop.create_task(self._deliver(batch))

    async def _deliver(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            outcomes = await self._send([item for item, _ in batch])
        except BaseException as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for (_, fut), (ok, value) in zip(batch, outcomes, strict=True):
            if fut.done():  # its caller was cancelled
                continue
            if ok:
                fut.set_result(value)
            else:
                assert isinstance(value, BaseException)
                fut.set_exception(value)


async def run_calls(target: object, calls: Sequence[tuple[str, tuple[Any, ...]]],
                    allowed: Collection[str]) -> list[Outcome[Any]]:
    """The receiving end of a :class:`LoopBatcher`: each ``(method, args)`` of ``target``
    (one of ``allowed``), answered ``(True, result)`` or ``(False, exception)`` on its own.
    They were made concurrently and run so, started in the order they were made: writes to
    one item apply in that order."""
    async def one(method: str, args: tuple[Any, ...]) -> Outcome[Any]:
        if method not in allowed:
            return False, ValueError(f"{method!r} cannot be batched")
        try:
            return True, await getattr(target, method)(*args)
        except Exception as exc:
            return False, exc

    return list(await asyncio.gather(*(one(m, a) for m, a in calls)))
