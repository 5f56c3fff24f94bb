"""Calls made in one turn of an event loop, sent together at its end.

A batch task's concurrent deliveries, or a handler's ``asyncio.gather`` of a fan-out, make
their state writes and enqueues in one turn of the loop; one actor call for all of them,
instead of one each, is what keeps a 10,000-step fan-out near raw Ray's speed
(bench/results/report.md). Ray-free: ``send`` is handed in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Coroutine, Sequence
from typing import Any, Generic, TypeVar

__all__ = ["LoopBatcher", "Outcome", "run_calls"]

T = TypeVar("T")
R = TypeVar("R")

#: Per item: ``(True, result)``, or ``(False, the exception its caller raises)``.
Outcome = tuple[bool, R]


class LoopBatcher(Generic[T, R]):
    """``await batcher.call(item)`` resolves with that item's outcome from one
    ``send(items)`` per loop turn, items in the order they were added. If ``send`` raises,
    every caller in its batch raises that exception.

    With ``most``, a turn's items go in parts of at most ``most``, and the first part is
    sent the moment it is full, in the middle of the turn: a handler that makes 10,000 calls
    in one turn (a fan-out's ``gather``) has its first thousand at work on the other side
    while it makes the rest, instead of the receiver waiting for the whole turn. A later
    part whose items keep their order with the turn's other such items (``ordered(items)``;
    by default every part) is sent once the last such part before it was answered, so a
    receiver that may start calls out of order (a Ray async actor) still takes them in
    order; the others are sent as soon as they are full. ``send`` is called synchronously
    and should begin sending before it returns its awaitable (a Ray call is submitted
    then)."""

    def __init__(self, send: Callable[[list[T]], Awaitable[Sequence[Outcome[R]]]],
                 most: int | None = None,
                 ordered: Callable[[list[T]], bool] = lambda items: True) -> None:
        self._send = send
        self._most = most
        self._ordered = ordered
        # One open batch per event loop: a Serve replica and a worker each have their own.
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[T, asyncio.Future[R]]]] = {}
        #: Loops whose turn's end will send what is pending.
        self._flush_due: set[asyncio.AbstractEventLoop] = set()
        #: Per loop, in the turn: the last part started whose items keep their order.
        self._last_part: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    def call(self, item: T) -> asyncio.Future[R]:
        loop = asyncio.get_running_loop()
        batch = self._pending.get(loop)
        if batch is None:
            batch = self._pending[loop] = []
            if loop not in self._flush_due:
                self._flush_due.add(loop)
                loop.call_soon(self._flush, loop)
        fut: asyncio.Future[R] = loop.create_future()
        batch.append((item, fut))
        if self._most is not None and len(batch) >= self._most:
            del self._pending[loop]
            self._start(loop, batch, cut=True)
        return fut

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._flush_due.discard(loop)
        batch = self._pending.pop(loop, None)
        if batch is not None:
            self._start(loop, batch)
        self._last_part.pop(loop, None)

    def _start(self, loop: asyncio.AbstractEventLoop,
               batch: list[tuple[T, asyncio.Future[R]]], cut: bool = False) -> None:
        """``cut``: a full part in the middle of the turn (more may follow it). Whether a part
        keeps its order is asked only where a part came or may come before or after it: a
        turn sent whole (the usual case) is not looked through."""
        items = [item for item, _ in batch]
        ordered = (cut or loop in self._last_part) and self._ordered(items)
        before = self._last_part.get(loop) if ordered else None
        if before is not None and not before.done():
            task = loop.create_task(self._deliver_after(before, batch, items))
        else:
            try:
                sent: Awaitable[Sequence[Outcome[R]]] | None = self._send(items)
            except BaseException as exc:
                _fail(batch, exc)
                sent = None
            task = loop.create_task(self._deliver(batch, sent))
        if ordered:
            self._last_part[loop] = task

    async def _deliver_after(self, before: asyncio.Task[None],
                             batch: list[tuple[T, asyncio.Future[R]]], items: list[T]) -> None:
        try:
            await before
            sent = self._send(items)
        except BaseException as exc:
            _fail(batch, exc)
            return
        await self._deliver(batch, sent)

    async def _deliver(self, batch: list[tuple[T, asyncio.Future[R]]],
                       sent: Awaitable[Sequence[Outcome[R]]] | None) -> None:
        if sent is None:  # failed to send: its callers have the error
            return
        try:
            outcomes = await sent
        except BaseException as exc:
            _fail(batch, exc)
            return
        for (_, fut), (ok, value) in zip(batch, outcomes, strict=True):
            if fut.done():  # its caller was cancelled
                continue
            if ok:
                fut.set_result(value)
            else:
                assert isinstance(value, BaseException)
                fut.set_exception(value)


def _fail(batch: list[tuple[Any, asyncio.Future[Any]]], exc: BaseException) -> None:
    for _, fut in batch:
        if not fut.done():
            fut.set_exception(exc)


async def run_calls(target: object, calls: Sequence[tuple[str, tuple[Any, ...]]],
                    allowed: Collection[str]) -> list[Outcome[Any]]:
    """The receiving end of a :class:`LoopBatcher`: each ``(method, args)`` of ``target``
    (one of ``allowed``), answered ``(True, result)`` or ``(False, exception)`` on its own.
    They were made concurrently and run so, started in the order they were made: writes to
    one item apply in that order. Each starts at once, in this call (what Python 3.12's eager
    tasks do): most finish without waiting on anything, and only those that wait become a
    task (a task each cost the state actor more than the write itself)."""
    outcomes: list[Outcome[Any] | None] = [None] * len(calls)
    waiting: list[tuple[int, Coroutine[Any, Any, Any]]] = []
    for i, (method, args) in enumerate(calls):
        if method not in allowed:
            outcomes[i] = False, ValueError(f"{method!r} cannot be batched")
            continue
        try:
            started = start_eagerly(getattr(target, method)(*args))
        except Exception as exc:
            outcomes[i] = False, exc
            continue
        if isinstance(started, tuple):
            outcomes[i] = started
        else:
            waiting.append((i, started))
    if waiting:
        finished = await asyncio.gather(*(_outcome(rest) for _, rest in waiting))
        for (i, _), outcome in zip(waiting, finished, strict=True):
            outcomes[i] = outcome
    return outcomes  # type: ignore[return-value]  # every place filled


def start_eagerly(coro: Coroutine[Any, Any, R]) -> tuple[bool, R] | Coroutine[Any, Any, R]:
    """Run ``coro`` up to its first wait: ``(True, result)`` if it finished, else the rest of
    it, to await. An exception it raised before waiting propagates."""
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        return True, stop.value
    return _resume(coro, yielded)


async def _resume(coro: Coroutine[Any, Any, R], yielded: Any) -> R:
    """Drive ``coro`` on from a wait, as a task does: wait for what it yielded, then resume
    it; it reads that future's result (or exception) itself. A cancellation of the awaiting
    task cancels the future, which ``coro`` then sees; one that finds the future done already
    is thrown into ``coro``."""
    while True:
        cancelled: asyncio.CancelledError | None = None
        if yielded is None:  # a bare yield (``asyncio.sleep(0)``): one turn of the loop
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError as exc:
                cancelled = exc
        elif asyncio.isfuture(yielded):
            yielded._asyncio_future_blocking = False
            try:
                await yielded
            except asyncio.CancelledError as exc:
                if not yielded.cancelled():  # this task was cancelled, not the future
                    cancelled = exc
            except Exception:  # coro reads it from the future itself
                pass
        else:
            coro.close()
            raise RuntimeError(f"a batched call yielded {yielded!r}, not a future")
        try:
            yielded = coro.send(None) if cancelled is None else coro.throw(cancelled)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


async def _outcome(rest: Awaitable[Any]) -> Outcome[Any]:
    try:
        return True, await rest
    except Exception as exc:
        return False, exc
