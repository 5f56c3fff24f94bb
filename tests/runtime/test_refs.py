"""Values by reference on Ray: a 20 MB array crosses three steps through the object store
bit-identical, while the dispatcher and Redis see only its reference; the keeper frees it
after its workflow, and the object store is back where it started."""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

import httpx
import psutil
import ray
import redis

from raypipe import constants
from tests.conftest import APPS, wait_for

APP = APPS / "refs"
MB = 1 << 20


def _actor_pid(name: str, namespace: str) -> int:
    handle = ray.get_actor(name, namespace=namespace)
    return int(ray.get(handle.__ray_call__.remote(lambda _self: os.getpid())))


def _plasma_bytes() -> int:
    """Bytes in the object store of this (one-node) cluster."""
    from ray._private.internal_api import memory_summary

    text = memory_summary(stats_only=True)
    used = re.search(r"Plasma memory usage (\d+) MiB", text)
    assert used, text
    return int(used.group(1)) * MB


def test_an_array_crosses_three_steps_by_reference(deploy_app: Any) -> None:
    url = os.environ["REDIS_URL"]
    d = deploy_app(APP, state=url)
    ns = d.spec.namespace
    keeper_stats = lambda: ray.get(  # noqa: E731
        ray.get_actor(constants.OBJECTS_ACTOR, namespace=ns).stats.remote())
    r = redis.Redis.from_url(url)
    with httpx.Client(base_url=d.url, timeout=60) as client:
        def run(wid: str, mb: float, keep: bool = False) -> dict[str, Any]:
            assert client.post("/refs", json={"id": wid, "seed": 7, "mb": mb,
                                              "keep": keep}).status_code == 202
            def done() -> Any:
                got = client.get(f"/refs/{wid}")
                return got.json() if got.status_code == 200 else None

            return wait_for(done, timeout=120, message=f"workflow {wid}")  # type: ignore[no-any-return]

        run("warm", 0.01)  # workers started, the keeper too
        dispatcher = psutil.Process(_actor_pid(constants.DISPATCHER_ACTOR, ns))
        wait_for(lambda: keeper_stats()["objects"] == 0, timeout=60,
                 message="the warm-up's value freed")
        plasma0, redis0, rss0 = _plasma_bytes(), r.info("memory")["used_memory"], \
            dispatcher.memory_info().rss

        rec = run("big", 20)
        assert rec["sha_seen"] == rec["sha_sent"]
        assert (rec["type"], rec["size"]) == ("numpy.ndarray", 20 * MB)
        # Only the reference passed the dispatcher, the journal and state.
        assert r.info("memory")["used_memory"] - redis0 < 2 * MB
        assert dispatcher.memory_info().rss - rss0 < 8 * MB

        # Freed after its workflow: the keeper holds nothing, the object store is back.
        wait_for(lambda: keeper_stats() == {"objects": 0, "bytes": 0}, timeout=60,
                 message=lambda: f"the value freed: {keeper_stats()}")
        wait_for(lambda: _plasma_bytes() <= plasma0 + MB, timeout=60,
                 message=lambda: f"the object store back to {plasma0}: {_plasma_bytes()}")

        # One kept in state stays while its item names it, and goes when the item does.
        kept = run("kept", 1, keep=True)
        assert kept["sha_seen"] == kept["sha_sent"]
        assert keeper_stats()["objects"] == 1
        assert client.delete("/refs/kept").status_code == 204
        wait_for(lambda: keeper_stats()["objects"] == 0, timeout=60,
                 message="the kept value freed once its item went")


def test_a_replay_after_the_values_were_lost_reads_the_blob_store(deploy_app: Any) -> None:
    """With Redis state every put is also written to the blob store before it answers. The
    keeper killed (with it every value it held in the object store, as in a cluster restart),
    a dead letter replayed later still reads its value, from the blob store."""
    url = os.environ["REDIS_URL"]
    d = deploy_app(APP, state=url)
    ns = d.spec.namespace
    with httpx.Client(base_url=d.url, timeout=60, headers={"x-raypipe-admin": "1"}) as client:
        r = client.post("/refs/fragile", json={"id": "f", "text": "kept for a week"})
        assert r.status_code == 202
        ref_id = r.json()["ref"]["id"]
        wait_for(lambda: len(client.get("/_raypipe/dlq").json()) == 1, timeout=120,
                 message="the fragile step's message dead-lettered")
        ray.kill(ray.get_actor(constants.OBJECTS_ACTOR, namespace=ns))
        wait_for(lambda: _gone(constants.OBJECTS_ACTOR, ns), timeout=30,
                 message="the keeper gone")
        assert client.put("/_raypipe/api/state/refs/fixed", json=True).status_code == 200
        assert len(client.post("/_raypipe/dlq/replay").json()["replayed"]) == 1

        def seen() -> Any:
            got = client.get("/refs/f")
            return got.json() if got.status_code == 200 else None

        rec = wait_for(seen, timeout=120, message=lambda: (
            f"the replay's run: {client.get('/_raypipe/dlq').json()}"))
        assert rec == {"sha_seen": hashlib.sha256(b"kept for a week").hexdigest()}
        # The new keeper read it back from the blob store, and frees it (and its blob)
        # once nothing names it.
        keeper = ray.get_actor(constants.OBJECTS_ACTOR, namespace=ns)
        wait_for(lambda: ray.get(keeper.stats.remote())["objects"] == 0, timeout=60,
                 message="the replayed value freed")
        from raypipe.runtime.object_keeper import blob_store

        store = blob_store(d.spec)
        assert store is not None and ref_id not in store.ids()


def _gone(name: str, namespace: str) -> bool:
    try:
        ray.get_actor(name, namespace=namespace)
    except ValueError:
        return True
    return False
