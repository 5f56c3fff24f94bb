"""Sharding without Ray: who owns what (:mod:`raypipe.shards`), the cron lease, and an app of
three shards on :mod:`raypipe.testing` (the guarantees scenarios with three shards are in
tests/runtime/test_guarantees.py, on both runtimes)."""

from __future__ import annotations

import asyncio
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest

from raypipe.engine.clock import FakeClock
from raypipe.engine.delivery import Delivery
from raypipe.engine.lease import LEASE_SECONDS, MemoryLease, hold
from raypipe.messages import Message
from raypipe.shards import (
    ShardedState,
    ShardedStreams,
    delivery_shard,
    item_shard,
    merge_stats,
    message_shard,
    node_share,
    pinned_topics,
    pool_share,
    shard_of,
    stream_shard,
)
from raypipe.testing import TestApp
from raypipe.trigger_kind import TriggerKind
from tests.conftest import drop_app_keys

APPS = Path(__file__).resolve().parent / "apps"


def _message(mid: str, group: str | None = None, topic: str = "t") -> Message:
    return Message(id=mid, topic=topic, data={}, trace_id="tr", group_id=group)


def test_a_key_has_one_shard_in_every_process() -> None:
    # CRC-32, not Python's salted hash: every process routes a key alike.
    assert shard_of("order-17", 5) == zlib.crc32(b"order-17") % 5
    assert shard_of("anything", 1) == 0
    spread = {shard_of(f"m{i}", 4) for i in range(100)}
    assert spread == {0, 1, 2, 3}


def test_a_group_keeps_its_messages_in_one_shard_and_ids_spread_the_rest() -> None:
    k = 4
    assert {message_shard(_message(f"m{i}", "g1"), k) for i in range(50)} == {shard_of("g1", k)}
    assert len({message_shard(_message(f"m{i}"), k) for i in range(50)}) == k
    # A concurrency-limited step's topic is counted in one place.
    assert {message_shard(_message(f"m{i}", topic="lim"), k, frozenset({"lim"}))
            for i in range(50)} == {shard_of("topic:lim", k)}
    d = Delivery("cron:tick:1800000000", "tick", TriggerKind.CRON, None, "tr")
    assert delivery_shard(d, k) == shard_of(d.id, k)
    # Lengths keep (group, item) pairs apart that a plain join would merge.
    assert item_shard("a:b", "c", 1000) == shard_of("3:a:b:c", 1000)


def test_the_topics_of_concurrency_limited_steps_are_pinned() -> None:
    with TestApp(APPS / "guarantees") as app:
        # "limited" is taken by a step with concurrency=2; "fifo" and the rest have no limit.
        assert pinned_topics(app.app) == frozenset({"limited"})


@pytest.mark.parametrize(("bounds", "k", "parts"), [
    ((1, 2), 3, [(1, 1), (0, 1), (0, 1)]),   # max below K: every shard may run one
    ((0, 8), 3, [(0, 3), (0, 3), (0, 2)]),
    ((4, 4), 4, [(1, 1)] * 4),
    ((2, 9), 2, [(1, 5), (1, 4)]),
])
def test_a_pool_is_split_over_the_shards(bounds: tuple[int, int], k: int,
                                         parts: list[tuple[int, int]]) -> None:
    assert [pool_share(bounds, i, k) for i in range(k)] == parts


def test_each_shard_has_its_share_of_the_nodes() -> None:
    nodes = ["n3", "n1", "n2", "n5", "n4"]
    shares = [node_share(nodes, s, 2) for s in range(2)]
    assert shares == [["n1", "n3", "n5"], ["n2", "n4"]]  # disjoint, every node in one
    # Fewer nodes than shards: one node each, shared by turns.
    assert [node_share(["b", "a"], s, 3) for s in range(3)] == [["a"], ["b"], ["a"]]
    assert node_share([], 0, 2) == []


def test_stats_of_the_shards_add_up() -> None:
    parts = [{"in_flight": 2, "dead_letters": 1, "runs_crons": False, "version": "v",
              "oldest_in_flight": {"a": 1.0}, "steps": {"a": {"done": 3}},
              "pools": {"p": {"actors": 1, "busy": 0, "backlog": 2}}},
             {"in_flight": 1, "dead_letters": 0, "runs_crons": True, "version": "v",
              "oldest_in_flight": {"a": 4.0, "b": 2.0}, "steps": {"a": {"done": 2, "retries": 1}},
              "pools": {"p": {"actors": 2, "busy": 1, "backlog": 0}}}]
    merged = merge_stats(parts)
    assert merged["in_flight"] == 3 and merged["dead_letters"] == 1 and merged["runs_crons"]
    assert merged["steps"] == {"a": {"done": 5, "retries": 1}}
    assert merged["oldest_in_flight"] == {"a": 4.0, "b": 2.0}
    assert merged["pools"] == {"p": {"actors": 3, "busy": 1, "backlog": 2}}
    assert [s["in_flight"] for s in merged["shards"]] == [2, 1]


