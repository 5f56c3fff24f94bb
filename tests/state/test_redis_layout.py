"""The Redis layout: keys written by earlier layouts are moved (nothing lost, no write applied
twice by a delivery that was in flight across the upgrade), and a key space follows a change
of ``shards`` (items and the records of writes to them go to the shards that own them now),
on one Redis and on a Redis Cluster."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from raypipe import constants
from raypipe.constants import V2Keys
from raypipe.effects import Effect
from raypipe.engine.delivery import Delivery
from raypipe.engine.records import DeadLetter
from raypipe.engine.redis_journal import RedisJournal
from raypipe.errors import StateLayoutError
from raypipe.shards import item_shard
from raypipe.state.backends.redis import RedisBackend
from raypipe.trigger_kind import TriggerKind
from tests.conftest import _sync_client, drop_app_keys

INC = [{"type": "increment", "path": "n"}]


@pytest.fixture
def app(redis_url: str) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:8]}"
    yield name
    drop_app_keys(redis_url, name)


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Any]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def _listed(backends: list[RedisBackend], group: str) -> list[str]:
    ids = []
    for b in backends:
        ids += [i["id"] for i in await b.list(group)]
    return sorted(ids)


def _head(value: dict[str, Any], split: list[str], version: int = 1) -> str:
    return json.dumps({"v": {k: v for k, v in value.items() if k not in split}, "s": split,
                       "n": version})


async def test_layout_1_field_keys_are_moved_and_ambiguous_ones_refused(
        redis_url: str, app: str, raw: Any) -> None:
    # An item as layout 1 wrote it: the head in the group's hash, a field's hash named with
    # U+001F between the ids.
    await raw.hset(V2Keys.group(app, "g", "state"), "k", _head({}, ["profile"]))
    await raw.sadd(V2Keys.groups(app, "state"), "g")
    await raw.hset(f"{V2Keys.fields_prefix(app, 'state')}g\x1fk\x1fprofile",
                   mapping={"name": json.dumps("alice")})
    b = RedisBackend(redis_url, app)
    assert await b.get("g", "k") == {"profile": {"name": "alice"}}
    assert await raw.hlen(constants.state_field_key(app, "g", "k", "profile")) == 1
    assert [k async for k in raw.scan_iter(f"raypipe:{app}:*")] == [constants.layout_key(app)]
    assert await raw.get(constants.layout_key(app)) == "3:1"
    await b.close()

    other = f"{app}-ambiguous"
    ambiguous = f"{V2Keys.fields_prefix(other, 'state')}g\x1fx\x1fk\x1ff"
    await raw.hset(ambiguous, mapping={"a": "1"})
    try:
        with pytest.raises(StateLayoutError) as refused:
            await RedisBackend(redis_url, other).get("g", "k")
        assert "\\x1f" in str(refused.value) and "delete it" in str(refused.value)
    finally:
        drop_app_keys(redis_url, other)


async def test_an_app_of_layout_2_upgrades_with_its_deliveries_in_flight(
        redis_url: str, app: str, raw: Any) -> None:
    """What an app left in Redis before this layout: items (one with a field hash), a
    delivery pending with a state write already applied, a dead letter, the journal's epoch,
    a cron tick and what a delivery caused. After the upgrade, three shards: every item is
    where its shard reads it, the pending delivery's repeated write changes nothing, the
    journal recovers it all, and the old records go once their owner settles."""
    state, k = "state", 3
    await raw.hset(V2Keys.group(app, "orders", state), mapping={
        "o1": _head({"total": 5, "lines": {"a": 1}}, ["lines"]),
        "o2": _head({"total": 7}, [])})
    await raw.hset(f"{V2Keys.fields_prefix(app, state)}6:orders:2:o1:lines",
                   mapping={"a": json.dumps(1)})
    await raw.sadd(V2Keys.groups(app, state), "orders")
    record = json.dumps({"o": {"total": 4, "lines": {"a": 1}},
                         "n": {"total": 5, "lines": {"a": 1}}})
    await raw.set(f"{V2Keys.effects_prefix(app)}run-1|update|1", record)
    await raw.sadd(f"{V2Keys.owned_prefix(app)}run-1",
                   f"{V2Keys.effects_prefix(app)}run-1|update|1")
    pending = Delivery("run-1", "bill", TriggerKind.QUEUE, {"o": 1}, "t", seq=7)
    dead = DeadLetter("dead-1", "bill", Delivery("dead-1", "bill", TriggerKind.QUEUE, {}, "t"),
                      dead_at=1.0)
    v2 = V2Keys.journal(app, 0)
    await raw.hset(v2["deliveries"], "run-1", json.dumps(dataclasses.asdict(pending)))
    await raw.hset(v2["dead-letters"], "dead-1", json.dumps(dead.to_dict()))
    await raw.set(v2["epoch"], 41)
    await raw.hset(V2Keys.cron_ticks(app), "nightly", repr(1000.0))
    await raw.sadd(f"{V2Keys.caused_prefix(app)}run-1", "msg-9")

    backends = [RedisBackend(redis_url, app, state, i, k) for i in range(k)]
    journals = [RedisJournal(redis_url, app, i, k) for i in range(k)]
    try:
        assert await journals[0].start() == 42
        assert [d.id for d in await journals[0].pending()] == ["run-1"]
        assert [e.id for e in await journals[0].dead_letters()] == ["dead-1"]
        assert await journals[2].last_tick("nightly") == 1000.0
        for journal in journals:
            assert await journal.caused(["run-1"]) == [("run-1", "msg-9")]
        for key in ("o1", "o2"):
            mine = backends[item_shard("orders", key, k)]
            assert (await mine.get("orders", key))["total"] in (5, 7)
        o1 = backends[item_shard("orders", "o1", k)]
        assert await o1.get("orders", "o1") == {"total": 5, "lines": {"a": 1}}
        # The delivery, run again, repeats its write: the first result, nothing applied.
        again = await o1.update("orders", "o1", [{"type": "increment", "path": "total"}],
                                effect=Effect("run-1", "run-1|update|1"))
        assert again == ({"total": 4, "lines": {"a": 1}}, {"total": 5, "lines": {"a": 1}})
        assert (await o1.get("orders", "o1"))["total"] == 5
        assert await _listed(backends, "orders") == ["o1", "o2"]
        left = [key async for key in raw.scan_iter(f"raypipe:{app}:*")]
        assert sorted(left) == sorted([
            constants.layout_key(app), constants.layout_key(app, constants.JOURNAL_SPACE),
            V2Keys.left(app), f"{V2Keys.effects_prefix(app)}run-1|update|1",
            f"{V2Keys.owned_prefix(app)}run-1"])
        # Still running: kept; settled: the old record goes too, and the flag with it.
        assert await o1.sweep_records() == 0
        await journals[0].settled(["run-1"])
        # Each shard's copy (the record named no item), and once the layout-2 original.
        assert [await b.sweep_records() for b in backends] == [2, 1, 1]
        assert sorted([key async for key in raw.scan_iter(f"raypipe:{app}:*")]) == sorted([
            constants.layout_key(app), constants.layout_key(app, constants.JOURNAL_SPACE)])
        assert not await raw.exists(V2Keys.left(app))
    finally:
        for b in backends:
            await b.close()
        for journal in journals:
            await journal.close()


@pytest.mark.parametrize("where", ["redis_url", "redis_cluster_url"])
async def test_a_change_of_shards_moves_items_and_their_records(
        where: str, request: pytest.FixtureRequest) -> None:
    """Items written with one shard, read with three, then two: each where its shard looks,
    every listing whole, and a delivery still running repeats its write on the item's new
    shard without applying it twice (its record moved with the item; a clear's record, which
    names no item, is wherever a repeat may look)."""
    url = request.getfixturevalue(where)
    app = f"test-{uuid.uuid4().hex[:8]}"
    items = [(f"g{i % 3}", f"k{i}") for i in range(24)]
    opened: list[RedisBackend] = []

    def shards(k: int) -> list[RedisBackend]:
        out = [RedisBackend(url, app, constants.STATE_SPACE, i, k) for i in range(k)]
        opened.extend(out)
        return out

    def at(backends: list[RedisBackend], group: str, key: str) -> RedisBackend:
        return backends[item_shard(group, key, len(backends))]

    try:
        one = shards(1)
        for group, key in items:
            await one[0].update(group, key, [
                *INC, {"type": "set", "path": f"log.{key}", "value": {"by": key}}],
                effect=Effect(f"d-{key}", f"d-{key}|1"))
        await one[0].clear("gone", effect=Effect("d-clear", "d-clear|1"))
        for k in (3, 2):
            now = shards(k)
            for group, key in items:
                repeat = await at(now, group, key).update(
                    group, key, INC, effect=Effect(f"d-{key}", f"d-{key}|1"))
                assert repeat == (None, {"n": 1, "log": {key: {"by": key}}}), (k, key)
                assert await at(now, group, key).get(group, key) == {
                    "n": 1, "log": {key: {"by": key}}}
            for group in ("g0", "g1", "g2"):
                assert await _listed(now, group) == sorted(key for g, key in items if g == group)
            groups = set()
            for b in now:
                groups.update(await b.list_groups())
            assert sorted(groups) == ["g0", "g1", "g2"]
            for b in now:
                assert await b.clear("gone", effect=Effect("d-clear", "d-clear|1")) == []
        client = _sync_client(url)
        try:
            assert client.get(constants.layout_key(app)) == "3:2"
            tags = {key.split("}")[0] for pattern in constants.app_key_patterns(app)
                    for key in client.scan_iter(match=pattern)
                    if "{" in key}
            # Only the two shards' tags are left: the third's keys all moved.
            assert tags == {constants.shard_prefix(app, constants.STATE_SPACE, i).split("}")[0]
                            for i in range(2)}
        finally:
            client.close()
    finally:
        for b in opened:
            await b.close()
        drop_app_keys(url, app)


async def test_fewer_shards_adopt_the_journals_of_those_gone(redis_url: str, app: str) -> None:
    """Three dispatcher shards, then two: what shard 2 had pending or dead-lettered is
    recovered by shard 0 (2 mod 2), and its journal is emptied."""
    three = [RedisJournal(redis_url, app, i, 3) for i in range(3)]
    two: list[RedisJournal] = []
    try:
        for i, journal in enumerate(three):
            await journal.start()
            await journal.accepted([Delivery(f"p{i}", "s", TriggerKind.QUEUE, {}, "t", seq=i)],
                                   [])
        gone = Delivery("dead", "s", TriggerKind.QUEUE, {}, "t")
        await three[2].accepted([gone], [])
        await three[2].dead(DeadLetter("dead", "s", gone, dead_at=1.0))
        two = [RedisJournal(redis_url, app, i, 2) for i in range(2)]
        for journal in two:
            await journal.start()
        assert [d.id for d in await two[0].pending()] == ["p0", "p2"]
        assert [e.id for e in await two[0].dead_letters()] == ["dead"]
        assert [d.id for d in await two[1].pending()] == ["p1"]
        assert [d.id for d in await three[2].pending()] == []
        assert await three[2].dead_letters() == []
    finally:
        for journal in three + two:
            await journal.close()


async def test_a_move_cut_short_is_taken_up_without_losing_a_field(
        redis_url: str, app: str, raw: Any) -> None:
    """A move from one shard to three stopped after an item's field hash went to its new
    shard and before its head did: the next start finishes it, the field intact."""
    one = RedisBackend(redis_url, app)
    group, key = next((f"g{i}", "k") for i in range(20) if item_shard(f"g{i}", "k", 3) != 0)
    await one.set(group, key, {"n": 1, "log": {"a": 1}})
    await one.close()
    old = constants.state_field_key(app, group, key, "log")
    new = constants.state_field_key(app, group, key, "log", shard=item_shard(group, key, 3))
    await raw.rename(old, new)  # what the cut-short move had done
    three = [RedisBackend(redis_url, app, constants.STATE_SPACE, i, 3) for i in range(3)]
    try:
        assert await three[item_shard(group, key, 3)].get(group, key) == {
            "n": 1, "log": {"a": 1}}
        assert await three[0].get(group, key) is None
    finally:
        for b in three:
            await b.close()
