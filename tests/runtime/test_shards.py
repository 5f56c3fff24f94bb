"""An app of three shards (``shards = 3``: three dispatcher, state and streams actors) under
the faults a single one is held to: a shard's dispatcher killed mid-run, a state shard killed,
a streams shard killed, Redis killed and restarted. Exact counts, every FIFO group in order,
each workflow counted once, nothing left in flight; the work really spread over the shards;
cron fires once per tick, also after the shard that ran it died."""

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
STREAMS = APPS / "streams"
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


def _counted(d: Any, completed: int) -> None:
    """The workflows counted are ``completed``, none dead-lettered, and final: no shard
    holds a part of a trace still to count."""
    def workflows() -> tuple[int, int, list[int]]:
        per_shard = _per_shard(d)
        totals = [s["steps"].get("*", {}) for s in per_shard]
        return (sum(t.get("workflows_completed", 0) for t in totals),
                sum(t.get("workflows_dead_lettered", 0) for t in totals),
                [s["trace_parts"] for s in per_shard])

    wait_for(lambda: workflows() == (completed, 0, [0] * K), timeout=60,
             message=lambda: f"{completed} workflows counted, nothing held: {workflows()}")


def test_three_shards_count_each_workflow_once(deploy_app: Deploy) -> None:
    """Concurrent workflows whose deliveries spread over three dispatchers: each counted
    once, by its trace's home, once its last delivery (the state trigger's) finished."""
    from typer.testing import CliRunner

    from raypipe.cli import app as cli
    from raypipe.runtime.bridge import runtime_for

    runs = 12
    d = deploy_app(FAULTS, shards=K)
    rt = runtime_for(d.spec)
    rids = [_start_run(d, 40) for _ in range(runs)]
    wait_for(lambda: all(asyncio.run(rt.state.get("completions", r)) for r in rids),
             timeout=120, message="every run's completion")
    _counted(d, completed=runs)
    # The homes are spread: more than one shard counted some.
    counted = [s["steps"].get("*", {}).get("workflows_completed", 0) for s in _per_shard(d)]
    assert sum(1 for c in counted if c) > 1, counted
    assert [asyncio.run(rt.state.get("completions", r)) for r in rids] == [{"n": 1}] * runs
    shown = CliRunner().invoke(cli, ["status", str(FAULTS)], env={
        "RAYPIPE_NAME": d.spec.settings.name, "RAYPIPE_SHARDS": str(K)})
    assert shown.exit_code == 0, shown.output
    assert f"workflows   {runs} completed, 0 with a dead letter" in shown.output, shown.output


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
    # The run is one workflow, counted once by the shard that is its trace's home.
    _counted(d, completed=1)
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
    # Each tick is a workflow of its own, counted by its trace's home.
    [line] = [ln for ln in shown.output.splitlines() if ln.startswith("workflows")]
    assert int(line.split()[1]) >= len(after), line
    assert all(f"raypipe:{kind}:{i} alive" in shown.output
               for kind in ("dispatcher", "state", "streams") for i in range(1, K))


def test_three_shards_spread_stream_groups_and_a_killed_one_loses_nothing(
        deploy_app: Deploy, redis_url: str) -> None:
    """Three streams actors, each holding the groups of its shard: WebSocket subscribers of
    a group in each get their group's changes from its actor; the streams actor of one is
    killed mid-stream: its subscribers are told to join again (the others go on), its items
    come back from Redis, and a stream trigger fires from a shard other than 0."""
    import websockets

    from raypipe import constants
    from raypipe.runtime.bridge import runtime_for
    from raypipe.runtime_protocols import Origin
    from raypipe.shards import ShardedStreams, stream_shard

    d = deploy_app(STREAMS, state=redis_url, shards=K)
    rt = runtime_for(d.spec)
    assert isinstance(rt.streams, ShardedStreams)
    groups: dict[int, str] = {}
    for i in range(100):
        groups.setdefault(stream_shard("items", f"g{i}", K), f"g{i}")
    assert sorted(groups) == list(range(K))
    handles = [ray.get_actor(constants.shard_actor(constants.STREAMS_ACTOR, i),
                             namespace=d.spec.namespace) for i in range(K)]
    o = Origin("test")
    url = d.url.replace("http://", "ws://") + "/streams"

    async def next_event(ws: Any) -> tuple[str, Any]:
        m = json.loads(await asyncio.wait_for(ws.recv(), 60))
        return m["event"]["type"], m["event"].get("data")

    async def scenario() -> None:
        sockets = [await websockets.connect(url) for _ in range(K)]
        try:
            for shard, ws in enumerate(sockets):
                await ws.send(json.dumps({"type": "join", "data": {
                    "streamName": "items", "groupId": groups[shard], "subscriptionId": "s"}}))
                assert await next_event(ws) == ("sync", [])
            for n in range(5):
                for shard in range(K):
                    await rt.streams.set("items", groups[shard], "x", {"n": n}, o)
            for ws in sockets:
                assert [await next_event(ws) for _ in range(5)] == [
                    ("create" if n == 0 else "update", {"n": n, "pad": "", "id": "x"})
                    for n in range(5)]
            # Each actor holds its own shard's group and nothing else.
            held = await asyncio.gather(*(h.list_groups.remote("items") for h in handles))
            assert held == [[groups[i]] for i in range(K)]
            assert await rt.streams.list_groups("items") == sorted(groups.values())

            victim = 1
            ray.kill(handles[victim], no_restart=False)
            kind, data = await next_event(sockets[victim])
            assert kind == "error" and "subscribe again" in data["message"], data
            # The others' subscriptions go on meanwhile.
            for shard in (0, 2):
                await rt.streams.set("items", groups[shard], "x", {"n": 10}, o)
                assert await next_event(sockets[shard]) == (
                    "update", {"n": 10, "pad": "", "id": "x"})
            # The killed shard's items come back from Redis; a new subscriber syncs them.
            wait_for(lambda: ray.get(handles[victim].ready.remote(), timeout=30), timeout=60,
                     message="the streams shard back")
            await sockets[victim].send(json.dumps({"type": "join", "data": {
                "streamName": "items", "groupId": groups[victim], "subscriptionId": "s"}}))
            assert await next_event(sockets[victim]) == ("sync", [{"n": 4, "pad": "", "id": "x"}])
            await rt.streams.set("items", groups[victim], "x", {"n": 11}, o)
            assert await next_event(sockets[victim]) == (
                "update", {"n": 11, "pad": "", "id": "x"})
            # A stream trigger fires from the shard holding its group.
            await rt.streams.set("items", "counted", "c", {"n": 9}, o)
            await rt.streams.update("items", "counted", "c",
                                    [{"type": "increment", "path": "n"}], o)
        finally:
            for ws in sockets:
                await ws.close()

    asyncio.run(scenario())
    db = redis.Redis.from_url(redis_url, decode_responses=True)
    wait_for(lambda: read_item(db, d.spec.settings.name, "at-ten", "c", shards=K),
             timeout=60, message="the stream trigger's step")
    assert read_item(db, d.spec.settings.name, "at-ten", "c", shards=K) == {"fired": 1}
    shard = stream_shard("items", "counted", K)
    assert read_item(db, d.spec.settings.name, constants.stream_group("items", "counted"), "c",
                     space=constants.STREAMS_SPACE, shards=K) == {"n": 10, "pad": "", "id": "c"}
    # The items of each group lie under its shard's hash tag.
    assert db.hexists(constants.state_group_key(
        d.spec.settings.name, constants.stream_group("items", "counted"),
        constants.STREAMS_SPACE, shard), "c")


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
