"""Faults with the Redis backend: the state actor killed mid-fan-out comes back with every item,
and the workflow still completes with exact counts and one completion."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import ray

from tests.conftest import Deploy, wait_for

CONTRACT = Path(__file__).resolve().parent.parent / "apps" / "contract"


def test_state_actor_killed_mid_fan_out_loses_and_doubles_nothing(
        deploy_app: Deploy, redis_url: str) -> None:
    from raypipe import constants
    from raypipe.runtime.bridge import runtime_for

    d = deploy_app(CONTRACT, state=redis_url)  # a unique name: its own Redis keys
    rt = runtime_for(d.spec)
    n = 300
    r = httpx.post(f"{d.url}/orders/acme", timeout=120,
                   json={"customer": "acme", "lines": [{"sku": f"s{i}", "qty": 1}
                                                       for i in range(n)]})
    oid = r.json()["orderId"]

    def order() -> Any:
        try:
            return asyncio.run(rt.state.get("orders", oid))
        except ray.exceptions.RayError:  # the actor restarting: ask again
            return None

    wait_for(lambda: (order() or {}).get("done", 0) >= 20, timeout=60, message="progress")
    state = ray.get_actor(constants.STATE_ACTOR, namespace=d.spec.namespace)
    ray.kill(state, no_restart=False)  # killed mid-flight; Ray restarts it

    final = wait_for(lambda: (o := order()) and o["done"] == n and o, timeout=240,
                     interval=0.5, message=f"all {n} lines after the restart")
    assert len(final["lines_by_index"]) == n
    assert len(final["traces"]) == n  # no retried delivery appended twice
    done = wait_for(lambda: asyncio.run(rt.state.get("completions", oid)), timeout=60,
                    message="the completion")
    time.sleep(1.5)
    assert asyncio.run(rt.state.get("completions", oid))["count"] == 1 == done["count"]
    assert order()["done"] == n
    stats = ray.get(rt.dispatcher.stats.remote())["steps"]["process-line"]
    assert stats["done"] == n and not stats.get("dead_lettered")
