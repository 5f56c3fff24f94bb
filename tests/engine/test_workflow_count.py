"""Workflows counted across shards (:mod:`raypipe.engine.workflow_count`), without Ray: three
shards' tallies, each a :class:`WorkflowCount`, reading each other in process. The reads are
interleaved with deliveries where a single read would count a workflow early."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from raypipe.engine.outcomes import Outcomes, TraceOutcome
from raypipe.engine.workflow_count import Part, WorkflowCount

K = 3
HOME = 2  # every trace's home here: the reads go 0, 1, 2


class _Shards:
    def __init__(self) -> None:
        self.outcomes = [Outcomes(traces=False) for _ in range(K)]
        self.finished: list[tuple[str, TraceOutcome]] = []
        self.counts = [self._count(i, f"life-{i}") for i in range(K)]
        #: Runs after shard i's parts are read (once), keyed by i.
        self.after_read: dict[int, Callable[[], None]] = {}

    def _count(self, i: int, life: str) -> WorkflowCount:
        return WorkflowCount(self.outcomes[i], i, lambda _: HOME, life,
                             lambda flow, outcome: self.finished.append((flow, outcome)))

    def restart(self, i: int) -> None:
        """Shard i's new life: its counts start again (here from nothing recovered)."""
        self.outcomes[i] = Outcomes(traces=False)
        self.counts[i] = self._count(i, f"life-{i}-again")

    def peers(self) -> list[Any]:
        return [_Read(self, i) for i in range(K)]

    def start(self, shard: int, delivery: str, trace: str = "t") -> None:
        self.outcomes[shard].started(delivery, "step", trace, 0.0)

    def finish(self, shard: int, delivery: str, trace: str = "t", dead: bool = False,
               flow: str = "f", at: float = 1.0) -> None:
        self.outcomes[shard].finished(delivery, trace, dead, flow, at)

    async def tick(self) -> int:
        peers = self.peers()
        counted = 0
        for i in range(K):
            counted += await self.counts[i].tick(peers)
        return counted

    def workflows(self) -> dict[str, int]:
        star = self.outcomes[HOME].snapshot().get("*", {})
        return {k: v for k, v in star.items() if k.startswith("workflows_")}


class _Read:
    def __init__(self, shards: _Shards, i: int) -> None:
        self.shards, self.i = shards, i

    async def trace_parts(self, trace_ids: list[str]) -> dict[str, Part]:
        parts = await self.shards.counts[self.i].trace_parts(trace_ids)
        hook = self.shards.after_read.pop(self.i, None)
        if hook is not None:
            hook()
        return parts

    async def forget_traces(self, seen: dict[str, Part]) -> None:
        await self.shards.counts[self.i].forget_traces(seen)

    async def watch_traces(self, trace_ids: list[str]) -> None:
        await self.shards.counts[self.i].watch_traces(trace_ids)


async def test_a_workflow_over_three_shards_is_counted_once_when_its_last_delivery_ends() -> None:
    s = _Shards()
    s.start(0, "root")
    s.start(1, "a")  # caused by root: accepted before root finishes
    s.start(2, "b")
    s.finish(0, "root")
    assert await s.tick() == 0
    s.finish(1, "a", flow="first", at=5.0)
    assert await s.tick() == 0  # b still runs
    s.finish(2, "b", flow="last", at=9.0)
    assert await s.tick() == 1
    assert s.workflows() == {"workflows_completed": 1}
    assert s.finished == [("last", "completed")]  # the flow of the delivery that ended last
    assert all(not o.parts for o in s.outcomes)  # every shard forgot its part
    assert await s.tick() == 0
    assert s.workflows() == {"workflows_completed": 1}


async def test_a_delivery_accepted_between_two_shards_reads_keeps_the_workflow_open() -> None:
    """The first read sees shard 0 before the child is accepted there and shard 1 after its
    parent finished: balanced, one accepted and one finished. The second read sees the child."""
    s = _Shards()
    s.start(1, "parent")

    def child_then_parent() -> None:
        s.start(0, "child")
        s.finish(1, "parent")

    s.after_read[0] = child_then_parent
    first = await s.counts[HOME]._read(s.peers(), ["t"])
    assert sum(p["t"][1] for p in first if "t" in p) == 1  # what a single read would trust
    assert sum(p["t"][2] for p in first if "t" in p) == 1
    s.start(1, "parent-2", trace="u")
    s.after_read[0] = lambda: (s.start(0, "child-2", trace="u"), s.finish(1, "parent-2", "u"))
    assert await s.tick() == 0
    assert s.workflows() == {}
    s.finish(0, "child")
    s.finish(0, "child-2", trace="u")
    assert await s.tick() == 2
    assert s.workflows() == {"workflows_completed": 2}


async def test_a_shard_restarted_between_the_reads_is_no_evidence() -> None:
    s = _Shards()
    s.start(0, "a")
    s.finish(0, "a")
    s.start(1, "b")
    s.finish(1, "b")
    # Between the reads shard 1 restarts and recovers b's retry as in flight... the second
    # read sees another life: nothing is counted on that read.
    s.after_read[2] = lambda: (s.restart(1), s.start(1, "b"))
    assert await s.tick() == 0
    s.finish(1, "b")
    assert await s.tick() == 1
    assert s.workflows() == {"workflows_completed": 1}


async def test_a_dead_letter_marks_the_workflow_and_a_replay_counts_it_again() -> None:
    s = _Shards()
    s.start(0, "a")
    s.start(1, "b")
    s.finish(0, "a")
    s.finish(1, "b", dead=True)
    assert await s.tick() == 1
    assert s.workflows() == {"workflows_dead_lettered": 1}
    s.start(1, "b")  # the dead letter replayed: the trace runs again
    assert await s.tick() == 0
    s.finish(1, "b")
    assert await s.tick() == 1
    assert s.workflows() == {"workflows_dead_lettered": 1, "workflows_completed": 1}


@pytest.mark.parametrize("traces", [50])
async def test_many_workflows_each_counted_once_at_their_homes(traces: int) -> None:
    outcomes = [Outcomes(traces=False) for _ in range(K)]
    done: list[TraceOutcome] = []
    counts = [WorkflowCount(outcomes[i], i, lambda t: int(t[1:]) % K, f"l{i}",
                            lambda _, o: done.append(o)) for i in range(K)]
    for t in range(traces):
        for d in range(4):
            outcomes[(t + d) % K].started(f"t{t}-{d}", "s", f"t{t}", 0.0)
    for t in range(traces):
        for d in range(4):
            outcomes[(t + d) % K].finished(f"t{t}-{d}", f"t{t}", False, "f", 0.0)
    for _ in range(2):  # the first round tells the homes, the second counts
        for c in counts:
            await c.tick(counts)
    assert len(done) == traces
    assert sum(o.snapshot().get("*", {}).get("workflows_completed", 0)
               for o in outcomes) == traces
    assert all(not o.parts for o in outcomes)
