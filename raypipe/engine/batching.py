"""Batches of deliveries: deliveries of one step that are ready together share one Ray task.

The :class:`Batcher` holds the deliveries waiting for a task, per step, and keeps at most
``window()`` batch tasks in flight for all steps together (the cluster's task slots). When one
finishes, the next batch is cut from whatever is waiting then, the steps taking turns. Ray's
own queue so stays short: with a backlog, the raylet starts worker processes for it, and their
start-up takes the cores from the work. In a 10,000-delivery fan-out with the raylet keeping
its workers, twice the slots in flight started 8 more workers and took 5-7 s; the slots alone
started 2 and took 3.8 s. (A Ray that raypipe starts keeps its idle workers between
fan-outs: ``WARM_WORKERS_ENV`` in :mod:`raypipe.runtime.deploy`.)

A step's batches grow while they are quick and shrink when they are slow
(:class:`BatchSize`): a task costs the dispatcher and the worker a submission and a state
call whatever its size, so trivial steps want large batches (a 10,000-step fan-out took 4.4 s
in batches of 32 and 2.9 s in batches of 128), while a delivery settles only when its whole
batch has run, so a slow step wants small ones.

Ray-free: the dispatcher supplies the function that runs a batch.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

__all__ = ["BATCH_SECONDS", "FIRST_BATCH", "MAX_BATCH", "BatchSize", "Batcher", "batch_size"]

T = TypeVar("T")

#: Most deliveries in a step's batch task before any of its tasks were timed (and in an
#: actor pool's call, unless the step says otherwise).
FIRST_BATCH = 32

#: Most deliveries in one batch task, however quick the step.
MAX_BATCH = 256

#: How long a batch task may take, from submission to outcomes, before the step's batches
#: shrink (they grow while they take under half of it): a delivery settles with its batch.
BATCH_SECONDS = 1.0


class BatchSize:
    """A step's most deliveries per batch task, halved after a batch that took longer than
    :data:`BATCH_SECONDS` and doubled after a full one that took under half of it (up to
    :data:`MAX_BATCH`). Timed by the task's wall time, not its CPU, so that a step whose
    deliveries wait concurrently (I/O) still gets large batches."""

    __slots__ = ("most",)

    def __init__(self) -> None:
        self.most = FIRST_BATCH

    def timed(self, size: int, seconds: float) -> None:
        if seconds > BATCH_SECONDS and size > 1:
            self.most = max(1, min(self.most, size) // 2)
        elif seconds < BATCH_SECONDS / 2 and size >= self.most:
            self.most = min(MAX_BATCH, self.most * 2)


def batch_size(waiting: int, free: int, most: int = FIRST_BATCH) -> int:
    """How many of ``waiting`` deliveries the next batch takes when ``free`` task slots are
    free: an even share of the slots, never more than ``most``."""
    if waiting <= 0:
        return 0
    return max(1, min(most, -(-waiting // max(1, free))))


class Batcher(Generic[T]):
    """Waiting deliveries per step, and at most ``window()`` batch tasks in flight; a step
    may also have its own limit of tasks in flight and of deliveries per task (``limits``:
    a step that needs a GPU has no more tasks in flight than the cluster has GPUs for it, so
    that they do not hold the slots of the other steps while they wait for one; a step
    without a limit of deliveries per task gets a :class:`BatchSize`)."""

    def __init__(self, window: Callable[[], int],
                 run: Callable[[str, list[T]], Awaitable[None]],
                 spawn: Callable[[Coroutine[Any, Any, None]], None],
                 limits: Callable[[str], tuple[int | None, int | None]] | None = None,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.waiting: dict[str, deque[T]] = {}
        self.running = 0
        self._by_step: dict[str, int] = {}
        self._limits = limits or (lambda step: (None, None))
        self._now = now
        self.sizes: dict[str, BatchSize] = {}
        self._turns: deque[str] = deque()  # steps with waiting deliveries, each once
        self._run = run
        self._spawn = spawn
        self._scheduled = False

    def add(self, step: str, item: T) -> None:
        """Queue ``item``; batches are cut at the end of this turn of the loop, so that
        everything a fan-out makes ready in one turn is shared out at once."""
        queue = self.waiting.get(step)
        if queue is None:
            queue = self.waiting[step] = deque()
            self._turns.append(step)
        queue.append(item)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.pump)

    def pump(self) -> None:
        """Start batches while deliveries wait and slots are free."""
        self._scheduled = False
        window = max(1, self.window())
        held: list[str] = []  # steps at their own limit: they wait for their own tasks
        while self._turns and self.running < window:
            step = self._turns.popleft()
            most_tasks, most = self._limits(step)
            if most is None:
                most = self._size(step).most
            if most_tasks is not None and self._by_step.get(step, 0) >= most_tasks:
                held.append(step)
                continue
            queue = self.waiting[step]
            chunk = [queue.popleft()
                     for _ in range(batch_size(len(queue), window - self.running, most))]
            if queue:
                self._turns.append(step)
            else:
                del self.waiting[step]
            self.running += 1
            self._by_step[step] = self._by_step.get(step, 0) + 1
            self._spawn(self._run_one(step, chunk))
        self._turns.extend(held)

    def _size(self, step: str) -> BatchSize:
        size = self.sizes.get(step)
        if size is None:
            size = self.sizes[step] = BatchSize()
        return size

    async def _run_one(self, step: str, chunk: list[T]) -> None:
        started = self._now()
        try:
            await self._run(step, chunk)
            self._size(step).timed(len(chunk), self._now() - started)
        finally:
            self.running -= 1
            self._by_step[step] -= 1
            self.pump()
