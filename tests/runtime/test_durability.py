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


def test_dead_letters_survive_a_dispatcher_restart(deploy_app: Deploy, redis_url: str) -> None:
    from raypipe import constants
    from raypipe.context import publish
    from raypipe.loader import load_app_cached
    from raypipe.runtime.bridge import runtime_for

    d = deploy_app(CONTRACT, state=redis_url)
    rt = runtime_for(d.spec)
    app = load_app_cached(d.spec.root, d.spec.settings)
    asyncio.run(publish(app, rt, "doomed", {"id": "kept"}, trace_id="t"))

    def letters() -> list[dict[str, Any]]:
        try:
            return asyncio.run(rt.dead_letters.list())
        except ray.exceptions.RayError:
            return []

    [before] = wait_for(letters, timeout=60, message="the dead letter")
    ray.kill(ray.get_actor(constants.DISPATCHER_ACTOR, namespace=d.spec.namespace),
             no_restart=False)
    [after] = wait_for(letters, timeout=60, message="the dead letter after the restart")
    assert after["id"] == before["id"] and after["errors"] == before["errors"]
    assert after["payload"] == {"id": "kept"}
