"""Which shard owns what, when an app runs ``shards = K`` dispatchers and state services
(docs/scaling.md), and the runtime parts that spread calls over them. Ray-free: the Ray
runtime composes these over actor handles, :mod:`raypipe.testing` over in-process services.

- A message, and every delivery made of it, belongs to the shard of its FIFO group if it has
  one (a group's order is kept in one place); else, if a step with a ``concurrency`` limit
  takes its topic, to the shard of the topic (the limit is counted in one place); else to
  the shard of its id. A delivery addressed to a step by a state or stream trigger belongs
  to the shard of its id; a cron tick's, to the shard that runs the schedules (the holder
  of the cron lease, :mod:`raypipe.engine.lease`). A retry, a recovery and a
  replay keep the id, so they stay where the delivery was accepted and are deduplicated
  there.
- A state item belongs to the shard of its (group, item): its writes are ordered and its
  triggers fired in one place. A group's listing gathers its shards' items.
- A stream group belongs to the shard of its (stream, group): its items' writes, their
  triggers, the events sent to it and its subscribers' relays meet in one streams actor
  (a subscription follows a group, or an item of one). A stream's groups are gathered.

The hash is CRC-32, the same in every process (Python's ``hash`` of a string is not).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from raypipe import constants
from raypipe.app import App
from raypipe.engine.delivery import Delivery
from raypipe.messages import Message
from raypipe.runtime_protocols import Bus, DeadLetters, Ids, Origin, StateResult, StateStore
from raypipe.shared_types import Groups, Items, Ops, StreamItems
from raypipe.streams.api import StreamStore
from raypipe.streams.hub import channel_group
from raypipe.streams.relay import Subscription, Subscriptions
from raypipe.trigger_kinds.queue import QueueTrigger

__all__ = [
    "ShardedBus",
    "ShardedDeadLetters",
    "ShardedRelay",
    "ShardedState",
    "ShardedStreams",
    "delivery_shard",
    "item_shard",
    "merge_stats",
    "message_shard",
    "node_share",
    "pinned_topics",
    "pool_share",
    "shard_of",
    "stored_item_shard",
    "stream_shard",
]

T = TypeVar("T")


def shard_of(key: str, shards: int) -> int:
    return 0 if shards == 1 else zlib.crc32(key.encode()) % shards


def message_shard(message: Message, shards: int,
                  pinned: frozenset[str] = frozenset()) -> int:
    """``pinned``: the topics a concurrency-limited step takes (:func:`pinned_topics`)."""
    if message.group_id is not None:
        return shard_of(message.group_id, shards)
    if message.topic in pinned:
        return shard_of(f"topic:{message.topic}", shards)
    return shard_of(message.id, shards)


def pinned_topics(app: App) -> frozenset[str]:
    """Topics taken by a step with a ``concurrency`` limit: their messages go to one shard."""
    return frozenset(tr.topic for step in app.with_trigger(QueueTrigger)
                     for tr in step.triggers_of(QueueTrigger) if tr.config.concurrency)


def delivery_shard(delivery: Delivery, shards: int) -> int:
    """The shard a state or stream trigger's delivery is accepted by."""
    return shard_of(delivery.id, shards)


def item_shard(group: str, key: str, shards: int) -> int:
    # Lengths first: no two (group, key) pairs make the same string.
    return shard_of(f"{len(group)}:{group}:{key}", shards)


def stream_shard(stream: str, group: str, shards: int) -> int:
    return shard_of(constants.stream_group(stream, group), shards)


def stored_item_shard(space: str, group: str, key: str, shards: int) -> int:
    """The shard holding an item of a key space: a state item's, or in the streams key space
    (whose groups are named :func:`raypipe.constants.stream_group`) its stream group's."""
    if space == constants.STATE_SPACE:
        return item_shard(group, key, shards)
    return shard_of(group, shards)


