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
import time
import traceback
from collections import defaultdict
from collections.abc import Coroutine
from typing import Any

import ray

from raypipe import triggers as t
from raypipe.delivery import Delivery
from raypipe.loader import load_app_cached
from raypipe.messages import Message, new_id
from raypipe.runtime.spec import AppSpec
from raypipe.runtime.worker import run_delivery
from raypipe.schedules import next_fire
from raypipe.steps import Step

log = logging.getLogger("raypipe.dispatcher")

_DEFAULT_QUEUE = t.QueueConfig()


def backoff_seconds(cfg: t.QueueConfig, failed_attempt: int) -> float:
    """Delay before the retry that follows ``failed_attempt`` (1-based), with +-20% jitter."""
    base = cfg.backoff_delay_ms / 1000
    delay = base if cfg.backoff == "fixed" else base * 2 ** (failed_attempt - 1)
    return float(delay * random.uniform(0.8, 1.2))


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
class Dispatcher:
    def __init__(self, spec: AppSpec) -> None:
        self.spec = spec
        self.app = load_app_cached(spec.root, spec.settings)
        self.dead_letters: dict[str, dict[str, Any]] = {}
        self.counts: dict[str, int] = defaultdict(int)
        self._tasks: set[asyncio.Task[None]] = set()
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._fifo: dict[tuple[str, str], asyncio.Lock] = {}
        self._cron_started = False

    async def ready(self) -> bool:
        if not self._cron_started:
            self._cron_started = True
            for step in self.app.with_trigger(t.CronTrigger):
                for tr in step.triggers_of(t.CronTrigger):
                    self._spawn(self._cron_loop(step, tr))
        return True

    # --- intake -----------------------------------------------------------------------------
    async def publish(self, messages: list[Message]) -> int:
        """Accept messages; each subscriber gets its own delivery. Returns deliveries made."""
        n = 0
        for msg in messages:
            for step in self.app.subscribers(msg.topic):
                n += 1
                self._spawn(self._deliver(step, Delivery(
                    step.name, "queue", msg.data, msg.trace_id, topic=msg.topic,
                    message_id=msg.id), msg.group_id))
        self.counts["accepted"] += n
        return n

    async def invoke(self, deliveries: list[Delivery]) -> None:
        """Deliveries addressed to one step (state, stream and cron triggers)."""
        for d in deliveries:
            step = self.app.steps[d.step]
            if d.message_id is None:
                d = dataclasses.replace(d, message_id=new_id())
            self.counts["accepted"] += 1
            self._spawn(self._deliver(step, d, None))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- one delivery, all its attempts -----------------------------------------------------
    def _queue_config(self, step: Step, d: Delivery) -> t.QueueConfig:
        if d.kind == "queue" and d.topic:
            return step.queue_trigger(d.topic).config
        return _DEFAULT_QUEUE

    async def _deliver(self, step: Step, d: Delivery, group_id: str | None) -> None:
        cfg = self._queue_config(step, d)
        if cfg.delay_seconds:
            await asyncio.sleep(cfg.delay_seconds)
        lock = None
        if cfg.type == "fifo" and group_id is not None:
            lock = self._fifo.setdefault((step.name, group_id), asyncio.Lock())
            await lock.acquire()
        try:
            await self._attempts(step, d, cfg)
        finally:
            if lock is not None:
                lock.release()

    async def _attempts(self, step: Step, d: Delivery, cfg: t.QueueConfig) -> None:
        errors: list[dict[str, Any]] = []
        limit = None
        if cfg.concurrency:
            limit = self._limits.setdefault(step.name, asyncio.Semaphore(cfg.concurrency))
        for attempt in range(1, cfg.max_retries + 2):
            d = dataclasses.replace(d, attempt=attempt)
            try:
                if limit is not None:
                    async with limit:
                        await self._run_once(step, d, cfg)
                else:
                    await self._run_once(step, d, cfg)
            except Exception as exc:
                errors.append({"attempt": attempt, "error": _describe(exc),
                               "traceback": _traceback(exc), "at": time.time()})
                self.counts["failed_attempts"] += 1
                if attempt <= cfg.max_retries:
                    log.warning("step %r failed attempt %d (%s); retrying", step.name, attempt,
                                _describe(exc))
                    await asyncio.sleep(backoff_seconds(cfg, attempt))
                    continue
                self._dead_letter(step, d, errors)
                return
            self.counts["done"] += 1
            return

    async def _run_once(self, step: Step, d: Delivery, cfg: t.QueueConfig) -> None:
        ref = run_delivery.options(
            name=step.name, num_cpus=self.spec.settings.task_num_cpus,
        ).remote(self.spec, d)
        if cfg.visibility_timeout is None:
            await ref
            return
        try:
            await asyncio.wait_for(asyncio.shield(ref), cfg.visibility_timeout)  # type: ignore[arg-type]
        except asyncio.TimeoutError:
            ray.cancel(ref, force=True)
            raise TimeoutError(
                f"step {step.name!r} ran past its visibility_timeout of "
                f"{cfg.visibility_timeout}s") from None

    def _dead_letter(self, step: Step, d: Delivery, errors: list[dict[str, Any]]) -> None:
        entry_id = d.message_id or new_id()
        entry = {"id": entry_id, "step": step.name, "delivery": d,
                 "errors": errors, "trace_id": d.trace_id, "dead_at": time.time()}
        self.dead_letters[entry_id] = entry
        self.counts["dead_lettered"] += 1
        log.error("step %r failed %d time(s); message %s moved to the dead-letter queue "
                  "(`raypipe dlq show %s`)", step.name, len(errors), entry_id, entry_id)

    # --- cron -------------------------------------------------------------------------------
    async def _cron_loop(self, step: Step, tr: t.CronTrigger) -> None:
        due = next_fire(tr.expression, time.time())
        while True:
            await asyncio.sleep(max(0.0, due - time.time()))
            self.counts["cron_fired"] += 1
            await self.invoke([Delivery(step.name, "cron", None, new_id())])
            # Ticks missed while this loop was late are skipped, not fired in a burst.
            due = next_fire(tr.expression, max(due, time.time()))

    # --- inspection ---------------------------------------------------------------------------
    async def stats(self) -> dict[str, Any]:
        return {**self.counts, "in_flight": len(self._tasks),
                "dead_letters": len(self.dead_letters)}

    async def list_dead_letters(self) -> list[dict[str, Any]]:
        return [_public(e) for e in self.dead_letters.values()]


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    d: Delivery = entry["delivery"]
    return {**{k: v for k, v in entry.items() if k != "delivery"},
            "kind": d.kind, "topic": d.topic, "payload": d.payload}


def _describe(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)  # a RayTaskError wraps the handler's exception
    if isinstance(cause, BaseException):
        exc = cause
    return f"{type(exc).__name__}: {exc}"


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
