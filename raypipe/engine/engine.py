"""The delivery engine: intake and deduplication, attempts and their retry policy, FIFO groups,
concurrency limits, dead letters and replay, cron schedules, and the tally of outcomes.

Ray-free: an :class:`~raypipe.engine.attempt.Executor` runs attempts (Ray tasks in the
dispatcher actor, the handler in-process in a test harness), a
:class:`~raypipe.engine.journal.Journal` keeps what must outlive the process, and a
:class:`~raypipe.engine.clock.Clock` tells time (a fake one in tests).

What it guarantees:
- accepted means journaled; every delivery accepted is owned by exactly one coroutine of the
  engine until it is done or dead-lettered, whatever the journal's backend does meanwhile
  (its writes are retried until it answers);
- a message, or a delivery addressed to a step, offered twice while the delivery that caused
  it can still run is accepted once;
- a delivery keeps its id, and so its effects' ids, through its attempts, a recovery and a
  replay: what an earlier run applied is not applied again;
- a FIFO group runs one delivery at a time, in the order accepted, across restarts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import logging
import uuid
from collections import deque
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

from raypipe.app import App
from raypipe.effects import EffectLog
from raypipe.engine.attempt import AttemptError, Executor, describe
from raypipe.engine.clock import Clock, SystemClock
from raypipe.engine.cron import CronSchedules
from raypipe.engine.dead_letters import DeadLetters
from raypipe.engine.delivery import Delivery
from raypipe.engine.hooks import Hooks, NoHooks
from raypipe.engine.journal import Journal
from raypipe.engine.lease import Lease, hold
from raypipe.engine.loopbatch import LoopBatcher, Outcome
from raypipe.engine.once import Once
from raypipe.engine.outcomes import Outcomes
from raypipe.engine.records import FailedAttempt, RunningAttempt
from raypipe.engine.retry import backoff_seconds, persist
from raypipe.engine.stuck import StuckWatch
from raypipe.messages import Message
from raypipe.refs import ref_ids_in
from raypipe.steps import Step
from raypipe.trigger_kind import TriggerKind
from raypipe.trigger_kinds.queue import QueueConfig

__all__ = ["DeliveryEngine", "Hooks"]

log = logging.getLogger("raypipe.engine")

_DEFAULT_QUEUE = QueueConfig()

#: Deliveries a life of the engine can number before its sequence would reach the next life's.
_SEQ_PER_EPOCH = 10**12


def queue_config(step: Step, d: Delivery) -> QueueConfig:
    if d.kind == TriggerKind.QUEUE and d.topic:
        return step.queue_trigger(d.topic).config
    return _DEFAULT_QUEUE


class DeliveryEngine:
    def __init__(self, app: App, journal: Journal, executor: Executor, *,
                 clock: Clock | None = None, hooks: Hooks | None = None,
                 outcomes: Outcomes | None = None, stuck_after: float = 300.0,
                 cron_lease: Lease | None = None) -> None:
        """``cron_lease``: the app runs several dispatcher shards, and this one runs the cron
        schedules only while it holds the lease (``None``: it always does)."""
        self.app = app
        self.journal = journal
        self.executor = executor
        self.clock: Clock = clock or SystemClock()
        self.hooks: Hooks = hooks or NoHooks()
        self.outcomes = outcomes or Outcomes()
        self.dead_letters = DeadLetters(journal, self.clock, self.outcomes)
        self.stuck = StuckWatch(self.clock, stuck_after)
        self.crons = CronSchedules(journal, self.clock, self.invoke, self.spawn)
        self._cron_lease = cron_lease
        self._runs_crons = cron_lease is None
        #: Message and delivery ids accepted, owned by the delivery that caused them.
        self._seen = EffectLog()
        #: Errors of the runs before a replay, so a dead letter shows every attempt.
        self._history: dict[str, list[FailedAttempt]] = {}
        #: Attempts running now (the stuck watch's table).
        self.running = self.stuck.running
        self._tasks: set[asyncio.Task[None]] = set()
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._fifo: dict[tuple[str, str], deque[Delivery]] = {}
        #: First attempts ready to run, per (step, topic), started together at the end of
        #: this turn of the loop (one coroutine for all of them, not one each).
        self._ready: dict[tuple[str, str | None], list[Delivery]] = {}
        self._flush_scheduled = False
        #: First attempts that succeeded this turn of the loop, settled together at its end.
        self._to_settle: list[tuple[Step, Delivery]] = []
        self._seq = itertools.count(1)
        self._epoch = 0
        self._settle: LoopBatcher[str, None] = LoopBatcher(self._settle_batch)
        #: Every entry point awaits it: nothing is accepted before recovery.
        self.start = Once(self._recover)
        #: Steps a redeploy removed, while deliveries of theirs may still run.
        self._retired: dict[str, Step] = {}
        #: Deliveries accepted and not yet done or dead-lettered (what references they hold).
        self._open: dict[str, Delivery] = {}
        #: The references each open delivery's payload names, found at the first sweep that
        #: asks (a payload never changes): a sweep every few seconds walked every payload.
        self._refs_named: dict[str, frozenset[str]] = {}

    # --- life -------------------------------------------------------------------------------
    async def _recover(self) -> None:
        """Once per life, before anything is accepted: recover the journal's pending
        deliveries (in the order accepted) and dead letters, and what they caused; start the
        cron schedules and the watch on stuck attempts."""
        self._epoch = await persist(self.journal.start, "starting the journal", self.clock)
        await self.dead_letters.load()
        pending = await persist(self.journal.pending, "reading the journal", self.clock)
        # With several shards, a delivery here may have been caused by one pending in another
        # shard, which may still run again and offer it again.
        owners = ([d.id for d in pending] + list(self.dead_letters.entries)
                  + await persist(self.journal.other_shards_owners,
                                  "reading the other shards' journals", self.clock))
        for parent, cid in await persist(lambda: self.journal.caused(owners),
                                         "reading what deliveries caused", self.clock):
            self._seen.record_id(parent, cid)
        if pending:
            log.info("recovering %d unfinished deliveries", len(pending))
        for d in pending:
            # A call the last life journaled may be retried by its caller: it is these.
            self._seen.record_id(d.parent, d.id)
            if d.message_id:
                self._seen.record_id(d.parent, d.message_id)
            self._accept(d)
        if self._cron_lease is None:
            self.crons.start(self.app)
        else:
            self.spawn(hold(self._cron_lease, f"{self._epoch}:{uuid.uuid4().hex}", self.clock,
                            self._cron_lease_changed))
        self.spawn(self.stuck.run())

    def _cron_lease_changed(self, held: bool) -> None:
        self._runs_crons = held
        if held:
            log.info("this shard runs the cron schedules")
            self.crons.start(self.app)
        else:
            self.crons.stop()

    def replace_app(self, app: App) -> None:
        """A new version of the app: new deliveries and cron schedules follow it; a delivery
        in flight for a step the new version no longer has finishes as the old step."""
        for name, step in self.app.steps.items():
            if name not in app.steps:
                self._retired[name] = step
        for name in app.steps:
            self._retired.pop(name, None)
        self.app = app
        if self._runs_crons:
            self.crons.start(app)

    def _step(self, name: str) -> Step:
        step = self.app.steps.get(name)
        return step if step is not None else self._retired[name]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.journal.close()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("engine task failed", exc_info=task.exception())

    def _next_seq(self) -> int:
        return self._epoch * _SEQ_PER_EPOCH + next(self._seq)

    # --- intake -----------------------------------------------------------------------------
    async def publish(self, messages: Sequence[Message]) -> int:
        """Accept messages: one delivery per subscriber. A message already accepted (its
        enqueue repeated by a retried, recovered or replayed delivery) is ignored. Returns
        the number of deliveries made."""
        await self.start()
        fresh: list[Delivery] = []
        caused: list[tuple[str, str]] = []
        for msg in messages:
            if not self._first_offer(msg.id, msg.parent, caused):
                continue
            fresh += [Delivery(f"{msg.id}>{step.name}", step.name, TriggerKind.QUEUE, msg.data,
                               msg.trace_id, topic=msg.topic, message_id=msg.id,
                               group_id=msg.group_id, parent=msg.parent, seq=self._next_seq())
                      for step in self.app.subscribers(msg.topic)]
        await self._take(fresh, caused)
        return len(fresh)

    async def invoke(self, deliveries: Sequence[Delivery]) -> None:
        """Deliveries addressed to one step each (state, stream and cron triggers)."""
        await self.start()
        fresh: list[Delivery] = []
        caused: list[tuple[str, str]] = []
        for d in deliveries:
            if self._first_offer(d.id, d.parent, caused):
                fresh.append(dataclasses.replace(d, seq=self._next_seq()))
        await self._take(fresh, caused)

    def _first_offer(self, key: str, parent: str | None,
                     caused: list[tuple[str, str]]) -> bool:
        """Whether a message or delivery id is new; if so it is remembered, for as long as
        the delivery that caused it (``parent``) can run, and added to ``caused``."""
        if self._seen.seen(key):
            self.outcomes.count("*", "duplicates")
            return False
        self._seen.record_id(parent, key)
        if parent:
            caused.append((parent, key))
        return True

    async def _take(self, deliveries: list[Delivery], caused: list[tuple[str, str]]) -> None:
        """Journal, then start: accepted means journaled."""
        if deliveries or caused:
            await persist(lambda: self.journal.accepted(deliveries, caused),
                          "journaling accepted deliveries", self.clock)
        for d in deliveries:
            self._accept(d)

    def _accept(self, d: Delivery) -> None:
        step = self._step(d.step)
        self._open[d.id] = d
        self.outcomes.started(d.id, step.name, d.trace_id, self.clock.monotonic())
        cfg = queue_config(step, d)
        if cfg.type == "fifo" and d.group_id is not None:
            key = (step.name, d.group_id)
            group = self._fifo.get(key)
            if group is None:
                group = self._fifo[key] = deque()
                self.spawn(self._drain(step, key, group))
            group.append(d)
        elif (cfg.concurrency is None and cfg.visibility_timeout is None
              and not cfg.delay_seconds and d.id not in self._history):
            ready = self._ready.setdefault((step.name, d.topic), [])
            ready.append(d)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self._start_ready)
        else:
            self.spawn(self._own(step, d))

    def _start_ready(self) -> None:
        self._flush_scheduled = False
        ready, self._ready = self._ready, {}
        for (name, _), deliveries in ready.items():
            self._first_attempts(self._step(name), deliveries)

    def _first_attempts(self, step: Step, deliveries: list[Delivery]) -> None:
        """The first attempts of deliveries made ready together (a fan-out's), started as one
        group and followed by callbacks, not a coroutine each: each one that succeeds settles
        as soon as its batch answers; each that fails goes on alone through its retries."""
        cfg = queue_config(step, deliveries[0])
        started = self._begin(step, deliveries)
        start_many = getattr(self.executor, "start_many", None)
        if start_many is not None:
            futures = list(start_many(step, deliveries, cfg))
        else:
            loop = asyncio.get_running_loop()
            futures = [loop.create_task(self.executor.run(step, d, cfg, alone=False))
                       for d in deliveries]
        for d, fut in zip(deliveries, futures, strict=True):
            fut.add_done_callback(functools.partial(self._first_done, step, d, started))

    def _first_done(self, step: Step, d: Delivery, started: float,
                    fut: asyncio.Future[None]) -> None:
        if fut.cancelled():
            self.running.pop(d.id, None)
            return  # the engine is closing: the journal still has it
        failure = self._end(step, d, started, fut.exception())
        if failure is not None:
            self.spawn(self._own(step, d, failure))
            return
        if not self._to_settle:
            asyncio.get_running_loop().call_soon(self._settle_done)
        self._to_settle.append((step, d))

    def _settle_done(self) -> None:
        done, self._to_settle = self._to_settle, []
        self.spawn(self._settled(done))

    async def _settled(self, done: list[tuple[Step, Delivery]]) -> None:
        """First attempts that succeeded in one turn of the loop: one journal write."""
        await self._settle_batch([d.id for _, d in done])
        for step, d in done:
            self.outcomes.count(step.name, "done")
            self._finished(step, d, dead=False)

    async def _drain(self, step: Step, key: tuple[str, str], group: deque[Delivery]) -> None:
        """A FIFO group: one delivery at a time, each through all its attempts, in order."""
        try:
            while group:
                await self._own(step, group[0])
                group.popleft()
        finally:
            # No await since the check above: nothing can have been appended in between,
            # unless this task was cancelled (the engine closing), which ends the group too.
            del self._fifo[key]

    async def _own(self, step: Step, d: Delivery, failure: AttemptError | None = None) -> None:
        """The coroutine that owns ``d`` until it is done or dead-lettered (``failure``: how
        its attempt ``d.attempt`` failed, when it ran in a group). An error of the engine's own
        (a bug) must not strand it: it is logged and the delivery runs again."""
        while True:
            try:
                await self._deliver(step, d, failure)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("raypipe failed handling delivery %s of step %r; running it "
                              "again", d.id, step.name)
                failure = None
                await self.clock.sleep(1.0)

    # --- one delivery, all its attempts -------------------------------------------------------
    async def _deliver(self, step: Step, d: Delivery,
                       failure: AttemptError | None = None) -> None:
        cfg = queue_config(step, d)
        errors = self._history.pop(d.id, [])
        if failure is None and cfg.delay_seconds and not errors:
            await self.clock.sleep(cfg.delay_seconds)
        limit = None
        if cfg.concurrency:
            limit = self._limits.setdefault(step.name, asyncio.Semaphore(cfg.concurrency))
        first = d.attempt
        alone = False
        while True:
            if failure is None:
                failure = await self._attempt(step, d, cfg, limit, alone)
            if failure is None:
                await self._settle.call(d.id)
                self.outcomes.count(step.name, "done")
                self._finished(step, d, dead=False)
                return
            errors.append(FailedAttempt(d.attempt, failure.description, failure.cause,
                                        failure.remote_traceback, self.clock.time()))
            self.outcomes.count(step.name, "failed_attempts")
            if failure.cause == "crash":
                self.outcomes.count(step.name, "crashes")
            elif failure.cause == "timeout":
                self.outcomes.count(step.name, "timeouts")
            if d.attempt - first >= cfg.max_retries:
                await self._dead_letter(step, d, errors)
                return
            delay = backoff_seconds(cfg, d.attempt - first + 1)
            log.warning("step %r failed attempt %d of %d (%s); retrying in %.2fs", step.name,
                        d.attempt - first + 1, cfg.max_retries + 1, failure.description, delay)
            self.outcomes.count(step.name, "retries")
            await self.clock.sleep(delay)
            # A crash ran alongside whatever shared its worker: the retry runs alone, so one
            # poisonous delivery takes no other down twice.
            alone = failure.cause == "crash"
            failure = None
            d = dataclasses.replace(d, attempt=d.attempt + 1)

    async def _attempt(self, step: Step, d: Delivery, cfg: QueueConfig,
                       limit: asyncio.Semaphore | None, alone: bool) -> AttemptError | None:
        if limit is not None:
            async with limit:
                return await self._attempt(step, d, cfg, None, alone)
        started = self._begin(step, [d])
        try:
            await self.executor.run(step, d, cfg, alone=alone)
        except asyncio.CancelledError:
            self.running.pop(d.id, None)
            raise
        except Exception as exc:
            return self._end(step, d, started, exc)
        return self._end(step, d, started, None)

    def _begin(self, step: Step, deliveries: list[Delivery]) -> float:
        """Attempts start: counted, told to the hooks, in the running table (for the stuck
        watch and the oldest-in-flight ages). Returns when they started."""
        self.outcomes.count(step.name, "attempts", len(deliveries))
        started = self.clock.monotonic()
        for d in deliveries:
            self.hooks.attempt_started(step, d)
            self.running[d.id] = RunningAttempt(step.name, started, d.attempt)
        return started

    def _end(self, step: Step, d: Delivery, started: float,
             exc: BaseException | None) -> AttemptError | None:
        """An attempt ended (``exc``: how it failed): out of the running table, told to the
        hooks; its failure, described, or ``None``."""
        self.running.pop(d.id, None)
        failure = None if exc is None else describe(exc)
        self.hooks.attempt_finished(step, d, "ok" if failure is None else "error",
                                    None if failure is None else failure.description,
                                    self.clock.monotonic() - started)
        return failure

    async def _settle_batch(self, ids: list[str]) -> list[Outcome[None]]:
        """Deliveries done in one turn of the loop settle together: one journal write."""
        await persist(lambda: self.journal.settled(ids), "settling deliveries", self.clock)
        self._seen.release(ids)
        self.hooks.released(ids)
        return [(True, None)] * len(ids)

    def _finished(self, step: Step, d: Delivery, dead: bool) -> None:
        self._open.pop(d.id, None)
        flow = step.config.flows[0] if step.config.flows else ""
        outcome = self.outcomes.finished(d.id, d.trace_id, dead, flow, self.clock.time())
        if outcome is not None:
            self.hooks.workflow_finished(flow, outcome)

    # --- dead letters -------------------------------------------------------------------------
    async def _dead_letter(self, step: Step, d: Delivery, errors: list[FailedAttempt]) -> None:
        await self.dead_letters.add(d, errors)
        self._finished(step, d, dead=True)

    async def replay(self, entry_ids: Sequence[str] | None = None) -> list[str]:
        """Run dead letters again (``None``: all of them), each under its own delivery id, so
        that what its failed attempts applied is not applied again; it gets a fresh set of
        attempts, numbered on from the last. Returns the ids replayed; unknown ids are
        skipped."""
        await self.start()
        replayed = []
        for d, errors in await self.dead_letters.revive(entry_ids, self._next_seq):
            self._history[d.id] = errors
            self._accept(d)
            replayed.append(d.id)
        return replayed

    def forget_caused(self, delivery_ids: Sequence[str]) -> None:
        """These deliveries settled in another shard: what they caused here needs no more
        deduplication (this shard's own settle does it for its own)."""
        ids = list(delivery_ids)
        self._seen.release(ids)
        self.spawn(self._forget(ids))

    async def _forget(self, ids: list[str]) -> None:
        try:
            await self.journal.forgotten(ids)
        except Exception:
            # Not retried: what a lost call leaves is only kept, never used (its parents
            # settled, so nothing offers those ids again).
            log.warning("what %d settled deliveries caused here was not dropped from the "
                        "journal", len(ids), exc_info=True)

    def check_stuck(self) -> list[str]:
        return self.stuck.check()

    # --- inspection ---------------------------------------------------------------------------
    def refs_in_use(self, candidates: Mapping[str, str | None]) -> set[str]:
        """Of these references (id -> the delivery that put it), those a delivery that can
        still run holds: it put them and is in flight, or its message names them (in flight
        or a dead letter, which may be replayed)."""
        used = {ref_id for ref_id, holder in candidates.items() if holder in self._open}
        rest = candidates.keys() - used
        if rest:
            known, named = self._refs_named, {}
            for key, d in self._open.items():
                ids = known.get(key)
                if ids is None:
                    ids = frozenset(ref_ids_in(d.payload))
                named[key] = ids
                if ids:
                    used |= ids & rest
            self._refs_named = named  # closed deliveries drop out
            for entry in self.dead_letters.entries.values():
                used |= ref_ids_in(entry.delivery.payload, rest)
        return used

    def stats(self) -> dict[str, Any]:
        """``in_flight``: deliveries accepted and not yet done or dead-lettered;
        ``oldest_in_flight``: per step, the age in seconds of its oldest one; ``runs_crons``:
        whether this engine runs the cron schedules (one shard of several does)."""
        return {**self.outcomes.stats(self.clock.monotonic()),
                "dead_letters": len(self.dead_letters), "runs_crons": self._runs_crons}

    def public_dead_letters(self) -> list[dict[str, Any]]:
        return self.dead_letters.public()

    def public_dead_letter(self, entry_id: str) -> dict[str, Any] | None:
        return self.dead_letters.public_one(entry_id)