def node_share(nodes: Sequence[str], shard: int, shards: int) -> list[str]:
    """The nodes whose task workers serve shard ``shard``'s tasks (``nodes``: the cluster's
    nodes that run tasks): every K-th, or with fewer nodes than shards, one shared by turns.
    Ray starts the tasks of each detached actor in workers of their own, so a node that ran
    every shard's tasks would keep K sets of workers; a node serving one keeps one set."""
    if not nodes:
        return []
    ordered = sorted(nodes)
    if len(ordered) < shards:
        return [ordered[shard % len(ordered)]]
    return ordered[shard::shards]


def split(items: Sequence[T], shard: Callable[[T], int]) -> dict[int, list[T]]:
    """``items`` by shard, each shard's in the order given."""
    out: dict[int, list[T]] = {}
    for item in items:
        out.setdefault(shard(item), []).append(item)
    return out


def pool_share(bounds: tuple[int, int], shard: int, shards: int) -> tuple[int, int]:
    """Shard ``shard``'s part of a step's actor pool of ``(min, max)`` actors: the bounds
    split as evenly as they go, each shard able to run at least one actor (so K shards may
    hold up to K actors of a pool whose ``max`` is below K)."""
    low, high = bounds

    def part(n: int) -> int:
        return n // shards + (1 if shard < n % shards else 0)

    return part(low), max(1, part(high))


