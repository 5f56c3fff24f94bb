"""The delivery engine on a fake clock: no Ray, no wall-clock waits. Retry policy and backoff,
dead letters and replay, effect lifetime, journal outages, FIFO order across restarts, worker
crashes, stuck attempts, cron catch-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from raypipe import QueueConfig, StepConfig, cron, queue
from raypipe import triggers as t
from raypipe.app import App
from raypipe.engine import AttemptError, DeliveryEngine, FakeClock, Journal
from raypipe.engine.delivery import Delivery
from raypipe.engine.records import DeadLetter
from raypipe.engine.retry import backoff_seconds
from raypipe.messages import Message
from raypipe.settings import Settings
from raypipe.steps import Step

DAY = 86_400.0


def make_app(*configs: StepConfig) -> App:
    return App(Path("."), Settings(name="engine-test"),
               {c.name: Step(c, None, f"{c.name}.py", c.name) for c in configs})


def q(name: str, topic: str, **cfg: Any) -> StepConfig:
    return StepConfig(name=name, triggers=[queue(topic, config=QueueConfig(**cfg))],
                      flows=["f"])


Behaviour = Callable[[Delivery, bool], Awaitable[None]]


class Executor:
    """Runs attempts in-process: ``behaviour[step](delivery, alone)``; records every run."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, int, bool]] = []
        self.behaviour: dict[str, Behaviour] = {}

    async def run(self, step: Step, d: Delivery, cfg: t.QueueConfig, *, alone: bool) -> None:
        self.runs.append((d.id, d.attempt, alone))
        fn = self.behaviour.get(step.name)
        if fn is not None:
            await fn(d, alone)


class DurableJournal(Journal):
    """A journal that outlives its engine (as Redis does), and can be made to fail."""

    def __init__(self) -> None:
        self.epoch = 0
        self.pending_: dict[str, Delivery] = {}
        self.dead_: dict[str, DeadLetter] = {}
        self.caused_: dict[str, set[str]] = {}
        self.ticks: dict[str, float] = {}
        self.down = False
        self.failures = 0
        self.settled_ids: list[str] = []

    def _check(self) -> None:
        if self.down:
            self.failures += 1
            raise ConnectionError("journal backend down")

    async def start(self) -> int:
        self._check()
        self.epoch += 1
        return self.epoch

    async def accepted(self, deliveries: Sequence[Delivery],
                       caused: Sequence[tuple[str, str]]) -> None:
        self._check()
        for d in deliveries:
            self.pending_[d.id] = d
        for parent, cid in caused:
            self.caused_.setdefault(parent, set()).add(cid)

    async def settled(self, delivery_ids: Sequence[str]) -> None:
        self._check()
        for i in delivery_ids:
            self.pending_.pop(i, None)
            self.caused_.pop(i, None)
        self.settled_ids += delivery_ids

    async def dead(self, entry: DeadLetter) -> None:
        self._check()
        self.dead_[entry.id] = entry
        self.pending_.pop(entry.delivery.id, None)

    async def revived(self, entry_id: str, delivery: Delivery) -> None:
        self._check()
        self.dead_.pop(entry_id, None)
        self.pending_[delivery.id] = delivery

    async def pending(self) -> list[Delivery]:
        self._check()
        return sorted(self.pending_.values(), key=lambda d: d.seq)

    async def dead_letters(self) -> list[DeadLetter]:
        self._check()
        return list(self.dead_.values())

    async def caused(self, parents: Sequence[str]) -> list[tuple[str, str]]:
        self._check()
        return [(p, c) for p in parents for c in self.caused_.get(p, ())]

    async def ticked(self, step: str, due: float) -> None:
        self._check()
        self.ticks[step] = due

    async def last_tick(self, step: str) -> float | None:
        self._check()
        return self.ticks.get(step)


