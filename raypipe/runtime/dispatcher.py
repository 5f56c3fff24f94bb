"""The dispatcher actor: fans messages out to subscriber steps and runs each delivery as a Ray
task named after its step, with retries, backoff, time limits, concurrency limits, FIFO groups
and a dead-letter queue. It also fires cron triggers, once per tick for the whole cluster.

It is an async actor: a delivery waiting on its task or sleeping through a backoff is a
suspended coroutine here, never a blocked worker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import re
import time
import traceback
from collections import defaultdict, deque
from collections.abc import Coroutine
from typing import Any

import ray

from raypipe import triggers as t
from raypipe.delivery import Delivery
from raypipe.effects import EffectLog
from raypipe.loader import load_app_cached
from raypipe.messages import Message, new_id
from raypipe.runtime.batching import Batcher
from raypipe.runtime.journal import make_journal
from raypipe.runtime.metrics import DeliveryMetrics
from raypipe.runtime.once import Once
from raypipe.runtime.spec import AppSpec
from raypipe.runtime.worker import run_batch, run_delivery
from raypipe.schedules import missed_tick, next_fire
from raypipe.steps import Step

log = logging.getLogger("raypipe.dispatcher")

_DEFAULT_QUEUE = t.QueueConfig()

#: Seconds between counts of the cluster's task slots.
SLOTS_TTL = 10.0


def backoff_seconds(cfg: t.QueueConfig, failed_attempt: int) -> float:
    """Delay before the retry that follows ``failed_attempt`` (1-based), with +-20% jitter."""
    base = cfg.backoff_delay_ms / 1000
    delay = base if cfg.backoff == "fixed" else base * 2 ** (failed_attempt - 1)
    return float(delay * random.uniform(0.8, 1.2))


class HandlerError(Exception):
    """A handler's exception, raised in a batch task; carries its type, message and traceback
    as text (the worker sent them)."""

    def __init__(self, description: str, remote_traceback: str) -> None:
        super().__init__(description)
        self.description = description
        self.remote_traceback = remote_traceback


def _fail_all(pending: list[tuple[Delivery, asyncio.Future[None]]], exc: Exception) -> None:
    for _, fut in pending:
        if not fut.done():
            fut.set_exception(exc)


def queue_config(step: Step, d: Delivery) -> t.QueueConfig:
    if d.kind == "queue" and d.topic:
        return step.queue_trigger(d.topic).config
    return _DEFAULT_QUEUE


# max_task_retries: a call in flight when the actor dies waits for the restart and is retried
# there (publish and invoke are idempotent by message and delivery id), instead of failing.
@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class Dispatcher:
    def __init__(self, spec: AppSpec) -> None:
        self.spec = spec
        self.app = load_app_cached(spec.root, spec.settings)
        self.dead_letters: dict[str, dict[str, Any]] = {}
        #: Outcome counts per step: accepted, done, retries, failed_attempts, dead_lettered, ...
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._messages = EffectLog()
        self._tasks: set[asyncio.Task[None]] = set()
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._fifo: dict[tuple[str, str], deque[Delivery]] = {}
        #: Per (task function, step): its ``.options`` (building them costs more than a call).
        self._task_options: dict[tuple[Any, str], Any] = {}
        self._cron: list[asyncio.Task[None]] = []
        self.metrics = DeliveryMetrics(spec.settings.name)
        self._in_flight = 0
        #: Per trace: deliveries in flight, and whether one was dead-lettered.
        self._traces: dict[str, list[int]] = {}
        self._telemetry_client: Any = None
        self._batcher: Batcher[tuple[Delivery, asyncio.Future[None]]] = Batcher(
            self._slots, self._run_batch, self._spawn)
        self._slot_count = (0, -SLOTS_TTL)  # (slots, when counted)
        self.journal = make_journal(spec.settings.state, spec.settings.name)
        #: Every entry point awaits it: nothing is accepted before recovery.
        self._start = Once(self._recover)
        # Ray restarts a dead actor without calling it, and nothing else may call it for a
        # while: wake it up so it recovers the journal and resumes its cron schedules at once.
        self._wake = ray.get_runtime_context().current_actor.ready.remote()

    async def _recover(self) -> None:
        """Once per actor life (first start or a restart by Ray), before anything is accepted:
        recover the journal's unsettled deliveries and dead letters, and start the cron
        schedules."""
        for entry in await self.journal.dead_letters():
            self.dead_letters[entry["id"]] = entry
        pending = await self.journal.pending()
        if pending:
            log.info("recovering %d unfinished deliveries", len(pending))
        for d in pending:
            self._messages.record(d.id)
            # A publish the dead actor journaled may be retried by its caller (Ray retries
            # calls across a restart): its deliveries are these.
            self._messages.record(d.message_id)
            self._accept(self.app.steps[d.step], d)
        loop = asyncio.get_running_loop()
        self._cron = [loop.create_task(self._cron_loop(step, tr))
                      for step in self.app.with_trigger(t.CronTrigger)
                      for tr in step.triggers_of(t.CronTrigger)]

    async def ready(self) -> bool:
        await self._start()
        return True

    # --- intake -----------------------------------------------------------------------------
    async def publish(self, messages: list[Message]) -> int:
        """Accept messages; each subscriber gets its own delivery. A message whose id was
        already accepted (a retried delivery enqueuing again) is ignored. Returns deliveries."""
        await self._start()
        fresh = []
        for msg in messages:
            if self._messages.seen(msg.id):
                self.counts["*"]["duplicate_messages"] += 1
                continue
            fresh += [Delivery(f"{msg.id}>{step.name}", step.name, "queue", msg.data,
                               msg.trace_id, topic=msg.topic, message_id=msg.id,
                               group_id=msg.group_id)
                      for step in self.app.subscribers(msg.topic)]
            self._messages.record(msg.id)
        await self._take(fresh)
        return len(fresh)

    async def invoke(self, deliveries: list[Delivery]) -> None:
        """Deliveries addressed to one step (state, stream and cron triggers)."""
        await self._start()
        fresh = [d for d in deliveries if not self._messages.seen(d.id)]
        for d in fresh:
            self._messages.record(d.id)
        await self._take(fresh)

    async def _take(self, deliveries: list[Delivery]) -> None:
        """Journal the deliveries, then start them: accepted means journaled."""
        await self.journal.accepted(deliveries)
        for d in deliveries:
            self._accept(self.app.steps[d.step], d)

    def _accept(self, step: Step, d: Delivery) -> None:
        self.counts[step.name]["accepted"] += 1
        self._track(1)
        self._traces.setdefault(d.trace_id, [0, 0])[0] += 1
        cfg = queue_config(step, d)
        if cfg.type == "fifo" and d.group_id is not None:
            key = (step.name, d.group_id)
            pending = self._fifo.get(key)
            if pending is None:
                pending = self._fifo[key] = deque()
                self._spawn(self._drain_fifo(step, key, pending))
            pending.append(d)
        else:
            self._spawn(self._deliver(step, d))

    def _track(self, delta: int) -> None:
        """+1 when a delivery is accepted, -1 when it is done or dead-lettered."""
        self._in_flight += delta
        self.metrics.in_flight(self._in_flight)

    def _finished(self, step: Step, d: Delivery, dead: bool) -> None:
        """A delivery done or dead-lettered; its trace is complete when it was the last one.
        Downstream deliveries are accepted before the one that caused them finishes (its
        enqueue, or its write's trigger, returns first), so a trace never looks complete
        early."""
        self._track(-1)
        trace = self._traces.get(d.trace_id)
        if trace is None:
            return
        trace[0] -= 1
        trace[1] |= dead
        if trace[0] == 0:
            del self._traces[d.trace_id]
            outcome = "dead_lettered" if trace[1] else "completed"
            self.counts["*"][f"workflows_{outcome}"] += 1
            flow = step.config.flows[0] if step.config.flows else ""
            self.metrics.workflow(flow, outcome)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain_fifo(self, step: Step, key: tuple[str, str], pending: deque[Delivery]) -> None:
        """One group's deliveries, one at a time, in the order accepted, each through all its
        attempts before the next starts."""
        while pending:
            await self._deliver(step, pending.popleft())
        # No await since the check above: nothing can have been appended in between.
        del self._fifo[key]

    # --- one delivery, all its attempts -----------------------------------------------------
    async def _deliver(self, step: Step, d: Delivery) -> None:
        cfg = queue_config(step, d)
        if cfg.delay_seconds:
            await asyncio.sleep(cfg.delay_seconds)
        limit = None
        if cfg.concurrency:
            limit = self._limits.setdefault(step.name, asyncio.Semaphore(cfg.concurrency))
        errors: list[dict[str, Any]] = []
        for attempt in range(1, cfg.max_retries + 2):
            d = dataclasses.replace(d, attempt=attempt)
            span = self._span(step, d)
            try:
                if limit is None:
                    await self._run_once(step, d, cfg)
                else:
                    async with limit:
                        await self._run_once(step, d, cfg)
            except Exception as exc:
                self.metrics.count("failed", step.name)
                errors.append({"attempt": attempt, "error": _describe(exc),
                               "traceback": _traceback(exc), "at": time.time()})
                self.counts[step.name]["failed_attempts"] += 1
                last = attempt > cfg.max_retries
                self._span_end(span, "dead" if last else "error", _describe(exc))
                if not last:
                    delay = backoff_seconds(cfg, attempt)
                    log.warning("step %r failed attempt %d of %d (%s); retrying in %.2fs",
                                step.name, attempt, cfg.max_retries + 1, _describe(exc), delay)
                    self.counts[step.name]["retries"] += 1
                    self.metrics.count("retried", step.name)
                    await asyncio.sleep(delay)
                    continue
                await self._dead_letter(step, d, errors)
                return
            self._span_end(span, "ok")
            await self.journal.settled(d.id)
            self.counts[step.name]["done"] += 1
            self.metrics.count("succeeded", step.name)
            self._finished(step, d, dead=False)
            return

    # --- batches: deliveries of one step that are ready together share one task -----------
    def _batched(self, step: Step, d: Delivery) -> asyncio.Future[None]:
        """Resolves when ``d``'s attempt is done (raises its error). Deliveries that reach
        this in one turn of the loop (a fan-out's) are shared out at its end, in batches."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batcher.add(step.name, (d, fut))
        return fut

    async def _run_batch(self, step: str,
                         chunk: list[tuple[Delivery, asyncio.Future[None]]]) -> None:
        """One batch task: each delivery's future gets its own outcome."""
        try:
            ref = self._options(run_batch, step).remote(self.spec, [d for d, _ in chunk])
        except Exception as exc:
            _fail_all(chunk, exc)
            return
        self.counts[step]["tasks"] += 1
        await self._settle_batch(ref, chunk)

    def _slots(self) -> int:
        """How many step tasks the cluster runs at once (batches in flight), counted again
        every SLOTS_TTL seconds, as nodes come and go."""
        slots, counted = self._slot_count
        now = time.monotonic()
        if now - counted >= SLOTS_TTL:
            try:
                cpus = ray.cluster_resources().get("CPU", 1.0)  # type: ignore[no-untyped-call]
                per_task = self.spec.settings.task_num_cpus or 0.25
                slots = max(1, int(cpus / per_task))
            except Exception:  # no answer from the cluster: keep the last count
                log.warning("could not count the cluster's CPUs", exc_info=True)
                slots = max(1, slots)
            self._slot_count = (slots, now)
        return slots

    async def _settle_batch(self, ref: Any,
                            chunk: list[tuple[Delivery, asyncio.Future[None]]]) -> None:
        try:
            outcomes = await ref
            for (_, fut), outcome in zip(chunk, outcomes, strict=True):
                if fut.done():
                    continue
                if outcome is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(HandlerError(outcome["error"], outcome["traceback"]))
        except Exception as exc:  # the task failed (its worker died past its retries)
            _fail_all(chunk, exc)
        finally:
            # Nothing may wait forever: an attempt without an answer counts as failed.
            _fail_all(chunk, RuntimeError("the batch task gave no outcome for this delivery"))

    # --- spans for the workbench's traces -----------------------------------------------------
    def _telemetry(self) -> Any:
        if self._telemetry_client is None:
            from raypipe.runtime.bridge import runtime_for

            try:
                self._telemetry_client = runtime_for(self.spec).telemetry
            except Exception:  # no telemetry actor: spans are lost, deliveries are not
                log.warning("no telemetry actor; the workbench will show no traces",
                            exc_info=True)
                self._telemetry_client = _NoTelemetry()
        return self._telemetry_client

    def _span(self, step: Step, d: Delivery) -> dict[str, Any]:
        span = {"trace_id": d.trace_id, "id": d.id, "step": step.name, "kind": d.kind,
                "topic": d.topic, "attempt": d.attempt, "start": time.time() * 1000,
                "end": None, "outcome": None, "error": None}
        self._telemetry().record((), [span])
        return span

    def _span_end(self, span: dict[str, Any], outcome: str, error: str | None = None) -> None:
        self._telemetry().record((), [{**span, "end": time.time() * 1000, "outcome": outcome,
                                       "error": error}])

    def _options(self, task: Any, step: str) -> Any:
        """``task`` (a batch, or one delivery) with the step's name and CPUs."""
        opts = self._task_options.get((task, step))
        if opts is None:
            # Ray retries a task whose worker died (system failures); exceptions are ours.
            opts = self._task_options[task, step] = task.options(
                name=step, num_cpus=self.spec.settings.task_num_cpus, max_retries=3,
                retry_exceptions=False)
        return opts

    async def _run_once(self, step: Step, d: Delivery, cfg: t.QueueConfig) -> None:
        self.metrics.count("started", step.name)
        started = time.monotonic()
        try:
            await self._attempt(step, d, cfg)
        finally:
            self.metrics.latency(step.name, time.monotonic() - started)

    async def _attempt(self, step: Step, d: Delivery, cfg: t.QueueConfig) -> None:
        if cfg.visibility_timeout is None:
            await self._batched(step, d)
            return
        # Alone in its task: cancelling it past its time limit kills the worker.
        ref = self._options(run_delivery, step.name).remote(self.spec, d)
        self.counts[step.name]["tasks"] += 1
        try:
            await asyncio.wait_for(asyncio.shield(ref), cfg.visibility_timeout)  # type: ignore[arg-type]
        except asyncio.TimeoutError:
            # force: a handler stuck in a blocking call only stops with its worker.
            ray.cancel(ref, force=True)
            raise TimeoutError(
                f"step {step.name!r} ran past its visibility_timeout of "
                f"{cfg.visibility_timeout}s; cancelled") from None

    # --- dead letters -------------------------------------------------------------------------
    async def _dead_letter(self, step: Step, d: Delivery, errors: list[dict[str, Any]]) -> None:
        entry = {"id": d.id, "step": step.name, "delivery": d, "errors": errors,
                 "trace_id": d.trace_id, "dead_at": time.time()}
        await self.journal.dead(entry)
        self.dead_letters[d.id] = entry
        self.counts[step.name]["dead_lettered"] += 1
        self.metrics.count("dead", step.name)
        self._finished(step, d, dead=True)
        log.error("step %r failed %d time(s); delivery %s moved to the dead-letter queue "
                  "(`raypipe dlq show %s`)", step.name, len(errors), d.id, d.id)

    async def list_dead_letters(self) -> list[dict[str, Any]]:
        await self._start()
        return [_public(e) for e in self.dead_letters.values()]

    async def get_dead_letter(self, entry_id: str) -> dict[str, Any] | None:
        await self._start()
        entry = self.dead_letters.get(entry_id)
        return _public(entry) if entry else None

    async def replay(self, entry_ids: list[str] | None = None) -> list[str]:
        """Run dead letters again, each as a new delivery (new id, attempts from 1); ``None``
        replays all. Returns the new delivery ids; unknown ids are skipped."""
        await self._start()
        ids = list(self.dead_letters) if entry_ids is None else entry_ids
        replayed = []
        for entry_id in ids:
            entry = self.dead_letters.pop(entry_id, None)
            if entry is None:
                continue
            old: Delivery = entry["delivery"]
            d = dataclasses.replace(old, id=f"{old.id}~{new_id()[:8]}", attempt=1)
            log.info("replaying dead letter %s as delivery %s", entry_id, d.id)
            self.counts[d.step]["replayed"] += 1
            await self._take([d])
            await self.journal.revived(entry_id)
            replayed.append(d.id)
        return replayed

    # --- cron -------------------------------------------------------------------------------
    async def _cron_loop(self, step: Step, tr: t.CronTrigger) -> None:
        now = time.time()
        last = await self.journal.last_tick(step.name)
        # A tick missed while the dispatcher was down (a restart, a stopped cluster) fires
        # once on start; a tick already fired is not fired again.
        missed = None if last is None else missed_tick(tr.expression, last, now)
        if missed is not None:
            await self._tick(step, missed)
        due = next_fire(tr.expression, now)
        while True:
            await asyncio.sleep(max(0.0, due - time.time()))
            await self._tick(step, due)
            # Ticks missed while this loop was late are skipped, not fired in a burst.
            due = next_fire(tr.expression, max(due, time.time()))

    async def _tick(self, step: Step, due: float) -> None:
        # The tick names the delivery: one firing is one delivery, however it is retried.
        await self.invoke([Delivery(f"cron:{step.name}:{due:.0f}", step.name, "cron", None,
                                    new_id())])
        await self.journal.ticked(step.name, due)

    # --- inspection ---------------------------------------------------------------------------
    async def stats(self) -> dict[str, Any]:
        """``in_flight``: deliveries accepted and not yet done or dead-lettered."""
        await self._start()
        return {"in_flight": self._in_flight, "dead_letters": len(self.dead_letters),
                "state": _redact(self.spec.settings.state),
                "steps": {name: dict(s) for name, s in self.counts.items()}}


def _redact(url: str) -> str:
    """A state URL without its password, for display."""
    return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)


class _NoTelemetry:
    def record(self, lines: Any, spans: Any) -> None:
        pass


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    d: Delivery = entry["delivery"]
    return {**{k: v for k, v in entry.items() if k != "delivery"},
            "kind": d.kind, "topic": d.topic, "message_id": d.message_id,
            "group_id": d.group_id, "payload": d.payload}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, HandlerError):
        return exc.description
    cause = getattr(exc, "cause", None)  # a RayTaskError wraps the handler's exception
    if isinstance(cause, BaseException):
        exc = cause
    return f"{type(exc).__name__}: {exc}"


def _traceback(exc: BaseException) -> str:
    if isinstance(exc, HandlerError):
        return exc.remote_traceback
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
