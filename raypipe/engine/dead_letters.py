"""Dead letters: deliveries that failed every attempt, journaled, listed, and replayed under
their own ids (so what their failed attempts applied is not applied again)."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from raypipe.engine.clock import Clock
from raypipe.engine.delivery import Delivery
from raypipe.engine.journal import Journal
from raypipe.engine.outcomes import Outcomes
from raypipe.engine.records import DeadLetter, FailedAttempt
from raypipe.engine.retry import persist

__all__ = ["DeadLetters"]

log = logging.getLogger("raypipe.engine")


class DeadLetters:
    def __init__(self, journal: Journal, clock: Clock, outcomes: Outcomes) -> None:
        self.journal = journal
        self.clock = clock
        self.outcomes = outcomes
        self.entries: dict[str, DeadLetter] = {}

    async def load(self) -> None:
        """Read back the journal's dead letters (once per engine life)."""
        for entry in await persist(self.journal.dead_letters, "reading dead letters",
                                   self.clock):
            self.entries[entry.id] = entry

    async def add(self, d: Delivery, errors: list[FailedAttempt]) -> None:
        entry = DeadLetter(d.id, d.step, d, errors, d.trace_id, self.clock.time())
        await persist(lambda: self.journal.dead(entry), "writing a dead letter", self.clock)
        self.entries[d.id] = entry
        self.outcomes.count(d.step, "dead_lettered")
        log.error("step %r failed %d time(s); delivery %s moved to the dead-letter queue "
                  "(`raypipe dlq show %s`)", d.step, len(errors), d.id, d.id)

    async def revive(self, entry_ids: Sequence[str] | None, next_seq: Callable[[], int]
                     ) -> list[tuple[Delivery, list[FailedAttempt]]]:
        """Take dead letters out to run again (``None``: all of them): each as its delivery
        with a fresh set of attempts numbered on from the last, and the errors so far.
        Unknown ids are skipped."""
        ids = list(self.entries) if entry_ids is None else list(entry_ids)
        out = []
        for entry_id in ids:
            entry = self.entries.pop(entry_id, None)
            if entry is None:
                continue
            old = entry.delivery
            d = dataclasses.replace(old, attempt=old.attempt + 1, seq=next_seq())
            await persist(functools.partial(self.journal.revived, entry_id, d),
                          "reviving a dead letter", self.clock)
            log.info("replaying dead letter %s", entry_id)
            self.outcomes.count(d.step, "replayed")
            out.append((d, list(entry.errors)))
        return out

    def public(self) -> list[dict[str, Any]]:
        return [e.public() for e in self.entries.values()]

    def public_one(self, entry_id: str) -> dict[str, Any] | None:
        entry = self.entries.get(entry_id)
        return entry.public() if entry else None

    def __len__(self) -> int:
        return len(self.entries)