class Released:
    """Hooks that remember which deliveries' effects were released."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def attempt_started(self, step: Step, d: Delivery) -> None:
        pass

    def attempt_finished(self, *args: Any) -> None:
        pass

    def workflow_finished(self, flow: str, outcome: str) -> None:
        pass

    def released(self, delivery_ids: list[str]) -> None:
        self.ids += delivery_ids


class Harness:
    def __init__(self, app: App, journal: Journal | None = None, **kw: Any) -> None:
        self.clock = FakeClock()
        self.executor = Executor()
        self.journal = journal or DurableJournal()
        self.hooks = Released()
        self.engine = DeliveryEngine(app, self.journal, self.executor, clock=self.clock,
                                     hooks=self.hooks, **kw)

    async def send(self, topic: str, data: Any, **kw: Any) -> Message:
        msg = Message(topic, data, "trace", **kw)
        await self.engine.publish([msg])
        return msg

    async def run_for(self, seconds: float) -> None:
        await self.clock.advance(seconds)

    def stats(self) -> dict[str, Any]:
        return self.engine.stats()


@pytest.fixture
async def closing() -> Any:
    engines: list[DeliveryEngine] = []
    yield engines.append
    for e in engines:
        for task in list(e._tasks):
            task.cancel()
        await asyncio.gather(*e._tasks, return_exceptions=True)


# --- backoff ------------------------------------------------------------------------------------
def test_exponential_backoff_doubles_up_to_its_cap() -> None:
    cfg = QueueConfig(backoff_delay_ms=1000, max_backoff_ms=5000)
    mid = [backoff_seconds(cfg, n, jitter=lambda a, b: 1.0) for n in range(1, 6)]
    assert mid == [1.0, 2.0, 4.0, 5.0, 5.0]
    # Jitter never takes it past the cap; a huge attempt number does not overflow.
    assert backoff_seconds(cfg, 10_000, jitter=lambda a, b: b) == 5.0
    assert backoff_seconds(cfg, 1, jitter=lambda a, b: a) == 0.8


def test_fixed_backoff_and_default_cap() -> None:
    cfg = QueueConfig(backoff="fixed", backoff_delay_ms=250)
    assert {backoff_seconds(cfg, n, jitter=lambda a, b: 1.0) for n in (1, 5, 50)} == {0.25}
    assert QueueConfig().max_backoff_ms == 60_000


async def test_retries_wait_their_backoff_on_the_clock(closing: Any) -> None:
    h = Harness(make_app(q("s", "t", max_retries=3, backoff_delay_ms=1000)))
    closing(h.engine)
    started: list[float] = []

    async def flaky(d: Delivery, alone: bool) -> None:
        started.append(h.clock.monotonic())
        if d.attempt < 3:
            raise ValueError(f"attempt {d.attempt}")

    h.executor.behaviour["s"] = flaky
    await h.send("t", {})
    await h.run_for(0)
    assert started == [0.0]
    await h.run_for(0.7)  # before the first backoff's shortest jitter (0.8 s)
    assert len(started) == 1
    await h.run_for(10)
    assert len(started) == 3
    assert 0.8 <= started[1] <= 1.2 and 0.8 * 2 <= started[2] - started[1] <= 1.2 * 2
    s = h.stats()
    assert s["in_flight"] == 0 and s["steps"]["s"]["retries"] == 2
    assert s["steps"]["s"]["done"] == 1 and s["steps"]["s"]["attempts"] == 3


# --- dead letters, replay and effect lifetime --------------------------------------------------
async def test_a_replay_a_week_later_runs_under_the_same_delivery(closing: Any) -> None:
    """Its effects are owned by the same delivery id, never released before it settles, so
    the state and stream actors answer its repeats with their first results."""
    h = Harness(make_app(q("s", "t", max_retries=1, backoff_delay_ms=10)))
    closing(h.engine)
    fixed = False

    async def fails_until_fixed(d: Delivery, alone: bool) -> None:
        if not fixed:
            raise RuntimeError("not fixed")

    h.executor.behaviour["s"] = fails_until_fixed
    await h.send("t", {"n": 1})
    await h.run_for(5)
    [entry] = h.engine.public_dead_letters()
    assert [e["attempt"] for e in entry["errors"]] == [1, 2]
    assert h.hooks.ids == []  # dead-lettered: its effects are kept
    await h.run_for(7 * DAY)
    assert h.hooks.ids == []
    fixed = True
    assert await h.engine.replay([entry["id"]]) == [entry["id"]]
    await h.run_for(1)
    ids = {run[0] for run in h.executor.runs}
    assert ids == {entry["id"]}  # every run, replay included, under one delivery id
    assert [run[1] for run in h.executor.runs] == [1, 2, 3]
    assert h.hooks.ids == [entry["id"]]  # released once it settled, not before
    assert h.stats()["in_flight"] == 0 and h.stats()["dead_letters"] == 0
    assert await h.engine.replay([entry["id"]]) == []


async def test_a_replay_that_fails_again_keeps_every_attempt(closing: Any) -> None:
    h = Harness(make_app(q("s", "t", max_retries=1, backoff_delay_ms=10)))
    closing(h.engine)

    async def fails(d: Delivery, alone: bool) -> None:
        raise RuntimeError(f"attempt {d.attempt}")

    h.executor.behaviour["s"] = fails
    await h.send("t", {})
    await h.run_for(5)
    await h.engine.replay()
    await h.run_for(5)
    [entry] = h.engine.public_dead_letters()
    assert [e["attempt"] for e in entry["errors"]] == [1, 2, 3, 4]
    assert h.hooks.ids == []


async def test_a_message_repeated_by_its_running_parent_is_accepted_once(closing: Any) -> None:
    h = Harness(make_app(q("s", "t")))
    closing(h.engine)
    first = await h.send("t", {}, parent="parent-1", id="m1")
    await h.send("t", {}, parent="parent-1", id="m1")
    await h.run_for(1)
    assert len(h.executor.runs) == 1
    assert h.stats()["steps"]["*"]["duplicates"] == 1
    assert first.id == "m1"


async def test_a_recovered_parent_does_not_cause_its_messages_twice(closing: Any) -> None:
    """After a restart the engine learns from the journal what each pending delivery caused,
    even when those deliveries already finished."""
    journal = DurableJournal()
    app = make_app(q("s", "t"))
    parent = Delivery("parent-1", "s", "queue", {}, "trace", topic="t", seq=1)

    def enqueues(h: Harness) -> Behaviour:
        async def run(d: Delivery, alone: bool) -> None:
            if d.id == "parent-1":
                await h.engine.publish([Message("t", {}, "trace", id="m1", parent="parent-1")])
        return run

    await journal.accepted([parent], [])  # accepted by an earlier life, never settled
    h1 = Harness(app, journal)
    closing(h1.engine)
    h1.executor.behaviour["s"] = enqueues(h1)
    await h1.engine.start()
    await h1.run_for(1)
    assert [r[0] for r in h1.executor.runs] == ["parent-1", "m1>s"]
    assert journal.pending_ == {} and journal.caused_ == {}  # settled, with what it caused

    # As if this life had died after the child settled and before the parent did.
    journal.pending_["parent-1"] = parent
    journal.caused_["parent-1"] = {"m1"}
    h2 = Harness(app, journal)
    closing(h2.engine)
    h2.executor.behaviour["s"] = enqueues(h2)
    await h2.engine.start()
    await h2.run_for(1)
    assert [r[0] for r in h2.executor.runs] == ["parent-1"]  # m1 is not delivered again
    assert h2.stats()["steps"]["*"]["duplicates"] == 1


# --- journal outages ----------------------------------------------------------------------------
async def test_a_journal_outage_delays_and_strands_nothing(closing: Any, caplog: Any) -> None:
    h = Harness(make_app(q("s", "t")))
    closing(h.engine)
    journal = h.journal
    assert isinstance(journal, DurableJournal)
    await h.engine.start()
    gate = asyncio.Event()

    async def waits(d: Delivery, alone: bool) -> None:
        await gate.wait()

    h.executor.behaviour["s"] = waits
    for i in range(50):
        await h.send("t", {"i": i})
    await h.run_for(1)
    journal.down = True
    gate.set()
    with caplog.at_level(logging.WARNING, "raypipe.engine"):
        await h.run_for(30)
    assert journal.failures > 5 and h.stats()["in_flight"] == 50
    assert "retrying until the backend answers" in caplog.text
    journal.down = False
    await h.run_for(5)
    assert h.stats()["in_flight"] == 0 and journal.pending_ == {}
    assert h.stats()["steps"]["s"]["done"] == 50


async def test_publishing_during_an_outage_waits_for_the_journal(closing: Any) -> None:
    h = Harness(make_app(q("s", "t")))
    closing(h.engine)
    journal = h.journal
    assert isinstance(journal, DurableJournal)
    await h.engine.start()
    journal.down = True
    sending = asyncio.ensure_future(h.send("t", {}))
    await h.run_for(10)
    assert not sending.done() and h.executor.runs == []  # not accepted: not journaled yet
    journal.down = False
    await h.run_for(3)
    assert sending.done() and len(h.executor.runs) == 1


# --- FIFO ---------------------------------------------------------------------------------------
async def test_fifo_groups_resume_in_order_after_a_restart(closing: Any) -> None:
    journal = DurableJournal()
    app = make_app(q("f", "t", type="fifo", backoff_delay_ms=10))
    h1 = Harness(app, journal)
    closing(h1.engine)
    order: list[int] = []
    block = asyncio.Event()

    async def record(d: Delivery, alone: bool) -> None:
        if d.payload["i"] == 3:
            await block.wait()  # the engine dies while this one runs
        order.append(d.payload["i"])

    h1.executor.behaviour["f"] = record
    for i in range(8):
        await h1.send("t", {"i": i}, group_id="g")
        await h1.send("t", {"i": 100 + i}, group_id="other")
    await h1.run_for(1)
    assert [i for i in order if i < 100] == [0, 1, 2]
    # The engine's process dies: its coroutines are gone, the journal stays.
    for task in list(h1.engine._tasks):
        task.cancel()
    await asyncio.gather(*h1.engine._tasks, return_exceptions=True)

    h2 = Harness(app, journal)
    closing(h2.engine)
    order.clear()
    block.set()
    h2.executor.behaviour["f"] = record
    await h2.engine.start()
    await h2.send("t", {"i": 8}, group_id="g")
    await h2.run_for(1)
    assert [i for i in order if i < 100] == [3, 4, 5, 6, 7, 8]
    assert h2.stats()["in_flight"] == 0


async def test_a_fifo_group_survives_a_journal_outage_in_order(closing: Any) -> None:
    h = Harness(make_app(q("f", "t", type="fifo")))
    closing(h.engine)
    journal = h.journal
    assert isinstance(journal, DurableJournal)
    order: list[int] = []

    async def record(d: Delivery, alone: bool) -> None:
        order.append(d.payload["i"])
        if d.payload["i"] == 10:
            journal.down = True  # its settle fails, and the next ones' until it is back

    h.executor.behaviour["f"] = record
    for i in range(40):
        await h.send("t", {"i": i}, group_id="g")
    await h.run_for(20)
    assert order == list(range(11))
    journal.down = False
    await h.run_for(5)
    await h.send("t", {"i": 40}, group_id="g")  # the group takes new messages again
    await h.run_for(5)
    assert order == list(range(41)) and h.stats()["in_flight"] == 0


# --- crashes, stuck attempts --------------------------------------------------------------------
async def test_a_crash_is_one_counted_attempt_and_its_retry_runs_alone(closing: Any) -> None:
    h = Harness(make_app(q("s", "t", max_retries=1, backoff_delay_ms=10)))
    closing(h.engine)

    async def crashes(d: Delivery, alone: bool) -> None:
        raise AttemptError("the worker process died during the attempt", "", "crash")

    h.executor.behaviour["s"] = crashes
    await h.send("t", {})
    await h.run_for(5)
    assert [(r[1], r[2]) for r in h.executor.runs] == [(1, False), (2, True)]
    s = h.stats()["steps"]["s"]
    assert s["crashes"] == 2 and s["failed_attempts"] == 2 and s["dead_lettered"] == 1
    [entry] = h.engine.public_dead_letters()
    assert {e["cause"] for e in entry["errors"]} == {"crash"}
    assert "worker process died" in entry["errors"][0]["error"]


async def test_a_stuck_attempt_is_reported_once_and_aged(closing: Any, caplog: Any) -> None:
    h = Harness(make_app(q("s", "t")), stuck_after=60)
    closing(h.engine)
    never = asyncio.Event()

    async def hangs(d: Delivery, alone: bool) -> None:
        await never.wait()

    h.executor.behaviour["s"] = hangs
    msg = await h.send("t", {})
    with caplog.at_level(logging.WARNING, "raypipe.engine"):
        await h.run_for(59)
        assert "has run attempt" not in caplog.text
        await h.run_for(30)
        await h.run_for(300)
    assert caplog.text.count("has run attempt") == 1
    assert f"{msg.id}>s" in caplog.text
    assert h.stats()["oldest_in_flight"]["s"] == pytest.approx(389, abs=1)


# --- cron ---------------------------------------------------------------------------------------
async def test_cron_fires_each_tick_once_and_catches_up_one_missed(closing: Any) -> None:
    journal = DurableJournal()
    app = make_app(StepConfig(name="tick", triggers=[cron("* * * * *")]))
    h = Harness(app, journal)
    journal.ticks["tick"] = h.clock.time() - 3600  # an hour of ticks missed while down
    closing(h.engine)
    await h.engine.start()
    await h.run_for(0)
    assert len(h.executor.runs) == 1  # one catch-up, not sixty
    await h.run_for(180)
    assert len(h.executor.runs) == 4
    assert len({r[0] for r in h.executor.runs}) == 4
    assert journal.ticks["tick"] <= h.clock.time()


async def test_references_are_in_use_while_a_delivery_naming_them_is_open(closing: Any) -> None:
    """The object keeper's sweep asks which references in-flight deliveries name; each
    payload is read once, and a delivery that finished names nothing any more."""
    from raypipe.refs import REF_MARK

    h = Harness(make_app(q("s", "t")))
    closing(h.engine)
    release = asyncio.Event()

    async def holds(d: Delivery, alone: bool) -> None:
        await release.wait()

    h.executor.behaviour["s"] = holds

    def ref(ref_id: str) -> dict[str, Any]:
        return {REF_MARK: "ref", "id": ref_id}

    await h.send("t", {"a": ref("r1"), "more": [{"b": ref("r2")}]})
    await h.send("t", {"plain": 1})
    await h.run_for(0.1)
    ask = {"r1": None, "r2": None, "r3": None}
    assert h.engine.refs_in_use(ask) == {"r1", "r2"}
    assert h.engine.refs_in_use(ask) == {"r1", "r2"}  # from what the first sweep found
    assert h.engine.refs_in_use({"r3": None}) == set()
    release.set()
    await h.run_for(0.1)
    assert h.engine.refs_in_use(ask) == set()
