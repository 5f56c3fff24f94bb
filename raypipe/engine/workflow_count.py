"""Workflows counted across dispatcher shards, where no shard sees a trace whole.

Each shard keeps its part of each trace it saw (deliveries accepted and finished:
:class:`~raypipe.engine.outcomes.TraceCounts`) and tells the trace's home shard (the shard of
the trace id) which traces have no delivery in flight here. The home reads every shard's
parts twice, the second read begun once the first has ended; a trace is finished when both
reads saw the same parts and, added up, as many deliveries finished as were accepted. The home
counts it once and the shards forget their parts.

Why two equal reads are enough (Mattern's four-counter method): a delivery is accepted before
the delivery that caused it finishes (a handler's enqueue, and the delivery a state or stream
trigger makes of its write, are accepted before the handler returns), so while any delivery
of a trace is in flight, more were accepted than finished. A shard's counts only grow within
one life, and a part names the life it was counted in (a restart starts again from the
deliveries it recovers, and a read across two lives is no evidence). The first read saw no
more than each shard held when it ended, the second no less than each held when it began:
equal reads mean the counts stood still in between, so at that moment the trace's true totals
were those read, balanced, and nothing of it was in flight.

Ray-free: the dispatcher runs :meth:`WorkflowCount.tick` every :data:`COUNT_SECONDS` with the
other shards' dispatchers as :class:`Shard` peers (itself in its own place).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol

from raypipe.engine.outcomes import Outcomes, TraceCounts, TraceOutcome

__all__ = ["COUNT_SECONDS", "Part", "Shard", "WorkflowCount"]

#: How often each shard tells the homes of its traces, and a home reads the shards.
COUNT_SECONDS = 1.0

#: A shard's part of a trace on the wire: (life, accepted, finished, dead, flow, at).
Part = tuple[str, int, int, bool, str, float]


class Shard(Protocol):
    async def trace_parts(self, trace_ids: list[str]) -> dict[str, Part]: ...
    async def forget_traces(self, seen: dict[str, Part]) -> None: ...
    async def watch_traces(self, trace_ids: list[str]) -> None: ...


class WorkflowCount:
    """One shard's side: its parts (in ``outcomes``), and as home of some traces, the count."""

    def __init__(self, outcomes: Outcomes, shard: int, home: Callable[[str], int], life: str,
                 finished: Callable[[str, TraceOutcome], None]) -> None:
        """``home(trace_id)``: the shard that counts a trace (:func:`raypipe.shards.shard_of`
        its id); ``life`` names this shard's life (its counts start again with the next);
        ``finished(flow, outcome)`` is told of each workflow counted here."""
        self.outcomes, self.shard, self.home, self.life = outcomes, shard, home, life
        self._finished = finished
        #: Traces homed here that some shard said it holds, since the last tick.
        self._watched: set[str] = set()

    def _part(self, counts: TraceCounts) -> Part:
        return (self.life, counts.accepted, counts.finished, counts.dead, counts.flow,
                counts.at)

    # --- what the other shards (and this one) ask ---------------------------------------------
    async def trace_parts(self, trace_ids: list[str]) -> dict[str, Part]:
        parts = self.outcomes.parts
        return {t: self._part(parts[t]) for t in trace_ids if t in parts}

    async def forget_traces(self, seen: dict[str, Part]) -> None:
        """These traces were counted as their parts were then: each goes unless it moved on
        since (a replay ran more of it: it is counted again once that is done)."""
        parts = self.outcomes.parts
        self.outcomes.forget_parts([t for t, part in seen.items()
                                    if t in parts and self._part(parts[t]) == tuple(part)])

    async def watch_traces(self, trace_ids: list[str]) -> None:
        self._watched.update(trace_ids)

    # --- the round ----------------------------------------------------------------------------
    async def tick(self, peers: Sequence[Shard]) -> int:
        """Tell each home the traces whose deliveries here all finished; count those homed
        here that finished everywhere. ``peers``: every shard, this one in its place. Returns
        how many were counted."""
        homes: dict[int, list[str]] = {}
        for trace_id, part in self.outcomes.parts.items():
            # A delivery finishes in the shard that accepted it: while one here is in
            # flight, the trace is not done, and nobody need read it.
            if part.accepted == part.finished:
                homes.setdefault(self.home(trace_id), []).append(trace_id)
        await asyncio.gather(*(peers[home].watch_traces(ids) for home, ids in homes.items()
                               if home != self.shard))
        watched = sorted(self._watched.union(homes.get(self.shard, ())))
        self._watched.clear()
        if not watched:
            return 0
        first = await self._read(peers, watched)
        balanced = [t for t in watched if _balanced(t, first)]
        if not balanced:
            return 0
        second = await self._read(peers, balanced)
        done = [t for t in balanced
                if all(a.get(t) == b.get(t) for a, b in zip(first, second, strict=True))]
        if not done:
            return 0
        # Forgotten first: a home that dies between the two loses a count (as a dispatcher's
        # tally loses its last moments when it dies) rather than making one twice.
        await asyncio.gather(*(peer.forget_traces({t: part[t] for t in done if t in part})
                               for peer, part in zip(peers, second, strict=True)))
        for t in done:
            parts = [part[t] for part in second if t in part]
            outcome: TraceOutcome = ("dead_lettered" if any(p[3] for p in parts)
                                     else "completed")
            self.outcomes.workflow_finished(outcome)
            self._finished(max(parts, key=lambda p: p[5])[4], outcome)
        return len(done)

    @staticmethod
    async def _read(peers: Sequence[Shard], trace_ids: list[str]) -> list[dict[str, Part]]:
        answers = await asyncio.gather(*(p.trace_parts(trace_ids) for p in peers))
        # Over Ray a tuple arrives as a list.
        return [{t: tuple(part) for t, part in answer.items()}  # type: ignore[misc]
                for answer in answers]


def _balanced(trace_id: str, parts: list[dict[str, Part]]) -> bool:
    accepted = sum(p[trace_id][1] for p in parts if trace_id in p)
    finished = sum(p[trace_id][2] for p in parts if trace_id in p)
    return accepted > 0 and accepted == finished
