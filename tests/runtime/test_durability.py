"""Faults with the Redis backend: the state, dispatcher and streams actors killed with
``ray.kill(..., no_restart=False)`` come back with every item, delivery, dead letter and cron
tick; workflows in flight complete with exact counts and one completion."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import ray

from tests.conftest import Deploy, wait_for

APPS = Path(__file__).resolve().parent.parent / "apps"
CONTRACT = APPS / "contract"
STREAMS = APPS / "streams"


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
    from raypipe.enqueue import publish
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


def test_dispatcher_killed_mid_fan_out_completes_the_workflow(
        deploy_app: Deploy, redis_url: str) -> None:
    """Killed while the HTTP handler is still enqueuing: its tasks die with it (their owner),
    the handler's enqueue waits for the restart, and the restarted dispatcher recovers the
    journaled deliveries by itself, with no caller needed to wake it."""
    from raypipe import constants
    from raypipe.runtime.bridge import runtime_for

    d = deploy_app(CONTRACT, state=redis_url)
    rt = runtime_for(d.spec)
    n = 300
    with ThreadPoolExecutor(1) as pool:
        post = pool.submit(httpx.post, f"{d.url}/orders/acme", timeout=240, json={
            "customer": "acme", "lines": [{"sku": f"s{i}", "qty": 1} for i in range(n)]})

        def order() -> Any:
            groups = asyncio.run(rt.state.list("orders"))
            return groups[0]["data"] if groups else {}

        wait_for(lambda: order().get("done", 0) >= 20, timeout=60, message="progress")
        assert order()["done"] < n / 2, "the kill must come mid-fan-out"
        ray.kill(ray.get_actor(constants.DISPATCHER_ACTOR, namespace=d.spec.namespace),
                 no_restart=False)
        r = post.result()
    assert r.status_code == 202, r.text
    oid = r.json()["orderId"]

    final = wait_for(lambda: (o := order()) and o["done"] == n and o, timeout=240,
                     interval=0.5, message=f"all {n} lines after the restart")
    assert len(final["lines_by_index"]) == n
    assert len(final["traces"]) == n  # no line applied twice
    done = wait_for(lambda: asyncio.run(rt.state.get("completions", oid)), timeout=60,
                    message="the completion")
    time.sleep(1.5)
    assert asyncio.run(rt.state.get("completions", oid))["count"] == 1 == done["count"]

    def settled() -> Any:
        s = ray.get(rt.dispatcher.stats.remote())
        return s if s["in_flight"] == 0 else None

    stats = wait_for(settled, timeout=60, message="nothing left in flight")
    assert not stats["steps"].get("process-line", {}).get("dead_lettered")


def test_stream_items_survive_a_streams_actor_restart(deploy_app: Deploy,
                                                      redis_url: str) -> None:
    from raypipe import constants
    from raypipe.effects import Effect
    from raypipe.runtime.bridge import runtime_for
    from raypipe.runtime_protocols import Origin

    d = deploy_app(STREAMS, state=redis_url)
    streams = runtime_for(d.spec).streams
    inc = [{"type": "increment", "path": "n"}]
    asyncio.run(streams.set("items", "g", "a", {"n": 1}, Origin("t", "s", Effect("d", "e1"))))
    first = asyncio.run(streams.update("items", "g", "a", inc, Origin("t", "s", Effect("d", "e2"))))
    asyncio.run(streams.set("items", "g", "b", {"n": 5}, Origin("t", "s", Effect("d", "e3"))))
    ray.kill(ray.get_actor(constants.STREAMS_ACTOR, namespace=d.spec.namespace),
             no_restart=False)

    def items() -> Any:
        try:
            return asyncio.run(streams.list("items", "g"))
        except ray.exceptions.RayError:  # still restarting
            return None

    assert wait_for(items, timeout=60, message="the items after the restart") == [
        {"n": 2, "pad": "", "id": "a"}, {"n": 5, "pad": "", "id": "b"}]
    assert asyncio.run(streams.list_groups("items")) == ["g"]
    # A retried delivery repeating a write made before the restart changes nothing.
    again = asyncio.run(streams.update("items", "g", "a", inc, Origin("t", "s", Effect("d", "e2"))))
    assert tuple(again) == tuple(first)
    assert asyncio.run(streams.get("items", "g", "a"))["n"] == 2
    # A new write is applied, and kept.
    asyncio.run(streams.update("items", "g", "a", inc, Origin("t", "s", Effect("d", "e4"))))
    assert asyncio.run(streams.get("items", "g", "a"))["n"] == 3


def test_a_cron_tick_missed_while_down_fires_once(deploy_app: Deploy, redis_url: str) -> None:
    """The dispatcher keeps each cron step's last tick in Redis: started after a pause it
    fires the latest missed tick once, and a restart after that does not fire it again."""
    import redis
    from croniter import croniter

    from raypipe import constants
    from raypipe.runtime.bridge import runtime_for

    name = f"contract-{uuid.uuid4().hex[:8]}"
    this_year = croniter("0 0 1 1 *", time.time()).get_prev(float)
    last_year = croniter("0 0 1 1 *", this_year - 1).get_prev(float)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.hset(constants.cron_ticks_key(name), "new-year", repr(last_year))

    d = deploy_app(CONTRACT, state=redis_url, name=name)
    rt = runtime_for(d.spec)

    def fired() -> Any:
        try:
            return asyncio.run(rt.state.get("new-year", "all"))
        except ray.exceptions.RayError:
            return None

    assert wait_for(fired, timeout=60, message="the missed tick")["n"] == 1
    assert float(client.hget(constants.cron_ticks_key(name), "new-year")) == this_year
    ray.kill(ray.get_actor(constants.DISPATCHER_ACTOR, namespace=d.spec.namespace),
             no_restart=False)
    wait_for(lambda: ray.get(rt.dispatcher.stats.remote())["steps"].get("tick"), timeout=60,
             message="the restarted dispatcher's cron")
    time.sleep(2)
    assert fired()["n"] == 1
    client.delete(constants.cron_ticks_key(name))
