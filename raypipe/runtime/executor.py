"""Attempts as Ray tasks named after their step. Deliveries of one step that are ready
together share a batch task (:mod:`raypipe.engine.batching`); one with a
``visibility_timeout``, or one whose last attempt crashed its worker, runs in a task of its
own, which a time limit can end by killing its worker.

Ray never retries a step task: a worker that dies (an exit, a signal, OOM, a lost node) fails
the attempt, which the engine counts and retries like an exception. One attempt is one run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import ray
from ray import exceptions as rex
from ray.util.placement_group import NODE_ID_LABEL_KEY
from ray.util.scheduling_strategies import In, NodeLabelSchedulingStrategy

from raypipe import triggers as t
from raypipe import wire
from raypipe.app import App
from raypipe.engine.attempt import AttemptError, outcome_error
from raypipe.engine.batching import FIRST_BATCH, Batcher
from raypipe.engine.delivery import Delivery
from raypipe.engine.outcomes import Outcomes
from raypipe.ray_options import RayOptions, demand
from raypipe.runtime.actor_pool import ActorPool
from raypipe.runtime.spec import AppSpec, spec_arg
from raypipe.runtime.worker import run_batch, run_delivery, warm_worker
from raypipe.shards import node_share, pool_share
from raypipe.steps import Step

__all__ = ["RayExecutor", "crash_error"]

log = logging.getLogger("raypipe.dispatcher")

#: Seconds between counts of the cluster's task slots.
SLOTS_TTL = 10.0

_Pending = tuple[Delivery, "asyncio.Future[None]"]


def crash_error(exc: BaseException) -> AttemptError:
    """What a dead letter says of a step task that gave no result: the worker's death (with
    what Ray knows of its cause), or the error Ray raised instead."""
    if isinstance(exc, AttemptError):
        return exc
    if isinstance(exc, rex.OutOfMemoryError):
        return AttemptError(f"worker killed for running out of memory (OOM): {exc}",
                            str(exc), "crash")
    if isinstance(exc, rex.NodeDiedError):
        return AttemptError(f"the node running the worker died: {exc}", str(exc), "crash")
    if isinstance(exc, rex.RayActorError):  # an actor of a step's pool
        return AttemptError(f"the actor running the attempt died (a kill, OOM, its node going "
                            f"away): {type(exc).__name__}: {exc}", str(exc), "crash")
    if isinstance(exc, (rex.WorkerCrashedError, rex.LocalRayletDiedError)):
        return AttemptError(
            "the worker process died during the attempt (os._exit, a signal such as SIGKILL or "
            f"SIGSEGV, or its node going away): {type(exc).__name__}: {exc}", str(exc), "crash")
    cause = getattr(exc, "cause", None)  # a RayTaskError wraps what the task raised
    if isinstance(cause, BaseException):
        exc = cause
    return AttemptError(f"{type(exc).__name__}: {exc}", str(exc), "error")


class RayExecutor:
    def __init__(self, spec: AppSpec, tally: Outcomes, app: App, shard: int = 0,
                 shards: int = 1) -> None:
        """``shard`` of ``shards``: this dispatcher's part of the cluster's task slots and of
        each actor pool."""
        self.spec = spec
        self._spec_arg = spec_arg(spec)
        self._shard, self._shards = shard, shards
        self._tally = tally  # counts the Ray tasks per step
        self._use(app)
        self._batcher: Batcher[_Pending] = Batcher(self._slots, self._run_batch, self._spawn,
                                                   self._limits)
        self._slot_count = (0, -SLOTS_TTL)  # (slots, when counted)
        self._totals: dict[str, float] = {}  # the cluster's resources, as last counted
        #: The nodes this shard's tasks go to first (:func:`raypipe.shards.node_share`), as
        #: last counted; empty: anywhere (one shard, or one node).
        self._share: tuple[str, ...] = ()
        #: Per (task function, step): its ``.options`` (building them costs more than a call).
        self._task_options: dict[tuple[Any, str], Any] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: The actor pools of the steps that run on actors, made on first use (or warm()).
        self._pools: dict[str, ActorPool] = {}
        #: Deliveries gathered for a pool step's next batch, and when that batch is cut.
        self._gathered: dict[str, list[_Pending]] = {}
        self._cut: dict[str, asyncio.Handle] = {}
        self._timeouts: dict[str, float | None] = {}

    def reload(self, spec: AppSpec, app: App) -> None:
        """Tasks from now on carry ``spec`` (the new version) and the new steps' options;
        actor pools are made afresh (their actors hold the old version's handlers)."""
        self.spec = spec
        self._spec_arg = spec_arg(spec)
        self._use(app)
        self._task_options.clear()
        for pool in self._pools.values():
            pool.retire()
        self._pools.clear()

    def pools(self) -> dict[str, dict[str, int]]:
        """Each actor pool: its actors, those starting and busy, the deliveries waiting."""
        out = {}
        for step, pool in self._pools.items():
            stats = pool.stats()
            stats["backlog"] += len(self._gathered.get(step, ()))
            out[step] = stats
        return out

    def _use(self, app: App) -> None:
        """The steps' Ray options, and what each needs beyond CPUs (worked out once here,
        not every time a batch is cut)."""
        self._ray = {name: step.config.ray for name, step in app.steps.items()}
        self._scarce = {name: need for name, options in self._ray.items()
                        if (need := {k: v for k, v in demand(
                            options, self.spec.settings.task_num_cpus).items() if k != "CPU"})}

    def warm(self, most: int = 4) -> None:
        """Start up to ``most`` task workers with the app imported (one per CPU of the
        cluster, at most ``most``), without waiting for them."""
        for step, options in self._ray.items():
            if options.actors is not None:
                self._pool(step).start()
        if all(options.actors is not None for options in self._ray.values()):
            return
        cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
        self._slots()  # this shard's nodes: where its tasks will run
        for _ in range(max(1, min(most, cpus))):
            warm_worker.options(num_cpus=self.spec.settings.task_num_cpus,
                                name="raypipe-warm-up", **self._prefer_share()).remote(self.spec)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self, step: Step, delivery: Delivery, cfg: t.QueueConfig, *,
                  alone: bool) -> None:
        if step.config.ray.actors is not None:
            mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._timeouts[step.name] = cfg.visibility_timeout
            if alone:  # after a crash: a batch of its own
                await self._on_pool(step.name, [(delivery, mine)])
            else:
                self._gather(step.name, (delivery, mine))
            await mine
            return
        if cfg.visibility_timeout is None and not alone:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._batcher.add(step.name, (delivery, fut))
            await fut
            return
        ref = self._options(run_delivery, step.name).remote(self._spec_arg,
                                                             wire.delivery_out(delivery))
        self._tally.count(step.name, "tasks")
        try:
            if cfg.visibility_timeout is None:
                outcome = await ref
            else:
                outcome = await asyncio.wait_for(asyncio.shield(ref),  # type: ignore[arg-type]
                                                 cfg.visibility_timeout)
        except asyncio.TimeoutError:
            # force: a handler stuck in a blocking call only stops with its worker.
            ray.cancel(ref, force=True)
            raise AttemptError(
                f"step {step.name!r} ran past its visibility_timeout of "
                f"{cfg.visibility_timeout}s; its worker was stopped", "", "timeout") from None
        except Exception as exc:
            raise crash_error(exc) from None
        if outcome is not None:
            raise outcome_error(outcome)

    def start_many(self, step: Step, deliveries: list[Delivery],
                   cfg: t.QueueConfig) -> list[asyncio.Future[None]]:
        """First attempts made ready together, shared out in batch tasks: a future per
        delivery, resolved as its batch answers."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = [loop.create_future() for _ in deliveries]
        on_pool = step.config.ray.actors is not None
        if on_pool:
            self._timeouts[step.name] = cfg.visibility_timeout
        for d, fut in zip(deliveries, futures, strict=True):
            if on_pool:
                self._gather(step.name, (d, fut))
            else:
                self._batcher.add(step.name, (d, fut))
        return futures

    # --- actor pools ----------------------------------------------------------------------
    def _pool(self, step: str) -> ActorPool:
        pool = self._pools.get(step)
        if pool is None:
            options = self._ray[step]
            bounds = options.pool_size
            if bounds is not None and self._shards > 1:
                bounds = pool_share(bounds, self._shard, self._shards)
            pool = self._pools[step] = ActorPool(self.spec, step, options, bounds)
        return pool

    def _batch_shape(self, step: str) -> tuple[int, float]:
        """A pool step's batches: most deliveries in one, and how long to gather them."""
        options = self._ray[step]
        if options.batch is not None:
            return options.batch.max_size, options.batch.max_wait_s
        return options.max_batch or FIRST_BATCH, 0.0

    def _gather(self, step: str, pending: _Pending) -> None:
        """Into the step's next batch: cut when full, or ``max_wait_s`` after it began."""
        gathered = self._gathered.setdefault(step, [])
        gathered.append(pending)
        most, wait = self._batch_shape(step)
        if len(gathered) >= most:
            self._cut_batch(step)
        elif step not in self._cut:
            loop = asyncio.get_running_loop()
            self._cut[step] = (loop.call_later(wait, self._cut_batch, step) if wait > 0
                               else loop.call_soon(self._cut_batch, step))

    def _cut_batch(self, step: str) -> None:
        handle = self._cut.pop(step, None)
        if handle is not None:
            handle.cancel()
        chunk = self._gathered.pop(step, [])
        if chunk:
            self._spawn(self._on_pool(step, chunk))

    async def _on_pool(self, step: str, chunk: list[_Pending]) -> None:
        """One batch on an actor of the step's pool: each delivery's future gets its own
        outcome; the actor's death (or a call past the visibility timeout, which kills it)
        fails them all."""
        pool = self._pool(step)
        pool.backlog += len(chunk)
        try:
            actor = await pool.acquire()
        except Exception as exc:
            pool.backlog -= len(chunk)
            _fail_all(chunk, crash_error(exc))
            return
        pool.backlog -= len(chunk)
        dead = False
        timeout = self._timeouts.get(step)
        try:
            ref = actor.run.remote(self._spec_arg,
                                   wire.deliveries_out([d for d, _ in chunk]))
            self._tally.count(step, "tasks")
            try:
                outcomes = await (asyncio.wait_for(asyncio.shield(ref), timeout)
                                  if timeout is not None else ref)
            except asyncio.TimeoutError:
                dead = True
                _fail_all(chunk, AttemptError(
                    f"step {step!r} ran past its visibility_timeout of {timeout}s; its "
                    "actor was stopped", "", "timeout"))
                return
            except Exception as exc:  # the actor gave no result: it died
                dead = True
                _fail_all(chunk, crash_error(exc))
                return
            _settle_all(chunk, outcomes)
        finally:
            pool.release(actor, dead=dead)
            _fail_all(chunk, AttemptError("the actor gave no outcome for this delivery"))

    # --- batches --------------------------------------------------------------------------
    async def _run_batch(self, step: str, chunk: list[_Pending]) -> None:
        """One batch task: each delivery's future gets its own outcome."""
        try:
            try:
                ref = self._options(run_batch, step).remote(
                    self._spec_arg, wire.deliveries_out([d for d, _ in chunk]))
            except Exception as exc:
                _fail_all(chunk, crash_error(exc))
                return
            self._tally.count(step, "tasks")
            try:
                outcomes = await ref
            except Exception as exc:  # the task gave no result: its worker died
                _fail_all(chunk, crash_error(exc))
                return
            _settle_all(chunk, outcomes)
        finally:
            # Nothing may wait forever: an attempt without an answer counts as failed.
            _fail_all(chunk, AttemptError("the batch task gave no outcome for this delivery"))

    def _slots(self) -> int:
        """How many step tasks the cluster runs at once (batches in flight), counted again
        every SLOTS_TTL seconds, as nodes come and go."""
        slots, counted = self._slot_count
        now = time.monotonic()
        if now - counted >= SLOTS_TTL:
            try:
                self._totals = ray.cluster_resources()  # type: ignore[no-untyped-call]
                cpus = self._totals.get("CPU", 1.0)
                per_task = self.spec.settings.task_num_cpus or 0.25
                # Each dispatcher shard fills its part of the cluster's slots.
                slots = max(1, int(cpus / per_task / self._shards))
                if self._shards > 1:
                    self._place(ray.nodes())  # type: ignore[no-untyped-call]
            except Exception:  # no answer from the cluster: keep the last count
                log.warning("could not count the cluster's CPUs", exc_info=True)
                slots = max(1, slots)
            self._slot_count = (slots, now)
        return slots

    def _limits(self, step: str) -> tuple[int | None, int | None]:
        """A step's most tasks in flight (what the cluster holds of the scarcest resource it
        asks for beyond CPUs; ``None``: only the shared window) and deliveries per task (its
        ``max_batch``; ``None``: sized by how long its batches take)."""
        options = self._ray.get(step)
        most = options.max_batch if options else None
        need = self._scarce.get(step)
        if not need:
            return None, most
        return max(1, int(min(self._totals.get(k, 0.0) / v for k, v in need.items()))), most

    def _place(self, nodes: list[dict[str, Any]]) -> None:
        """This shard's share of the nodes that run tasks (alive, with CPUs); the tasks'
        options are made again when it changes (a node came or went)."""
        runs_tasks = [n["NodeID"] for n in nodes
                      if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
        share = (tuple(node_share(runs_tasks, self._shard, self._shards))
                 if len(runs_tasks) > 1 else ())
        if share != self._share:
            self._share = share
            self._task_options.clear()

    def _options(self, task: Any, step: str) -> Any:
        """``task`` (a batch, or one delivery) with the step's name and its Ray options
        (CPUs, GPUs, memory, resources, runtime_env); Ray never retries it (max_retries=0):
        the engine's attempts are the only retries. With several shards, a step that asks
        for nothing scarce prefers this shard's nodes (and runs elsewhere when they are
        full), so each node keeps the task workers of one shard, not of every one."""
        opts = self._task_options.get((task, step))
        if opts is None:
            ray_options = self._ray.get(step, RayOptions())
            opts = self._task_options[task, step] = task.options(
                name=step, max_retries=0, retry_exceptions=False,
                **ray_options.task_options(self.spec.settings.task_num_cpus),
                **({} if step in self._scarce else self._prefer_share()))
        return opts

    def _prefer_share(self) -> dict[str, Any]:
        if not self._share:
            return {}
        prefer = In(*self._share)  # type: ignore[no-untyped-call]
        return {"scheduling_strategy": NodeLabelSchedulingStrategy(
            hard={}, soft={NODE_ID_LABEL_KEY: prefer})}

    def placement(self) -> list[str]:
        """The nodes this shard's tasks go to first (none: anywhere)."""
        return list(self._share)


def _settle_all(pending: list[_Pending], outcomes: list[Any]) -> None:
    """Each delivery's future gets its own outcome from a batch's answer."""
    for (_, fut), outcome in zip(pending, outcomes, strict=True):
        if fut.done():
            continue
        if outcome is None:
            fut.set_result(None)
        else:
            fut.set_exception(outcome_error(outcome))


def _fail_all(pending: list[_Pending], exc: Exception) -> None:
    for _, fut in pending:
        if not fut.done():
            fut.set_exception(exc)
