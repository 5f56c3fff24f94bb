"""The stream hub and relays in one process (no Ray): ordering, filtering, sync, overflow."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from raypipe.errors import SchemaValidationError
from raypipe.streams.config import StreamConfig
from raypipe.streams.hub import Events, Key, StreamHub
from raypipe.streams.relay import Relay, Subscription


class Item(BaseModel):
    n: int
    label: str = ""


class LocalHub:
    """The hub as a relay's HubClient, in-process: what the streams actor does over Ray."""

    def __init__(self, hub: StreamHub) -> None:
        self.hub = hub

    async def join(self, relay_id: str, key: Key) -> tuple[int, dict[str, Any]]:
        return self.hub.join(relay_id, key)

    async def leave(self, relay_id: str, key: Key) -> None:
        self.hub.leave(relay_id, key)

    async def poll(self, relay_id: str, timeout: float) -> tuple[bool, Events]:
        return await self.hub.poll(relay_id, timeout)


def make() -> tuple[StreamHub, Relay]:
    hub = StreamHub({"items": StreamConfig("items", Item), "free": StreamConfig("free")},
                    max_buffer=50)
    return hub, Relay(LocalHub(hub), buffer=100, poll_timeout=0.2)


async def take(sub: Subscription, n: int) -> list[dict[str, Any]]:
    out = []
    async for message in sub:
        out.append(message)
        if len(out) == n:
            break
    return out


def kinds(messages: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(m["event"]["type"], m.get("id")) for m in messages]


async def test_join_sync_then_changes_in_order_for_the_group_only() -> None:
    hub, relay = make()
    hub.set("items", "g1", "a", {"n": 1})
    sub = await relay.subscribe("items", "g1")
    hub.set("items", "g2", "x", {"n": 9})  # another group: not seen
    hub.set("items", "g1", "b", {"n": 2})
    hub.update("items", "g1", "a", [{"type": "increment", "path": "n"}])
    hub.set("items", "g1", "b", {"n": 2})  # no change: no event
    hub.delete("items", "g1", "b")
    got = await asyncio.wait_for(take(sub, 4), 5)
    assert kinds(got) == [("sync", None), ("create", "b"), ("update", "a"), ("delete", "b")]
    assert got[0]["event"]["data"] == [{"n": 1, "label": "", "id": "a"}]
    assert got[2]["event"]["data"] == {"n": 2, "label": "", "id": "a"}
    assert got[3]["event"]["data"]["id"] == "b"  # a delete carries the item it removed
    stamps = [m["timestamp"] for m in got]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4
    await sub.close()


async def test_item_subscription_and_sent_events() -> None:
    hub, relay = make()
    sub = await relay.subscribe("free", "g", "one")
    hub.set("free", "g", "two", {"v": 2})
    hub.send("free", {"groupId": "g"}, {"type": "ping", "data": {"k": 1}})
    hub.set("free", "g", "one", {"v": 1})
    hub.send("free", {"groupId": "g", "id": "two"}, {"type": "pong"})
    got = await asyncio.wait_for(take(sub, 3), 5)
    assert kinds(got) == [("sync", "one"), ("event", None), ("create", "one")]
    assert got[0]["event"]["data"] is None
    assert got[1]["event"] == {"type": "event", "event": {"type": "ping", "data": {"k": 1}}}


async def test_leave_stops_delivery() -> None:
    hub, relay = make()
    sub = await relay.subscribe("free", "g")
    await sub.close()
    hub.set("free", "g", "a", {"v": 1})
    assert hub._relays[relay.id].interest == {}
    # What was queued before leaving is still read, then the iteration ends: no "create".
    assert kinds([m async for m in sub]) == [("sync", None)]
    assert sub.closed


async def test_a_slow_subscriber_is_dropped_and_never_holds_back_a_fast_one() -> None:
    hub, relay = make()
    slow = await relay.subscribe("free", "g", maxsize=10)
    fast = await relay.subscribe("free", "g", maxsize=1000)
    reader = asyncio.create_task(take(fast, 301))
    for i in range(300):
        hub.set("free", "g", str(i), {"v": i})
        if i % 20 == 0:
            await asyncio.sleep(0.01)
    got = await asyncio.wait_for(reader, 10)
    assert [m["id"] for m in got[1:]] == [str(i) for i in range(300)]
    slow_got = [m async for m in slow]
    assert slow_got[-1]["event"]["type"] == "error"
    assert "dropped" in slow_got[-1]["event"]["data"]["message"]
    assert slow.closed
    assert all(m["event"]["type"] != "error" for m in got)


async def test_a_relay_that_stops_polling_overflows_and_its_subscribers_are_told() -> None:
    hub, relay = make()
    relay.poll_timeout = 0.05
    sub = await relay.subscribe("free", "g", maxsize=1000)
    assert relay._loop_task is not None
    relay._loop_task.cancel()  # the process stalls: nobody polls
    for i in range(60):  # more than the hub's max_buffer of 50
        hub.set("free", "g", str(i), {"v": i})
    # The process wakes up and polls again: it hears it lost events, and says so.
    await relay._poll_loop()
    got = [m async for m in sub]
    assert got[-1]["event"]["type"] == "error" and "behind" in got[-1]["event"]["data"]["message"]
    assert relay.id not in hub._relays


async def test_items_are_validated_and_carry_their_id() -> None:
    hub, _ = make()
    _, new = hub.set("items", "g", "a", {"n": "3", "id": "ignored"})
    assert new == {"n": 3, "label": "", "id": "a"}
    with pytest.raises(SchemaValidationError, match="n"):
        hub.set("items", "g", "b", {"label": "no n"})
    with pytest.raises(SchemaValidationError):
        hub.update("items", "g", "a", [{"type": "set", "path": "n", "value": "x"}])
    assert hub.get("items", "g", "a")["n"] == 3  # the failed update changed nothing
    with pytest.raises(KeyError, match="nope"):
        hub.get("nope", "g", "a")
    assert hub.list_groups("items") == ["g"]


async def test_a_restarted_hub_ends_subscriptions_with_an_error_then_they_rejoin() -> None:
    hub, relay = make()
    hub.set("items", "g1", "a", {"n": 1})
    sub = await relay.subscribe("items", "g1")
    # The streams actor restarts: a new hub with the same items (read back from Redis), no
    # relays. The relay's next poll reaches it.
    items = {i["id"]: i for i in hub.list("items", "g1")}
    reborn = StreamHub(hub.configs, max_buffer=50)
    reborn.load("items", "g1", items)
    relay.remote = LocalHub(reborn)
    sync, error = await take(sub, 2)
    assert sync["event"]["type"] == "sync" and error["event"]["type"] == "error"
    again = await relay.subscribe("items", "g1")
    reborn.set("items", "g1", "b", {"n": 2})
    resync, created = await take(again, 2)
    assert [i["id"] for i in resync["event"]["data"]] == ["a"]
    assert kinds([created]) == [("create", "b")]
    await again.close()
