"""An app of three shards (``shards = 3``: three dispatcher and three state actors) under the
faults a single one is held to: a shard's dispatcher killed mid-run, a state shard killed,
Redis killed and restarted. Exact counts, every FIFO group in order, nothing left in flight;
the work really spread over the shards; cron fires once per tick, also after the shard that
ran it died."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import ray
import redis

from raypipe.state.backends.redis_items import read_item
from tests.conftest import Deploy, effect_record_keys, wait_for
from tests.runtime.conftest import FifoGroups, OwnRedis, resumes_exactly

APPS = Path(__file__).resolve().parent.parent / "apps"
FAULTS = APPS / "faults"
GUARANTEES = APPS / "guarantees"
SHARDS = APPS / "shards"
K = 3


def _per_shard(d: Any) -> list[dict[str, Any]]:
    from raypipe.runtime.bridge import runtime_for

    return ray.get([h.stats.remote() for h in runtime_for(d.spec).dispatchers])  # type: ignore[no-any-return]


def _stats(d: Any) -> dict[str, Any]:
    from raypipe.runtime.bridge import runtime_for

    return asyncio.run(runtime_for(d.spec).stats())  # type: ignore[no-any-return]


def _kill(d: Any, name: str, shard: int) -> None:
    from raypipe import constants

    handle = ray.get_actor(constants.shard_actor(name, shard), namespace=d.spec.namespace)
    ray.kill(handle, no_restart=False)  # mid-run; Ray restarts it


def _nothing_left(d: Any, db: redis.Redis) -> None:
    name = d.spec.settings.name
    wait_for(lambda: _stats(d)["in_flight"] == 0, timeout=120,
             message=lambda: f"nothing in flight: {_stats(d)['in_flight']} still are")
    from raypipe import constants

    for shard in range(K):
        assert db.hlen(constants.pending_deliveries_key(name, shard)) == 0
        assert db.hlen(constants.dead_letters_key(name, shard)) == 0
    wait_for(lambda: not effect_record_keys(db, name), timeout=30,
             message=lambda: f"every effect record dropped: {effect_record_keys(db, name)}")


def _start_run(d: Any, n: int) -> str:
    """A run of the faults app: ``n`` tasks; its id."""
    r = httpx.post(f"{d.url}/runs", json={"n": n, "sleep_ms": 2}, timeout=60)
    assert r.status_code == 202, r.text
    return str(r.json()["run"])


def _completes_once(d: Any, db: Any, rid: str, run: Any, n: int) -> None:
    """Every task of the run done once, its completion fired once, nothing left behind."""
    name = d.spec.settings.name
    resumes_exactly(d, run, n)
    wait_for(lambda: read_item(db, name, "completions", rid, shards=K), timeout=60,
             message="the completion")
    _nothing_left(d, db)
    assert read_item(db, name, "completions", rid, shards=K) == {"n": 1}


def test_three_shards_lose_and_double_nothing_through_every_fault(
        deploy_app: Deploy, own_redis: OwnRedis) -> None:
    from raypipe import constants

    n = 1500
    d = deploy_app(FAULTS, state=own_redis.url, shards=K)
    db = own_redis.client()
    name = d.spec.settings.name

    def run() -> dict[str, Any]:
        try:
            return read_item(db, name, "runs", rid, shards=K) or {}
        except redis.RedisError:
            return {}

    rid = _start_run(d, n)
    wait_for(lambda: run().get("done", 0) >= 150, timeout=120, message="progress")
    _kill(d, constants.DISPATCHER_ACTOR, 1)
    wait_for(lambda: run().get("done", 0) >= 500, timeout=180, message="progress after it")
    # The run's item lives in one state shard: kill that one.
    from raypipe.shards import item_shard

    _kill(d, constants.STATE_ACTOR, item_shard("runs", rid, K))
    wait_for(lambda: run().get("done", 0) >= 800, timeout=180, message="progress after it")
    own_redis.kill()
    time.sleep(4)  # the outage itself: every shard waits it out
    own_redis.start()

    _completes_once(d, db, rid, run, n)
    # Each shard ran its part: the run's tasks spread over the three (the tally, not the
    # count: a killed dispatcher's last interval of it is lost).
    done = [s["steps"].get("task", {}).get("done", 0) for s in _per_shard(d)]
    assert all(x > n / (3 * K) for x in done), done


def test_three_shards_keep_every_fifo_group_in_order_through_a_dispatcher_kill(
        deploy_app: Deploy, own_redis: OwnRedis) -> None:
    from raypipe import constants
    from raypipe.shards import shard_of

    groups, per_group = 6, 60
    d = deploy_app(GUARANTEES, state=own_redis.url, shards=K)
    assert {shard_of(f"g{g}", K) for g in range(groups)} == set(range(K))
    db = own_redis.client()
    fifo = FifoGroups(d, db, groups, per_group)
    fifo.send()
    fifo.wait_progress(60)
    _kill(d, constants.DISPATCHER_ACTOR, shard_of("g0", K))
    own_redis.kill()
    time.sleep(4)
    own_redis.start()
    fifo.wait_all_in_order()
    # (Not the tally's count of done: a killed dispatcher's last interval of it is lost.)
    _nothing_left(d, db)


def test_cron_fires_once_per_tick_with_three_shards_and_after_its_owner_dies(
        deploy_app: Deploy, redis_url: str) -> None:
    from raypipe import constants
    from raypipe.engine.lease import LEASE_SECONDS
    from raypipe.runtime.bridge import runtime_for

    d = deploy_app(SHARDS, state=redis_url)
    rt = runtime_for(d.spec)
    db = redis.Redis.from_url(redis_url, decode_responses=True)

    def dues() -> dict[int, int]:
        item = read_item(db, d.spec.settings.name, "ticks", "all", shards=K) or {}
        return {int(k): v for k, v in item.get("due", {}).items()}

    def owners() -> list[int]:
        return [i for i, s in enumerate(_per_shard(d)) if s["runs_crons"]]

    wait_for(lambda: len(dues()) >= 4, timeout=60, message="four ticks")
    [owner] = owners()
    assert _per_shard(d)[owner]["steps"]["tick"]["done"] >= 1
    ray.kill(ray.get_actor(constants.shard_actor(constants.DISPATCHER_ACTOR, owner),
                           namespace=d.spec.namespace), no_restart=False)
    killed_at = time.time()
    # A lease renewed a third of a term before the kill runs out at most a term after it.
    handover = killed_at + LEASE_SECONDS * 4 / 3 + 1
    wait_for(lambda: max(dues()) > handover + 3, timeout=60,
             message=lambda: f"ticks after the owner died: {sorted(dues())[-3:]}")
    assert len(owners()) == 1
    fired = dues()
    assert set(fired.values()) == {1}, f"a tick fired twice: {fired}"
    # Every tick due while a live shard held the lease fired: up to the kill, and once
    # the lease passed on (the tick missed in between is caught up once, not each).
    first, last = min(fired), max(fired)
    missing = [t for t in range(first, last + 1) if t not in fired]
    assert all(killed_at - 1 <= t <= handover for t in missing), missing
    # The shard that took the schedules over runs the ticks' deliveries itself: it counted
    # at least every tick due after the handover.
    [new_owner] = owners()
    done = [s["steps"].get("tick", {}).get("done", 0) for s in _per_shard(d)]
    after = [t for t in fired if t > handover]
    assert after and done[new_owner] >= len(after), (done, owner, new_owner, after)
    assert json.loads(json.dumps(asyncio.run(rt.stats())))["runs_crons"] is True
    # `raypipe status` shows the shards, and which runs cron.
    from typer.testing import CliRunner

    from raypipe.cli import app as cli

    shown = CliRunner().invoke(cli, ["status", str(SHARDS)], env={
        "RAYPIPE_NAME": d.spec.settings.name, "RAYPIPE_STATE_URL": redis_url})
    assert shown.exit_code == 0, shown.output
    [line] = [ln for ln in shown.output.splitlines() if ln.startswith("shards")]
    assert line.startswith(f"shards      {K}: in flight ") and line.endswith(
        f"cron in shard {owners()[0]}"), line
    assert "workflows   not counted with several shards" in shown.output
    assert all(f"raypipe:{kind}:{i} alive" in shown.output
               for kind in ("dispatcher", "state") for i in range(1, K))


def test_three_shards_on_a_redis_cluster_lose_and_double_nothing(
        deploy_app: Deploy, redis_cluster_url: str) -> None:
    """The same app on a Redis Cluster of three primaries: every write keeps to its shard's
    slot (the cluster refuses a transaction over two), through a dispatcher shard and a state
    shard killed mid-run; the app's keys spread over the cluster's primaries."""
    from raypipe import constants
    from raypipe.shards import item_shard
    from tests.conftest import _sync_client, app_keys, drop_app_keys

    n = 600
    d = deploy_app(FAULTS, state=redis_cluster_url, shards=K)
    db = _sync_client(redis_cluster_url)
    name = d.spec.settings.name
    try:
        def run() -> dict[str, Any]:
            return read_item(db, name, "runs", rid, shards=K) or {}

        rid = _start_run(d, n)
        wait_for(lambda: run().get("done", 0) >= 100, timeout=120, message="progress")
        _kill(d, constants.DISPATCHER_ACTOR, 2)
        wait_for(lambda: run().get("done", 0) >= 250, timeout=180, message="progress after it")
        _kill(d, constants.STATE_ACTOR, item_shard("runs", rid, K))
        _completes_once(d, db, rid, run, n)
        owners = {db.keyslot(key) for key in app_keys(redis_cluster_url, name)
                  if "{" in key}
        assert len(owners) > 1, "every shard's keys in one slot"
    finally:
        db.close()
        drop_app_keys(redis_cluster_url, name)
