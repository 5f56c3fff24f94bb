"""Redis itself dies (``kill -9``) mid-run and comes back on the same port: the app resumes by
itself, with exact counts, every FIFO group in order, nothing left in flight, and no actor
restarted.

Each test runs its own ``redis-server`` (append-only file, fsync always, in a temporary folder)
so that killing it touches no other test; it is ended by the pid it started.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import ray
import redis

from raypipe import constants
from raypipe.state.backends.redis_items import read_item
from tests.conftest import Deploy, effect_record_keys, wait_for
from tests.runtime.conftest import FifoGroups, OwnRedis, resumes_exactly

APPS = Path(__file__).resolve().parent.parent / "apps"
FAULTS = APPS / "faults"
GUARANTEES = APPS / "guarantees"


def _read_run(db: redis.Redis, app: str, rid: str) -> dict[str, Any]:
    """The run's item as Redis has it now; empty while Redis is down."""
    try:
        return read_item(db, app, "runs", rid) or {}
    except redis.RedisError:
        return {}


def _stats(d: Any) -> dict[str, Any]:
    from raypipe.runtime.bridge import runtime_for

    return ray.get(runtime_for(d.spec).dispatcher.stats.remote())  # type: ignore[no-any-return]


def _actor_pids(d: Any) -> dict[str, int]:
    from raypipe import constants

    out = {}
    for name in (constants.DISPATCHER_ACTOR, constants.STATE_ACTOR, constants.STREAMS_ACTOR):
        handle = ray.get_actor(name, namespace=d.spec.namespace)
        out[name] = ray.get(handle.__ray_call__.remote(lambda _self: os.getpid()))
    return out


def test_redis_killed_mid_runresumes_exactly(deploy_app: Deploy, own_redis: OwnRedis) -> None:
    n = 2000
    d = deploy_app(FAULTS, state=own_redis.url)
    pids = _actor_pids(d)
    db = own_redis.client()
    name = d.spec.settings.name

    def run() -> dict[str, Any]:
        return _read_run(db, name, rid)

    r = httpx.post(f"{d.url}/runs", json={"n": n, "sleep_ms": 2}, timeout=60)
    assert r.status_code == 202, r.text
    rid = r.json()["run"]
    wait_for(lambda: run().get("done", 0) >= 200, timeout=120, message="progress")
    own_redis.kill()
    # The health route tells the truth: 503, naming the state backend.
    down = wait_for(lambda: (h := httpx.get(f"{d.url}/_raypipe/health", timeout=30))
                    .status_code == 503 and h.json(), timeout=60, message="health 503")
    assert down["checks"]["state"] != "ok" and down["checks"]["dispatcher"] == "ok", down
    time.sleep(4)  # the outage itself: deliveries, state writes and the journal wait it out
    own_redis.start()
    resumes_exactly(d, run, n)
    assert read_item(db, name, "completions", rid) == {"n": 1}
    stats = _stats(d)
    assert stats["steps"]["task"]["done"] == n and not stats["steps"]["task"].get(
        "dead_lettered")
    assert db.hlen(constants.pending_deliveries_key(name)) == 0
    wait_for(lambda: not effect_record_keys(db, name), timeout=30,
             message=lambda: f"every effect record dropped: {effect_record_keys(db, name)}")
    assert _actor_pids(d) == pids, "an actor was restarted"


def test_redis_killed_mid_fifo_run_keeps_every_group_in_order(
        deploy_app: Deploy, own_redis: OwnRedis) -> None:
    groups, per_group = 4, 100
    d = deploy_app(GUARANTEES, state=own_redis.url)
    pids = _actor_pids(d)
    fifo = FifoGroups(d, own_redis.client(), groups, per_group)
    fifo.send()
    fifo.wait_progress(60)
    own_redis.kill()
    time.sleep(4)
    own_redis.start()

    fifo.wait_all_in_order()
    wait_for(lambda: _stats(d)["in_flight"] == 0, timeout=60, message="nothing in flight")
    assert _stats(d)["steps"]["fifo"]["done"] == groups * per_group
    # A group still takes new messages after the outage.
    fifo.send(range(per_group, per_group + 1), only=[0])
    wait_for(lambda: fifo.seqs().get("g0", [])[-1:] == [per_group], timeout=60,
             message="a new message in a group that lived through the outage")
    assert _actor_pids(d) == pids, "an actor was restarted"


#: How long Redis stays down: longer than any health check's patience (Serve's replica check
#: fails a replica after 3 x 30 s of failures; ours answer within seconds).
LONG_OUTAGE = 45.0


def test_a_45s_outage_leaves_every_route_answering_and_the_app_resumes(
        deploy_app: Deploy, own_redis: OwnRedis) -> None:
    """Liveness is not readiness: through the whole outage every route answers (503 for what
    needs state, naming it; 200 for what does not), none 404s as a stopped replica did, and
    the run resumes exactly once Redis is back."""
    n = 300
    d = deploy_app(FAULTS, state=own_redis.url, backend_timeout_seconds=3)
    pids = _actor_pids(d)
    db = own_redis.client()
    name = d.spec.settings.name
    r = httpx.post(f"{d.url}/runs", json={"n": n, "sleep_ms": 20}, timeout=60)
    assert r.status_code == 202, r.text
    rid = r.json()["run"]

    def run() -> dict[str, Any]:
        return _read_run(db, name, rid)

    wait_for(lambda: run().get("done", 0) >= 30, timeout=120, message="progress")
    own_redis.kill()
    expected = {"/ping": {200}, "/_raypipe/": {200}, "/_raypipe/api/app": {200},
                "/_raypipe/health": {503}, f"/runs/{rid}": {503},
                "/_raypipe/api/state/runs": {503}}
    answers: dict[str, list[int]] = {path: [] for path in expected}
    slowest = 0.0
    end = time.monotonic() + LONG_OUTAGE
    while time.monotonic() < end:
        for path in expected:
            t0 = time.monotonic()
            reply = httpx.get(d.url + path, timeout=30)
            slowest = max(slowest, time.monotonic() - t0)
            answers[path].append(reply.status_code)
            if reply.status_code == 503 and path == "/_raypipe/health":
                body = reply.json()
                assert body["app"] == name and body["checks"]["state"] != "ok", body
            elif reply.status_code == 503:
                assert "state" in reply.json()["detail"], reply.text
                assert reply.headers["retry-after"]
    own_redis.start()
    # The first answers may come while the health check still sees Redis up.
    for path, statuses in answers.items():
        settled = statuses[2:]
        assert settled and set(settled) <= expected[path], (path, statuses)
    assert slowest < 3 + 5, f"a request took {slowest:.1f}s during the outage"

    resumes_exactly(d, run, n)
    assert read_item(db, name, "completions", rid) == {"n": 1}
    assert httpx.get(f"{d.url}/runs/{rid}", timeout=30).json()["done"] == n
    assert _actor_pids(d) == pids, "an actor was restarted"
