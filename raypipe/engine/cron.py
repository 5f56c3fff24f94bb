"""Cron schedules: one loop per cron trigger, firing each tick once. A tick missed while the
engine was down (a restart, a stopped cluster) fires once on start, however many were
missed; ticks missed while the loop ran late are skipped, not fired in a burst."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from raypipe.engine.clock import Clock
from raypipe.schedules import missed_tick, next_fire

__all__ = ["run_schedule"]


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
