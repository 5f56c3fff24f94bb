"""Cron schedules: one loop per cron trigger, firing each tick once. A tick missed while the
engine was down (a restart, a stopped cluster) fires once on start, however many were
missed; ticks missed while the loop ran late are skipped, not fired in a burst."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from raypipe.app import App
from raypipe.engine.clock import Clock
from raypipe.engine.delivery import Delivery
from raypipe.engine.journal import Journal
from raypipe.engine.retry import persist
from raypipe.messages import new_id
from raypipe.schedules import missed_tick, next_fire
from raypipe.trigger_kind import TriggerKind
from raypipe.trigger_kinds.cron import CronTrigger

__all__ = ["CronSchedules", "run_schedule", "tick_delivery", "tick_of"]


async def run_schedule(expression: str, last_tick: float | None, clock: Clock,
                       fire: Callable[[float], Awaitable[None]]) -> None:
    """Call ``fire(due)`` for every tick of ``expression`` (due in epoch seconds) from now on,
    after catching up the one missed since ``last_tick``. Runs until cancelled."""
    now = clock.time()
    missed = None if last_tick is None else missed_tick(expression, last_tick, now)
    if missed is not None:
        await fire(missed)
    due = next_fire(expression, now)
    while True:
        await clock.sleep(max(0.0, due - clock.time()))
        await fire(due)
        due = next_fire(expression, max(due, clock.time()))


_TICK_PREFIX = "cron:"


def tick_delivery(step: str, due: float) -> Delivery:
    """A tick's delivery, named after the step and the tick's due time (whole seconds)."""
    return Delivery(f"{_TICK_PREFIX}{step}:{due:.0f}", step, TriggerKind.CRON, None, new_id())


def tick_of(delivery: Delivery) -> tuple[str, float] | None:
    """The step and due time of a tick's delivery (``None`` for any other delivery): a
    journal records a tick as fired in the same write that accepts its delivery, so a shard
    that takes the schedules over after their owner died fires no accepted tick again."""
    if delivery.kind != TriggerKind.CRON or not delivery.id.startswith(_TICK_PREFIX):
        return None
    step, _, due = delivery.id[len(_TICK_PREFIX):].rpartition(":")
    return step, float(due)


class CronSchedules:
    """The app's schedules: one loop per cron trigger, each tick handed to the engine as a
    delivery named after it (one firing is one delivery, however it is retried)."""

    def __init__(self, journal: Journal, clock: Clock,
                 invoke: Callable[[Sequence[Delivery]], Awaitable[None]],
                 spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]) -> None:
        self.journal = journal
        self.clock = clock
        self._invoke = invoke
        self._spawn = spawn
        self._loops: list[asyncio.Task[None]] = []

    def start(self, app: App) -> None:
        """Run ``app``'s schedules, in place of those running."""
        self.stop()
        self._loops = [self._spawn(self._run(step.name, tr.expression))
                       for step in app.with_trigger(CronTrigger)
                       for tr in step.triggers_of(CronTrigger)]

    def stop(self) -> None:
        """Stop the schedules (another shard took them over); a tick being fired finishes."""
        for task in self._loops:
            task.cancel()
        self._loops = []

    async def _run(self, step: str, expression: str) -> None:
        last = await persist(lambda: self.journal.last_tick(step), "reading cron ticks",
                             self.clock)

        async def fire(due: float) -> None:
            await self._invoke([tick_delivery(step, due)])
            await persist(lambda: self.journal.ticked(step, due), "recording a cron tick",
                          self.clock)

        await run_schedule(expression, last, self.clock, fire)
