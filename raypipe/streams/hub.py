"""The pub/sub core the streams actor runs: stream items, change events in Motia's wire shape,
and relays (one per subscribing process) with bounded buffers. Ray-free and synchronous, so
every write is atomic with the events it publishes.

A relay registers interest in ``(stream, group, id | None)`` keys and long-polls for the events
that match; it fans them out to its own local subscribers. One slow relay only fills its own
buffer: past ``max_buffer`` events it is marked overflowed, its buffer dropped, and its next
poll says so, so that it can tell its subscribers and start again. Writers never wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from raypipe.errors import SchemaValidationError
from raypipe.refs import ref_ids_in
from raypipe.schemas import Schema, dump_json
from raypipe.shared_types import Groups, StreamItems
from raypipe.state.ops import apply_ops
from raypipe.streams.config import StreamConfig

__all__ = ["Event", "Key", "StreamHub", "channel_group"]

#: ``(stream, group, id)``; ``id`` is ``None`` for a whole group.
Key = tuple[str, str, "str | None"]
#: ``(seq, stream, group, id, message)`` where ``message`` is what clients receive.
Event = tuple[int, str, str, "str | None", dict[str, Any]]

#: ``list`` is also a method name of StreamHub: these keep annotations unambiguous.
Events = list[Event]
Items = StreamItems


def channel_group(channel: Mapping[str, Any]) -> str | None:
    """The group a stream ``send`` is addressed to (Motia names it ``groupId``)."""
    group = channel.get("groupId") or channel.get("group_id")
    return None if not group else str(group)


@dataclass
class _Relay:
    interest: dict[Key, int] = field(default_factory=dict)
    buffer: deque[Event] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    overflowed: bool = False
    last_seen: float = field(default_factory=time.monotonic)


def _wants(relay: _Relay, stream: str, group: str, item_id: str | None) -> bool:
    """A group subscriber sees every event of its group; an item subscriber its item's events
    and the events sent to the whole group."""
    if relay.interest.get((stream, group, None)):
        return True
    if item_id is not None:
        return bool(relay.interest.get((stream, group, item_id)))
    return any(k[0] == stream and k[1] == group for k in relay.interest)


class StreamHub:
    def __init__(self, streams: dict[str, StreamConfig], *, max_buffer: int = 10_000,
                 relay_ttl: float = 120.0) -> None:
        self.declare(streams)
        self.max_buffer = max_buffer
        self.relay_ttl = relay_ttl
        self._items: dict[tuple[str, str], dict[str, Any]] = {}
        self._relays: dict[str, _Relay] = {}
        self._seq = 0
        self._last_ts = 0

    def declare(self, streams: dict[str, StreamConfig]) -> None:
        """The streams and schemas of the app (again, after a redeploy: items stay)."""
        self.configs = streams
        self.schemas = {n: Schema(c.schema) for n, c in streams.items() if c.schema is not None}

    # --- items --------------------------------------------------------------------------------
    def _check(self, stream: str) -> None:
        if stream not in self.configs:
            raise KeyError(f"no stream {stream!r}; declared: {sorted(self.configs)}")

    def _validate(self, stream: str, item_id: str, data: Any) -> dict[str, Any]:
        """The stored form: validated by the stream's schema, with ``id`` inside."""
        body = {k: v for k, v in data.items() if k != "id"} if isinstance(data, dict) else data
        schema = self.schemas.get(stream)
        if schema is not None:
            body = dump_json(schema.validate(body, what=f"item of stream {stream!r}"))
        if not isinstance(body, dict):
            raise SchemaValidationError(f"an item of stream {stream!r} must be an object",
                                        [{"loc": [], "msg": "not an object", "type": "dict"}])
        return {**body, "id": item_id}

    def get(self, stream: str, group: str, item_id: str) -> Any:
        self._check(stream)
        return self._items.get((stream, group), {}).get(item_id)

    def list(self, stream: str, group: str) -> Items:
        self._check(stream)
        items = self._items.get((stream, group), {})
        return [items[k] for k in sorted(items)]

    def ref_ids(self, among: Collection[str]) -> set[str]:
        """Of ``among``, the references any item of any stream names."""
        return ref_ids_in([list(items.values()) for items in self._items.values()], among)

    def list_groups(self, stream: str) -> Groups:
        self._check(stream)
        return sorted(g for (s, g), items in self._items.items() if s == stream and items)

    def after_set(self, stream: str, group: str, item_id: str, data: Any) -> dict[str, Any]:
        """The item ``set`` would store (validated), without storing it."""
        self._check(stream)
        return self._validate(stream, item_id, dump_json(data))

    def after_update(self, stream: str, group: str, item_id: str,
                     ops: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The item ``update`` would store (validated), without storing it."""
        self._check(stream)
        return self._validate(stream, item_id, apply_ops(self.get(stream, group, item_id), ops))

    def set(self, stream: str, group: str, item_id: str, data: Any) -> tuple[Any, Any]:
        return self.commit(stream, group, item_id, self.after_set(stream, group, item_id, data))

    def update(self, stream: str, group: str, item_id: str,
               ops: Sequence[dict[str, Any]]) -> tuple[Any, Any]:
        return self.commit(stream, group, item_id,
                           self.after_update(stream, group, item_id, ops))

    def delete(self, stream: str, group: str, item_id: str) -> tuple[Any, Any]:
        self._check(stream)
        return self.commit(stream, group, item_id, None)

    def commit(self, stream: str, group: str, item_id: str, new: Any) -> tuple[Any, Any]:
        """Store ``new`` (``None`` deletes) and publish the change, if it is one."""
        items = self._items.setdefault((stream, group), {})
        old = items.get(item_id)
        if new is None:
            items.pop(item_id, None)
        else:
            items[item_id] = new
        if old != new:
            kind = "create" if old is None else "delete" if new is None else "update"
            self._publish(stream, group, item_id,
                          {"type": kind, "data": new if new is not None else old})
        return old, new

    def load(self, stream: str, group: str, items: dict[str, Any]) -> None:
        """Items read back from durable storage at start: stored without events."""
        self._check(stream)
        self._items[(stream, group)] = dict(items)

    def send(self, stream: str, channel: dict[str, Any], event: dict[str, Any]) -> None:
        """An ephemeral event for a group's subscribers (or an item's): never stored."""
        self._check(stream)
        group = channel_group(channel)
        if group is None:
            raise ValueError("send() needs channel = {'groupId': ..., 'id'?: ...}")
        self._publish(stream, group, channel.get("id"),
                      {"type": "event", "event": {"type": event.get("type"),
                                                  "data": dump_json(event.get("data"))}})

    # --- pub/sub ------------------------------------------------------------------------------
    def _timestamp(self) -> int:
        # Milliseconds, strictly increasing, so clients can order what they receive.
        self._last_ts = max(int(time.time() * 1000), self._last_ts + 1)
        return self._last_ts

    def _message(self, stream: str, group: str, item_id: str | None,
                 event: dict[str, Any]) -> dict[str, Any]:
        msg: dict[str, Any] = {"streamName": stream, "groupId": group}
        if item_id is not None:
            msg["id"] = item_id
        msg["timestamp"] = self._timestamp()
        msg["event"] = event
        return msg

    def _publish(self, stream: str, group: str, item_id: str | None,
                 event: dict[str, Any]) -> None:
        self._seq += 1
        message = self._message(stream, group, item_id, event)
        record: Event = (self._seq, stream, group, item_id, message)
        for relay in self._relays.values():
            if not relay.overflowed and _wants(relay, stream, group, item_id):
                relay.buffer.append(record)
                if len(relay.buffer) > self.max_buffer:
                    relay.overflowed = True
                    relay.buffer.clear()
                relay.wake.set()

    def join(self, relay_id: str, key: Key) -> tuple[int, dict[str, Any]]:
        """Register interest and return ``(seq, sync message)``: the relay passes on to this
        subscriber only events with a larger ``seq``, so nothing is missed or doubled."""
        stream, group, item_id = key
        self._check(stream)
        relay = self._relays.setdefault(relay_id, _Relay())
        relay.interest[key] = relay.interest.get(key, 0) + 1
        data = self.get(stream, group, item_id) if item_id is not None else self.list(
            stream, group)
        return self._seq, self._message(stream, group, item_id, {"type": "sync", "data": data})

    def leave(self, relay_id: str, key: Key) -> None:
        relay = self._relays.get(relay_id)
        if relay is None:
            return
        left = relay.interest.get(key, 0) - 1
        if left > 0:
            relay.interest[key] = left
        else:
            relay.interest.pop(key, None)

    async def poll(self, relay_id: str, timeout: float) -> tuple[bool, Events]:
        """Wait up to ``timeout`` for events; returns ``(lost, events)``. A relay that lost
        events (it overflowed, or this hub does not know it) must fail its subscribers, who
        join again."""
        relay = self._relays.get(relay_id)
        if relay is None:
            # Never joined here: this hub restarted (or expired the relay) and lost its
            # interests, so the relay's subscribers may have missed events.
            return True, []
        relay.last_seen = time.monotonic()
        if not relay.buffer and not relay.overflowed:
            relay.wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(relay.wake.wait(), timeout)
        relay.last_seen = time.monotonic()
        if relay.overflowed:
            del self._relays[relay_id]
            return True, []
        events = list(relay.buffer)
        relay.buffer.clear()
        self._expire()
        return False, events

    def _expire(self) -> None:
        """Forget relays that stopped polling (their process went away)."""
        now = time.monotonic()
        for rid in [r for r, relay in self._relays.items()
                    if now - relay.last_seen > self.relay_ttl]:
            del self._relays[rid]