async def test_the_cron_lease_passes_on_when_its_holder_stops_renewing() -> None:
    clock = FakeClock()
    lease = MemoryLease(clock.monotonic)
    held: dict[str, list[bool]] = {"a": [], "b": []}
    a = asyncio.create_task(hold(lease, "a", clock, held["a"].append))
    await clock.settle()
    b = asyncio.create_task(hold(lease, "b", clock, held["b"].append))
    await clock.advance(LEASE_SECONDS * 3)
    assert held == {"a": [True], "b": []}  # renewed in time: never two holders
    a.cancel()  # the holder dies
    await clock.advance(LEASE_SECONDS - 0.5)
    assert held["b"] == []  # its term has not run out
    await clock.advance(LEASE_SECONDS / 3 + 1)
    assert held["b"] == [True]
    b.cancel()


def test_three_shards_in_process_fire_each_cron_tick_once() -> None:
    with TestApp(APPS / "shards", settings={"state": "memory"}) as app:
        assert len(app.runtime.engines) == 3
        app.advance(30)
        app.run_until_idle()
        ticks = app.state.get("ticks", "all")["due"]
        assert set(ticks.values()) == {1} and len(ticks) >= 30
        dues = sorted(map(int, ticks))
        assert dues == list(range(dues[0], dues[-1] + 1))
        assert sum(e.stats()["runs_crons"] for e in app.runtime.engines) == 1
        # One tally for the three, so a workflow is counted whole.
        assert all(e.outcomes is app.runtime.engine.outcomes for e in app.runtime.engines)


def test_a_sharded_state_lists_every_shard_and_keeps_an_item_in_one() -> None:
    from raypipe.runtime_protocols import Origin

    with TestApp(APPS / "shards", settings={"state": "memory"}) as app:
        rt = app.runtime
        for i in range(40):
            app._wait(rt.state.set("g", f"k{i}", i, Origin("t")))
        held = [app._wait(s.list("g")) for s in rt.state_services]
        assert sum(len(h) for h in held) == 40  # each item in one shard
        assert all(held), "every shard holds some"
        assert {i["id"] for i in held[item_shard("g", "k7", 3)]} >= {"k7"}
        assert [i["id"] for i in app.state.items("g")] == sorted(f"k{i}" for i in range(40))
        assert app.state.list_groups() == ["g"]
        assert isinstance(rt.state, ShardedState)
        app._wait(rt.state.clear("g", Origin("t")))
        assert app.state.items("g") == [] and app.state.list_groups() == []


