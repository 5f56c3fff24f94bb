"""The subscribing side of streams, one relay per process (a Serve replica, a driver).

The relay long-polls the streams actor for the events of every key its local subscribers
follow, and fans them out to per-subscriber bounded queues. A subscriber that stops reading
fills only its own queue; when it overflows it receives an error message and is dropped, and
nobody else waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Protocol

from raypipe.streams.hub import Event, Events, Key

__all__ = ["HubClient", "Relay", "Subscription", "Subscriptions"]

log = logging.getLogger("raypipe.streams")

_CLOSED: dict[str, Any] = {}


class HubClient(Protocol):
    async def join(self, relay_id: str, key: Key) -> tuple[int, dict[str, Any]]: ...
    async def leave(self, relay_id: str, key: Key) -> None: ...
    async def poll(self, relay_id: str, timeout: float) -> tuple[bool, Events]: ...


class Subscriptions(Protocol):
    """What a process subscribes through: a :class:`Relay`, or one per streams shard
    (:class:`raypipe.shards.ShardedRelay`)."""

    async def subscribe(self, stream: str, group: str, item_id: str | None = None,
                        maxsize: int | None = None) -> Subscription: ...
    async def close(self) -> None: ...


def error_message(key: Key, message: str) -> dict[str, Any]:
    stream, group, item_id = key
    msg: dict[str, Any] = {"streamName": stream, "groupId": group}
    if item_id is not None:
        msg["id"] = item_id
    msg["timestamp"] = int(time.time() * 1000)
    msg["event"] = {"type": "error", "data": {"message": message}}
    return msg


class Subscription:
    """``async for message in subscription``: the sync message, then every change, in order."""

    def __init__(self, relay: Relay, key: Key, maxsize: int) -> None:
        self.relay = relay
        self.key = key
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize)
        #: Events up to this sequence number are in the sync message; ``None`` while joining.
        self.after: int | None = None
        self.early: list[Event] = []
        self.closed = False

    def matches(self, event: Event) -> bool:
        _, stream, group, item_id, _ = event
        s, g, i = self.key
        return s == stream and g == group and (i is None or item_id is None or i == item_id)

    def offer(self, event: Event) -> None:
        if self.closed:
            return
        if self.after is None:
            self.early.append(event)
        elif event[0] > self.after:
            self._put(event[4])

    def _put(self, message: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("stream subscriber of %s fell %d messages behind; dropped", self.key,
                        self.queue.maxsize)
            self.fail(f"subscriber fell more than {self.queue.maxsize} messages behind; "
                      "dropped, subscribe again to resync")

    def joined(self, seq: int, sync: dict[str, Any]) -> None:
        self.after = seq
        self._put(sync)
        for event in self.early:
            self.offer(event)
        self.early.clear()

    def fail(self, reason: str) -> None:
        """End the subscription with an error message (room is made for it)."""
        if self.closed:
            return
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(error_message(self.key, reason))
        self._end()
        # Called from the relay's loop, which must not wait: the actor is told in the background.
        task = asyncio.get_running_loop().create_task(self.relay.remote.leave(self.relay.id,
                                                                              self.key))
        self.relay._background.add(task)
        task.add_done_callback(self.relay._background.discard)

    def _end(self) -> None:
        self.closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(_CLOSED)
        self.relay._forget(self)

    async def close(self) -> None:
        if not self.closed:
            self._end()
            with contextlib.suppress(Exception):  # the actor may be gone; nothing to undo
                await self.relay.remote.leave(self.relay.id, self.key)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        try:
            while True:
                message = await self.queue.get()
                if message is _CLOSED:
                    return
                yield message
        finally:
            await self.close()


class Relay:
    def __init__(self, remote: HubClient, *, buffer: int = 1000,
                 poll_timeout: float = 15.0) -> None:
        self.remote = remote
        self.id = uuid.uuid4().hex
        self.buffer = buffer
        self.poll_timeout = poll_timeout
        self._subs: set[Subscription] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    async def subscribe(self, stream: str, group: str, item_id: str | None = None,
                        maxsize: int | None = None) -> Subscription:
        sub = Subscription(self, (stream, group, item_id), maxsize or self.buffer)
        self._subs.add(sub)
        try:
            seq, sync = await self.remote.join(self.id, sub.key)
        except BaseException:
            self._subs.discard(sub)
            raise
        sub.joined(seq, sync)
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.get_running_loop().create_task(self._poll_loop())
        return sub

    async def close(self) -> None:
        """Stop polling (the process's loop is ending); subscriptions end with it."""
        task = self._loop_task
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    def _forget(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    async def _poll_loop(self) -> None:
        while self._subs:
            try:
                overflowed, events = await self.remote.poll(self.id, self.poll_timeout)
            except Exception as exc:  # the actor restarting, the cluster going away
                log.warning("stream relay poll failed: %s", exc)
                for sub in list(self._subs):
                    sub.fail(f"stream connection lost ({type(exc).__name__})")
                return
            if overflowed:
                for sub in list(self._subs):
                    sub.fail("this process fell too far behind the stream; subscribe again")
                continue
            for event in events:
                for sub in list(self._subs):
                    if sub.matches(event):
                        sub.offer(event)