def merge_stats(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The dispatchers' stats as one: counts summed, the oldest age per step, pools' numbers
    summed; ``shards`` lists each shard's ``in_flight``, ``dead_letters``, ``runs_crons``
    and ``nodes`` (those its tasks go to first)."""
    if len(parts) == 1:
        return parts[0]
    merged = dict(parts[0])
    steps: dict[str, dict[str, int]] = {}
    oldest: dict[str, float] = {}
    pools: dict[str, dict[str, int]] = {}
    for part in parts:
        for step, counts in part.get("steps", {}).items():
            mine = steps.setdefault(step, {})
            for event, n in counts.items():
                mine[event] = mine.get(event, 0) + n
        for step, age in part.get("oldest_in_flight", {}).items():
            oldest[step] = max(age, oldest.get(step, age))
        for step, numbers in part.get("pools", {}).items():
            mine = pools.setdefault(step, {})
            for field, n in numbers.items():
                mine[field] = mine.get(field, 0) + n
    merged.update(
        in_flight=sum(p.get("in_flight", 0) for p in parts),
        dead_letters=sum(p.get("dead_letters", 0) for p in parts),
        steps=steps, oldest_in_flight=oldest, pools=pools,
        runs_crons=any(p.get("runs_crons") for p in parts),
        shards=[{k: p.get(k) for k in ("in_flight", "dead_letters", "runs_crons", "nodes")}
                for p in parts])
    return merged


async def _each(calls: Sequence[Awaitable[T]]) -> list[T]:
    return list(await asyncio.gather(*calls))


class ShardedBus:
    """Publishes each message to its shard's bus: one call per shard a batch touches."""

    def __init__(self, shards: Sequence[Bus], app: App) -> None:
        self._shards = shards
        self._pinned = pinned_topics(app)

    async def publish(self, messages: Sequence[Message]) -> None:
        k = len(self._shards)
        if len(messages) == 1:  # an enqueue: the bus of its shard coalesces a loop turn's
            await self._shards[message_shard(messages[0], k, self._pinned)].publish(messages)
            return
        parts = split(messages, lambda m: message_shard(m, k, self._pinned))
        await _each([self._shards[i].publish(part) for i, part in parts.items()])


class ShardedDeadLetters:
    """Each dispatcher shard keeps its own dead letters; they are listed as one, oldest
    first, and a replay asks every shard (each replays those it holds)."""

    def __init__(self, shards: Sequence[DeadLetters]) -> None:
        self._shards = shards

    async def list(self) -> Items:
        parts = await _each([s.list() for s in self._shards])
        return sorted((e for part in parts for e in part),
                      key=lambda e: (e.get("dead_at") or 0, e.get("id") or ""))

    async def get(self, entry_id: str) -> dict[str, Any] | None:
        for found in await _each([s.get(entry_id) for s in self._shards]):
            if found is not None:
                return found
        return None

    async def replay(self, entry_ids: Sequence[str] | None = None) -> Ids:
        parts = await _each([s.replay(entry_ids) for s in self._shards])
        return [i for part in parts for i in part]


class ShardedState:
    """A :class:`~raypipe.runtime_protocols.StateStore` over one store per state shard. Each
    shard holds its own items (in memory, or under its own hash tag in Redis): a listing
    gathers every shard's, and a clear goes to each, which fires the triggers of the items it
    held."""

    def __init__(self, shards: Sequence[StateStore]) -> None:
        self._shards = shards

    def _at(self, group: str, key: str) -> StateStore:
        return self._shards[item_shard(group, key, len(self._shards))]

    async def get(self, group: str, key: str) -> Any:
        return await self._at(group, key).get(group, key)

    async def set(self, group: str, key: str, value: Any, origin: Origin) -> StateResult:
        return await self._at(group, key).set(group, key, value, origin)

    async def update(self, group: str, key: str, ops: Ops, origin: Origin) -> StateResult:
        return await self._at(group, key).update(group, key, ops, origin)

    async def delete(self, group: str, key: str, origin: Origin) -> Any:
        return await self._at(group, key).delete(group, key, origin)

    async def list(self, group: str) -> Items:
        if len(self._shards) == 1:
            return await self._shards[0].list(group)
        parts = await _each([s.list(group) for s in self._shards])
        return sorted((i for part in parts for i in part), key=lambda i: str(i["id"]))

    async def list_groups(self) -> Groups:
        return sorted({g for part in await _each([s.list_groups() for s in self._shards])
                       for g in part})

    async def clear(self, group: str, origin: Origin) -> None:
        await _each([s.clear(group, origin) for s in self._shards])


class ShardedStreams:
    """A :class:`~raypipe.streams.api.StreamStore` over one streams service per shard: a
    group's items, writes and sent events go to its shard; a stream's groups are gathered."""

    def __init__(self, shards: Sequence[StreamStore]) -> None:
        self._shards = shards

    def _at(self, stream: str, group: str) -> StreamStore:
        return self._shards[stream_shard(stream, group, len(self._shards))]

    async def get(self, stream: str, group: str, item_id: str) -> Any:
        return await self._at(stream, group).get(stream, group, item_id)

    async def set(self, stream: str, group: str, item_id: str, data: Any,
                  origin: Origin) -> tuple[Any, Any]:
        return await self._at(stream, group).set(stream, group, item_id, data, origin)

    async def update(self, stream: str, group: str, item_id: str, ops: Ops,
                     origin: Origin) -> tuple[Any, Any]:
        return await self._at(stream, group).update(stream, group, item_id, ops, origin)

    async def delete(self, stream: str, group: str, item_id: str, origin: Origin) -> Any:
        return await self._at(stream, group).delete(stream, group, item_id, origin)

    async def list(self, stream: str, group: str) -> StreamItems:
        return await self._at(stream, group).list(stream, group)

    async def list_groups(self, stream: str) -> Groups:
        return sorted({g for part in await _each([s.list_groups(stream) for s in self._shards])
                       for g in part})

    async def send(self, stream: str, channel: dict[str, Any], event: dict[str, Any],
                   origin: Origin) -> None:
        # No group: shard 0's service refuses it as one service would.
        group = channel_group(channel)
        shard = self._shards[0] if group is None else self._at(stream, group)
        await shard.send(stream, channel, event, origin)


class ShardedRelay:
    """Subscriptions over one relay per streams shard: a subscription is served by the relay
    of its group's shard, each relay long-polling its own streams actor."""

    def __init__(self, relays: Sequence[Subscriptions]) -> None:
        self._relays = relays

    async def subscribe(self, stream: str, group: str, item_id: str | None = None,
                        maxsize: int | None = None) -> Subscription:
        relay = self._relays[stream_shard(stream, group, len(self._relays))]
        return await relay.subscribe(stream, group, item_id, maxsize)

    async def close(self) -> None:
        await _each([r.close() for r in self._relays])
