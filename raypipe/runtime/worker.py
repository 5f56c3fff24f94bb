"""The Ray task that runs one delivery. The app is imported once per worker process and kept;
the worker's event loop is kept too, so a delivery costs no process and no import."""

from __future__ import annotations

import asyncio
from typing import Any

import ray

from raypipe.delivery import Delivery, execute
from raypipe.loader import load_app_cached
from raypipe.runtime.bridge import runtime_for
from raypipe.runtime.spec import AppSpec

__all__ = ["run_delivery"]

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
