"""A step's pool of Ray actors (``RayOptions(actors=...)``): each loads the app and makes the
step's class handler once (its model stays loaded), then runs batches of deliveries, one at a
time. The pool starts ``min`` actors, adds one while batches wait for an actor (up to
``max``), and lets an actor idle past the step's ``idle_s`` (:data:`IDLE_SECONDS` by default)
go (down to ``min``). An actor
that dies fails the attempts it held; the engine retries them, on the actors left or a new
one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections import deque
from typing import Any

import ray

from raypipe import constants, wire
from raypipe.execution import Outcome
from raypipe.handlers import instance
from raypipe.ray_options import RayOptions
from raypipe.runtime import gc_tuning, shipping
from raypipe.runtime.bridge import runtime_for
from raypipe.runtime.spec import AppSpec, SpecArg, spec_of
from raypipe.runtime.worker import run_here

__all__ = ["IDLE_SECONDS", "ActorPool", "StepActor"]

log = logging.getLogger("raypipe.dispatcher")

#: Seconds an actor beyond the pool's ``min`` may stay idle before it is let go.
IDLE_SECONDS = 60.0


@ray.remote
class StepActor:
    """One actor of a step's pool."""

    def __init__(self, spec: AppSpec, step: str) -> None:
        app = shipping.load(spec)
        instance(app.steps[step].handler)  # a class handler's __init__: its model, loaded once
        runtime_for(spec)
        gc_tuning.settle()

    def ready(self) -> int:
        return os.getpid()

    def run(self, spec: AppSpec | SpecArg, deliveries: list[wire.Wire]) -> list[Outcome]:
        return run_here(spec_of(spec), wire.deliveries_in(deliveries))


class ActorPool:
    def __init__(self, spec: AppSpec, step: str, options: RayOptions,
                 bounds: tuple[int, int] | None = None) -> None:
        """``bounds``: this pool's (min, max) actors, in place of the step's (a dispatcher
        shard's part of them)."""
        size = bounds or options.pool_size
        assert size is not None
        self.min, self.max = size
        self.idle_s = IDLE_SECONDS if options.idle_s is None else options.idle_s
        self.step = step
        self._spec = spec
        # Ray never restarts an actor or retries a call: the engine's attempts are the retries.
        self._options = dict(max_restarts=0, max_task_retries=0, namespace=spec.namespace,
                             **options.task_options(spec.settings.task_num_cpus))
        self._idle: deque[tuple[Any, float]] = deque()
        self._busy: set[Any] = set()
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._starting = 0
        self._retired = False
        self._tasks: set[asyncio.Task[None]] = set()
        #: Deliveries waiting for an actor (kept by the executor).
        self.backlog = 0

    @property
    def size(self) -> int:
        return len(self._idle) + len(self._busy) + self._starting

    def stats(self) -> dict[str, int]:
        return {"actors": len(self._idle) + len(self._busy), "starting": self._starting,
                "busy": len(self._busy), "backlog": self.backlog, "min": self.min,
                "max": self.max}

    def start(self) -> None:
        """Start actors up to ``min`` (their models load now, not with the first batch)."""
        while self.size < self.min:
            self._add()

    async def acquire(self) -> Any:
        """An idle actor, now or once one is free; a new one if every actor is busy and the
        pool may grow."""
        self._trim()
        if self._idle:
            actor, _ = self._idle.pop()
            self._busy.add(actor)
            return actor
        if self.size < self.max and self._starting <= len(self._waiters):
            self._add()
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return await waiter

    def release(self, actor: Any, *, dead: bool = False) -> None:
        """An actor's call ended; ``dead``: it failed (the actor is killed and replaced)."""
        self._busy.discard(actor)
        if dead:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
            # Batches waiting are served even by a retired pool: they were gathered before
            # the new version came, and nothing else will take them.
            if self._waiters or (not self._retired and self.size < self.min):
                self._add()
            return
        self._give(actor)  # to a batch waiting; else idle, or gone if retired

    def retire(self) -> None:
        """A new version: idle actors go now; busy and starting ones serve the batches
        already waiting for this pool, then go."""
        self._retired = True
        for actor, _ in self._idle:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
        self._idle.clear()

    def _add(self) -> None:
        self._starting += 1
        # Named, in the app's namespace: the dashboard and `ray list actors` show whose it is.
        name = f"{constants.POOL_ACTOR_PREFIX}{self.step}:{uuid.uuid4().hex[:8]}"
        actor = StepActor.options(  # type: ignore[attr-defined]
            name=name, **self._options).remote(self._spec, self.step)
        task = asyncio.get_running_loop().create_task(self._started(actor))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _started(self, actor: Any) -> None:
        try:
            await actor.ready.remote()
        except Exception as exc:
            self._starting -= 1
            log.error("step %r: an actor of its pool failed to start: %s", self.step, exc)
            for waiter in list(self._waiters):
                if not waiter.done() and self.size == 0:
                    waiter.set_exception(exc)
            return
        except asyncio.CancelledError:  # the dispatcher is going away
            self._starting -= 1
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
            raise
        self._starting -= 1
        self._give(actor)

    def _give(self, actor: Any) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._busy.add(actor)
                waiter.set_result(actor)
                return
        if self._retired:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
            return
        self._idle.append((actor, time.monotonic()))
        if self.size > self.min:
            # Trimmed on time, not only when a batch comes: a pool no batch reaches lets its
            # extra actors (and their GPUs) go too.
            asyncio.get_running_loop().call_later(self.idle_s + 0.01, self._trim)

    def _trim(self) -> None:
        """Let actors idle past ``idle_s`` go, down to ``min``."""
        now = time.monotonic()
        while (self._idle and self.size > self.min
               and now - self._idle[0][1] >= self.idle_s):
            actor, _ = self._idle.popleft()
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