def _groups_one_per_shard(stream: str, k: int) -> list[str]:
    """A group of ``stream`` in each of ``k`` shards, shard 0's first."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < k:
        found.setdefault(stream_shard(stream, f"g{i}", k), f"g{i}")
        i += 1
    return [found[s] for s in range(k)]


@pytest.mark.parametrize("state", ["memory", "redis"])
def test_a_stream_group_lives_in_one_shard_and_its_subscribers_follow_it(
        state: str, redis_url: str) -> None:
    """Three streams services: each group's items, triggers and subscribers in its shard;
    a stream's groups gathered; with Redis, each shard reads its own groups back after a
    restart, and K = 1 after K = 3 finds every item (the key space moved)."""
    from raypipe.runtime_protocols import Origin

    groups = _groups_one_per_shard("items", 3)
    name = f"stream-shards-{uuid.uuid4().hex[:8]}"
    url = "memory" if state == "memory" else redis_url
    o = Origin("t")

    async def scenario(rt: Any) -> list[list[tuple[str, Any]]]:
        subs = [await rt.relay().subscribe("items", g) for g in groups]
        item_sub = await rt.relay().subscribe("items", groups[2], "one")
        for n in range(3):
            for g in groups:
                await rt.streams.set("items", g, "one", {"n": n}, o)
        await rt.streams.send("items", {"groupId": groups[1]}, {"type": "ping", "data": 7}, o)
        seen: list[list[tuple[str, Any]]] = []
        for sub in [*subs, item_sub]:
            got: list[tuple[str, Any]] = []
            async for m in sub:
                e = m["event"]  # a change's type and data, or a sent event
                got.append((e["type"], e["data"] if "data" in e else e["event"]))
                if len(got) == (5 if sub.key == ("items", groups[1], None) else 4):
                    break
            seen.append(got)
        return seen

    try:
        with TestApp(APPS.parent / "apps" / "streams", settings={
                "name": name, "state": url, "shards": 3}) as app:
            rt = app.runtime
            assert isinstance(rt.streams, ShardedStreams)
            seen = app._wait(scenario(rt))
            changes = [("sync", [])] + [("create" if n == 0 else "update",
                                         {"n": n, "pad": "", "id": "one"}) for n in range(3)]
            assert seen[0] == changes and seen[2] == changes
            assert seen[1] == [*changes, ("event", {"type": "ping", "data": 7})]
            assert seen[3] == [("sync", None), *changes[1:]]  # an item's: sync is its value
            held = [app._wait(s.list_groups("items")) for s in rt.stream_services]
            assert held == [[g] for g in groups]  # each group in its shard alone
            assert app.streams.list_groups("items") == sorted(groups)
            assert [app.streams.get("items", g, "one")["n"] for g in groups] == [2, 2, 2]
            # A stream trigger fires from the shard that holds its group.
            app._wait(rt.streams.set("items", "counted", "c", {"n": 9}, o))
            app._wait(rt.streams.update("items", "counted", "c",
                                        [{"type": "increment", "path": "n"}], o))
            app.run_until_idle()
            assert app.state.get("at-ten", "c") == {"fired": 1}
        if state == "memory":
            return
        with TestApp(APPS.parent / "apps" / "streams", settings={
                "name": name, "state": url, "shards": 3}) as app:
            held = [app._wait(s.list_groups("items")) for s in app.runtime.stream_services]
            assert sorted(g for part in held for g in part) == sorted([*groups, "counted"])
            assert all(stream_shard("items", g, 3) == i for i, part in enumerate(held)
                       for g in part)
        with TestApp(APPS.parent / "apps" / "streams", settings={
                "name": name, "state": url, "shards": 1}) as app:
            assert app.streams.list_groups("items") == sorted([*groups, "counted"])
            assert [app.streams.get("items", g, "one")["n"] for g in groups] == [2, 2, 2]
    finally:
        if state != "memory":
            drop_app_keys(redis_url, name)


def test_a_ray_raypipe_starts_for_shards_keeps_their_workers() -> None:
    from raypipe.runtime.deploy import shard_workers_env
    from raypipe.settings import Settings

    assert shard_workers_env(Settings()) == {}
    # Four shards, each with its own workers (Ray gives each detached actor's tasks their
    # own), tasks of 0.25 CPU on 2 CPUs: up to 32 workers, none ended while idle.
    assert shard_workers_env(Settings(shards=4), cpus=2) == {
        "RAY_num_workers_soft_limit": "32"}


async def test_a_tick_is_recorded_as_fired_with_its_delivery(redis_url: str) -> None:
    """The shard that accepts a tick's delivery records the tick in the same transaction: a
    shard taking the schedules over reads it and does not fire it again."""
    import uuid

    from raypipe.engine.cron import tick_delivery, tick_of
    from raypipe.engine.redis_journal import RedisJournal

    app = f"ticks-{uuid.uuid4().hex[:8]}"
    journal = RedisJournal(redis_url, app, shard=1, shards=2)
    try:
        await journal.start()
        tick = tick_delivery("tick", 1_800_000_000.0)
        assert tick_of(tick) == ("tick", 1_800_000_000.0)
        await journal.accepted([tick], [])
        assert await journal.last_tick("tick") == 1_800_000_000.0
        assert [d.id for d in await journal.pending()] == [tick.id]
        # The other shard's pending deliveries are what it deduplicates against.
        other = RedisJournal(redis_url, app, shard=0, shards=2)
        assert await other.other_shards_owners() == [tick.id]
        await other.close()
    finally:
        await journal.close()
        drop_app_keys(redis_url, app)


async def test_a_batch_of_messages_goes_to_each_shard_in_order() -> None:
    from collections.abc import Sequence

    from raypipe.shards import ShardedBus

    class Recorder:
        def __init__(self) -> None:
            self.got: list[list[str]] = []

        async def publish(self, messages: Sequence[Message]) -> None:
            self.got.append([m.id for m in messages])

    buses = [Recorder() for _ in range(3)]
    with TestApp(APPS / "guarantees") as app:
        bus = ShardedBus(buses, app.app)
    batch = [_message(f"m{i}", group="g" if i % 2 else None, topic="t") for i in range(30)]
    await bus.publish(batch)
    for i, b in enumerate(buses):  # one call per shard, each shard's messages in batch order
        mine = [m.id for m in batch if message_shard(m, 3) == i]
        assert b.got == ([mine] if mine else [])
    before = [list(b.got) for b in buses]
    await bus.publish(batch[:1])  # an enqueue: straight to its shard
    home = message_shard(batch[0], 3)
    assert [b.got for b in buses] == [
        before[i] + ([["m0"]] if i == home else []) for i in range(3)]
