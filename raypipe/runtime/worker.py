"""The Ray tasks that run deliveries. The app is imported once per worker process and kept;
the worker's event loop is kept too, so a delivery costs no process and no import.

A task answers one outcome per delivery: ``None`` when it succeeded, else ``{"error",
"traceback", "cause"}``. A handler that calls ``sys.exit`` fails its attempt with the exit
code named (cause ``crash``) and leaves the worker, and the deliveries sharing it, running.
"""

from __future__ import annotations

import asyncio

import ray

from raypipe import wire
from raypipe.engine.delivery import Delivery
from raypipe.execution import Outcome, run_one
from raypipe.execution import run_batch as run_batch_handler
from raypipe.runtime import gc_tuning, shipping
from raypipe.runtime.bridge import runtime_for
from raypipe.runtime.spec import AppSpec, SpecArg, spec_of

__all__ = ["run_batch", "run_delivery", "run_here", "warm_worker"]

_loop: asyncio.AbstractEventLoop | None = None


def _worker_loop() -> asyncio.AbstractEventLoop:
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_loop)
    return _loop


def run_here(spec: AppSpec, deliveries: list[Delivery]) -> list[Outcome]:
    """Deliveries of one step in this process (a task's worker or a pool's actor): one call
    of a batch handler, else each on the loop concurrently."""
    app = shipping.load(spec)
    rt = runtime_for(spec)
    gc_tuning.settle()
    step = app.steps[deliveries[0].step]

    async def run_all() -> list[Outcome]:
        if step.config.ray.batch is not None:
            return await run_batch_handler(app, rt, deliveries)
        return list(await asyncio.gather(*(run_one(app, rt, d) for d in deliveries)))

    return _worker_loop().run_until_complete(run_all())


@ray.remote
def run_delivery(spec: AppSpec | SpecArg, delivery: wire.Wire) -> Outcome:
    """Named after its step when submitted (``.options(name=step)``): the dashboard groups by it.
    Deliveries travel as :mod:`raypipe.wire` lists, the spec pickled once (``spec_arg``)."""
    return run_here(spec_of(spec), [wire.delivery_in(delivery)])[0]


@ray.remote
def run_batch(spec: AppSpec | SpecArg, deliveries: list[wire.Wire]) -> list[Outcome]:
    """Several deliveries of one step in one task, concurrently on the worker's loop: one task
    submission and, through the runtime's batching, one state call per turn of that loop for
    all of them. Each gets its own outcome, so each is retried or dead-lettered on its own."""
    return run_here(spec_of(spec), wire.deliveries_in(deliveries))


@ray.remote
def warm_worker(spec: AppSpec) -> None:
    """Start a worker with the app imported and its runtime connected: the dispatcher runs a
    few when it starts, so the first workflow does not wait for workers to start and import
    the app (about 0.6 s of CPU each on small cores)."""
    shipping.load(spec)
    runtime_for(spec)
    gc_tuning.settle()
