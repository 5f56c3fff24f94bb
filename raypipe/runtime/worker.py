"""The Ray task that runs one delivery. The app is imported once per worker process and kept;
the worker's event loop is kept too, so a delivery costs no process and no import."""

from __future__ import annotations

import asyncio
import traceback
from typing import Any

import ray

from raypipe.delivery import Delivery, execute
from raypipe.loader import load_app_cached
from raypipe.runtime.bridge import runtime_for
from raypipe.runtime.spec import AppSpec

__all__ = ["run_batch", "run_delivery"]

_loop: asyncio.AbstractEventLoop | None = None


def _worker_loop() -> asyncio.AbstractEventLoop:
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_loop)
    return _loop


@ray.remote
def run_delivery(spec: AppSpec, delivery: Delivery) -> dict[str, Any]:
    """Named after its step when submitted (``.options(name=step)``): the dashboard groups by it."""
    app = load_app_cached(spec.root, spec.settings)
    rt = runtime_for(spec)
    try:
        return _worker_loop().run_until_complete(execute(app, rt, delivery))
    finally:
        # The loop stops with the delivery: send its last log lines now, not next time.
        rt.telemetry.flush()


@ray.remote
def run_batch(spec: AppSpec, deliveries: list[Delivery]) -> list[dict[str, str] | None]:
    """Several deliveries of one step in one task, concurrently on the worker's loop: one task
    submission and, through the runtime's batching, one state call per turn of that loop for
    all of them. Each gets its own outcome (``None``, or its error), so each is retried or
    dead-lettered on its own."""
    app = load_app_cached(spec.root, spec.settings)
    rt = runtime_for(spec)

    async def run_all() -> list[Any]:
        return list(await asyncio.gather(*(execute(app, rt, d) for d in deliveries),
                                         return_exceptions=True))

    try:
        results = _worker_loop().run_until_complete(run_all())
    finally:
        rt.telemetry.flush()
    return [{"error": f"{type(r).__name__}: {r}",
             "traceback": "".join(traceback.format_exception(type(r), r, r.__traceback__))}
            if isinstance(r, BaseException) else None for r in results]
