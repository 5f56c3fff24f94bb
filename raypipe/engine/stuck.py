"""The watch on attempts that run too long: a warning, once per attempt, past
``stuck_after`` seconds (the attempt is not stopped: that is ``visibility_timeout``'s job)."""

from __future__ import annotations

import logging

from raypipe.engine.clock import Clock
from raypipe.engine.records import RunningAttempt

__all__ = ["StuckWatch"]

log = logging.getLogger("raypipe.engine")


class StuckWatch:
    def __init__(self, clock: Clock, stuck_after: float) -> None:
        self.clock = clock
        #: Seconds an attempt may run before a warning says so.
        self.stuck_after = stuck_after
        #: Attempts running now, by delivery id.
        self.running: dict[str, RunningAttempt] = {}

    def check(self) -> list[str]:
        """Warn of attempts running past ``stuck_after`` seconds not warned of yet; returns
        their delivery ids."""
        now = self.clock.monotonic()
        stuck = []
        for delivery_id, run in self.running.items():
            if not run.warned and now - run.started >= self.stuck_after:
                run.warned = True
                stuck.append(delivery_id)
                log.warning("step %r: delivery %s has run attempt %d for %.0fs (past "
                            "stuck_after_seconds=%g); it has no visibility_timeout to stop it",
                            run.step, delivery_id, run.attempt, now - run.started,
                            self.stuck_after)
        return stuck

    async def run(self) -> None:
        """Check every so often, until cancelled."""
        while True:
            await self.clock.sleep(max(0.5, min(30.0, self.stuck_after / 4)))
            self.check()
