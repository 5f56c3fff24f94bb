"""The streams service, Ray-free: keeps stream items, publishes every change to the relays
that follow it (the Serve ingress relays them to WebSocket and SSE clients) and evaluates
stream triggers. The streams actor is a Ray shell over it; :mod:`raypipe.testing` runs it
in-process.

With a durable store (the Redis state backend's ``streams`` key space), items are written
through before a write answers, with the write's effect id in the same transaction, and read
back when the service starts again; the hub keeps the copy that joins and subscribers read.
Subscriptions themselves are not durable: a restart ends them with an error event, and
clients subscribe again.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Mapping
from typing import Any

from raypipe import constants, wire
from raypipe.app import App
from raypipe.change_triggers import ChangeTriggers
from raypipe.effects import EffectLog
from raypipe.engine.loopbatch import run_calls
from raypipe.engine.once import Once
from raypipe.models import StreamEvent, StreamTriggerInput
from raypipe.runtime_protocols import Origin
from raypipe.shared_types import Groups, Ops
from raypipe.shared_types import StreamItems as Items
from raypipe.state.backend import StateBackend
from raypipe.state.ids import check_ids
from raypipe.streams.hub import Events, Key, StreamHub, channel_group

__all__ = ["StreamsService"]

#: The calls :meth:`StreamsService.batch` takes.
_BATCHED = frozenset({"get", "set", "update", "delete"})


class StreamsService:
    def __init__(self, app: App, store: StateBackend | None, triggers: ChangeTriggers) -> None:
        """``store``: where items are kept durably (``None``: in the hub alone)."""
        self.app = app
        self.hub = StreamHub(app.streams)
        self.effects = EffectLog()
        self.triggers = triggers
        self.store = store
        self._load = Once(self._read_back)
        # Writes to one item take turns: each computes its value from the one before it.
        self._locks = [asyncio.Lock() for _ in range(64)]

    def replace_app(self, app: App, triggers: ChangeTriggers) -> None:
        """A new version of the app: its streams and triggers; items and subscriptions stay."""
        self.app = app
        self.hub.declare(app.streams)
        self.triggers = triggers

    async def _read_back(self) -> None:
        """Once per actor life: the items in the store, into the hub."""
        if self.store is None:
            return
        for name in await self.store.list_groups():
            stream, _, group = name.partition(":")
            if stream in self.hub.configs:
                items = await self.store.list(name)
                self.hub.load(stream, group, {i["id"]: i["data"] for i in items})

    async def release(self, owners: list[str]) -> None:
        """These deliveries settled: their effect records may go (here and in the store)."""
        self.effects.release(owners)
        if self.store is not None:
            await self.store.release(owners)

    async def sweep_records(self) -> int:
        """The store's records of deliveries no journal holds (see
        :meth:`~raypipe.state.backend.StateBackend.sweep_records`); those in memory went with the
        process that held them."""
        return 0 if self.store is None else await self.store.sweep_records()

    # --- items --------------------------------------------------------------------------------
    async def get(self, stream: str, group: str, item_id: str) -> Any:
        check_ids(stream=stream, group=group, item=item_id)
        await self._load()
        return self.hub.get(stream, group, item_id)

    async def list(self, stream: str, group: str) -> Items:
        check_ids(stream=stream, group=group)
        await self._load()
        return self.hub.list(stream, group)

    async def refs_in_use(self, candidates: Mapping[str, str | None]) -> set[str]:
        """Of these references, those a stream item names (a sweep of
        :mod:`raypipe.objects` asks)."""
        await self._load()
        return self.hub.ref_ids(candidates)

    async def list_groups(self, stream: str) -> Groups:
        await self._load()
        return self.hub.list_groups(stream)

    async def batch(self, calls: builtins.list[wire.Wire]) -> builtins.list[wire.Wire]:
        """Several writes from one process in one actor call (see
        :func:`~raypipe.engine.loopbatch.run_calls`): a batch handler's progress updates
        cost one call, not one each."""
        return wire.outcomes_out(await run_calls(self, wire.calls_in(calls), _BATCHED))

    async def set(self, stream: str, group: str, item_id: str, data: Any,
                  origin: Origin) -> tuple[Any, Any]:
        return await self._write(stream, group, item_id, origin,
                                 lambda: self.hub.after_set(stream, group, item_id, data))

    async def update(self, stream: str, group: str, item_id: str, ops: Ops,
                     origin: Origin) -> tuple[Any, Any]:
        return await self._write(stream, group, item_id, origin,
                                 lambda: self.hub.after_update(stream, group, item_id, ops))

    async def delete(self, stream: str, group: str, item_id: str, origin: Origin) -> Any:
        def gone() -> None:
            self.hub.get(stream, group, item_id)  # an unknown stream raises here
            return None

        old, _ = await self._write(stream, group, item_id, origin, gone)
        return old

    async def _write(self, stream: str, group: str, item_id: str, origin: Origin,
                     compute: Callable[[], Any]) -> tuple[Any, Any]:
        """``compute()`` gives the item's new value (``None`` deletes it) from the current one."""
        check_ids(stream=stream, group=group, item=item_id)
        await self._load()
        # A repeat of an effect already applied (a retried delivery) changes nothing.
        if self.effects.seen(origin.effect):
            return self.effects.result(origin.effect)  # type: ignore[arg-type,no-any-return]
        async with self._locks[hash((stream, group, item_id)) % len(self._locks)]:
            first = None
            if self.store is not None and origin.effect is not None:
                # Applied before a restart: the hub, loaded from the store, already has it.
                first = await self.store.applied(origin.effect)
            if first is not None:
                old, new = first
            elif self.store is None:
                old, new = self.hub.commit(stream, group, item_id, compute())
            else:
                # Durable before the hub (and its subscribers) see it.
                new = compute()
                key = constants.stream_group(stream, group)
                if new is None:
                    old = await self.store.delete(key, item_id, origin.effect)
                else:
                    old, new = await self.store.set(key, item_id, new, origin.effect)
                self.hub.commit(stream, group, item_id, new)
        self.effects.record(origin.effect, (old, new))
        if old != new:
            kind = "create" if old is None else "delete" if new is None else "update"
            await self.triggers.fire(StreamTriggerInput(
                stream, group, item_id, StreamEvent(kind, new if new is not None else old)),
                origin)
        return old, new

    async def send(self, stream: str, channel: dict[str, Any], event: dict[str, Any],
                   origin: Origin) -> None:
        await self._load()
        if self.effects.seen(origin.effect):
            return
        self.hub.send(stream, channel, event)
        self.effects.record(origin.effect)
        group = str(channel_group(channel))
        await self.triggers.fire(StreamTriggerInput(stream, group, channel.get("id"),
                                                    StreamEvent(str(event.get("type")),
                                                                event.get("data"))), origin)

    # --- relays -------------------------------------------------------------------------------
    async def join(self, relay_id: str, key: Key) -> tuple[int, dict[str, Any]]:
        await self._load()
        return self.hub.join(relay_id, tuple(key))  # type: ignore[arg-type]

    async def leave(self, relay_id: str, key: Key) -> None:
        self.hub.leave(relay_id, tuple(key))  # type: ignore[arg-type]

    async def poll(self, relay_id: str, timeout: float) -> tuple[bool, Events]:
        return await self.hub.poll(relay_id, timeout)
