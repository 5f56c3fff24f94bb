"""The streams actor: keeps stream items, publishes every change to the relays that follow it
(the Serve ingress relays them to WebSocket and SSE clients) and evaluates stream triggers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ray

from raypipe import triggers as t
from raypipe.context import Origin
from raypipe.effects import EffectLog
from raypipe.loader import load_app_cached
from raypipe.models import StreamEvent, StreamTriggerInput
from raypipe.runtime.spec import AppSpec
from raypipe.runtime.triggering import ChangeTriggers
from raypipe.streams.hub import Events, Groups, Items, Key, StreamHub

Ops = list[dict[str, Any]]


def _stream_matches(tr: t.StreamTrigger, change: StreamTriggerInput) -> bool:
    return (tr.stream_name == change.stream_name
            and tr.group_id in (None, change.group_id)
            and tr.item_id in (None, change.id))


# Relays keep a long poll open each: far more concurrent calls than Ray's default.
@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0,  # type: ignore[call-overload]
            max_concurrency=10_000)
class StreamsActor:
    def __init__(self, spec: AppSpec) -> None:
        self.app = load_app_cached(spec.root, spec.settings)
        self.hub = StreamHub(self.app.streams)
        self.effects = EffectLog()
        self.triggers = ChangeTriggers(spec, self.app, "stream", t.StreamTrigger,
                                       _stream_matches)

    async def ready(self) -> bool:
        return True

    # --- items --------------------------------------------------------------------------------
    async def get(self, stream: str, group: str, item_id: str) -> Any:
        return self.hub.get(stream, group, item_id)

    async def list(self, stream: str, group: str) -> Items:
        return self.hub.list(stream, group)

    async def list_groups(self, stream: str) -> Groups:
        return self.hub.list_groups(stream)

    async def set(self, stream: str, group: str, item_id: str, data: Any,
                  origin: Origin) -> tuple[Any, Any]:
        return await self._write(stream, group, item_id, origin,
                                 lambda: self.hub.set(stream, group, item_id, data))

    async def update(self, stream: str, group: str, item_id: str, ops: Ops,
                     origin: Origin) -> tuple[Any, Any]:
        return await self._write(stream, group, item_id, origin,
                                 lambda: self.hub.update(stream, group, item_id, ops))

    async def delete(self, stream: str, group: str, item_id: str, origin: Origin) -> Any:
        old, _ = await self._write(stream, group, item_id, origin,
                                   lambda: self.hub.delete(stream, group, item_id))
        return old

    async def _write(self, stream: str, group: str, item_id: str, origin: Origin,
                     write: Callable[[], tuple[Any, Any]]) -> tuple[Any, Any]:
        # A repeat of an effect already applied (a retried delivery) changes nothing.
        if self.effects.seen(origin.effect):
            return self.effects.result(origin.effect)  # type: ignore[arg-type,no-any-return]
        old, new = write()
        self.effects.record(origin.effect, (old, new))
        if old != new:
            kind = "create" if old is None else "delete" if new is None else "update"
            await self.triggers.fire(StreamTriggerInput(
                stream, group, item_id, StreamEvent(kind, new if new is not None else old)),
                origin)
        return old, new

    async def send(self, stream: str, channel: dict[str, Any], event: dict[str, Any],
                   origin: Origin) -> None:
        if self.effects.seen(origin.effect):
            return
        self.hub.send(stream, channel, event)
        self.effects.record(origin.effect)
        group = str(channel.get("groupId") or channel.get("group_id"))
        await self.triggers.fire(StreamTriggerInput(stream, group, channel.get("id"),
                                                    StreamEvent(str(event.get("type")),
                                                                event.get("data"))), origin)

    # --- relays -------------------------------------------------------------------------------
    async def join(self, relay_id: str, key: Key) -> tuple[int, dict[str, Any]]:
        return self.hub.join(relay_id, tuple(key))  # type: ignore[arg-type]

    async def leave(self, relay_id: str, key: Key) -> None:
        self.hub.leave(relay_id, tuple(key))  # type: ignore[arg-type]

    async def poll(self, relay_id: str, timeout: float) -> tuple[bool, Events]:
        return await self.hub.poll(relay_id, timeout)
