"""A stream declared in code, Motia 1.x's way: ``todos = Stream("todo")`` at the top of a step
file declares the stream (no stream file needed) and is a handle on it that any handler of
the app may use; its calls reach the stream through the running handler's context.

Its ``set`` and ``update`` return the change, which reads as Motia 1.x's
``{"new_value", "old_value"}``; ``ctx.streams.<name>.set`` returns the item, as Motia 0.x's did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from raypipe.calls import current
from raypipe.errors import RuntimeNotRunningError
from raypipe.state.change import StateChange
from raypipe.streams.api import StreamAPI
from raypipe.streams.config import StreamConfig

__all__ = ["Stream"]

TData = TypeVar("TData")


class Stream(Generic[TData]):
    def __init__(self, config: StreamConfig | Mapping[str, Any] | str) -> None:
        if isinstance(config, str):
            config = StreamConfig(name=config)
        elif isinstance(config, Mapping):
            config = StreamConfig(name=str(config.get("name", "")), schema=config.get("schema"),
                                  description=str(config.get("description") or ""),
                                  can_access=config.get("canAccess", config.get("can_access")))
        self.config = config
        self.stream_name = config.name

    def _api(self) -> StreamAPI:
        ctx = current.get()
        if ctx is None:
            raise RuntimeNotRunningError(
                f"stream {self.stream_name!r} was used outside a handler: its calls go through "
                "the running handler's context")
        api: StreamAPI = ctx.streams[self.stream_name]
        return api

    def get(self, group_id: str, item_id: str) -> Any:
        return self._api().get(group_id, item_id)

    def set(self, group_id: str, item_id: str, data: TData) -> Any:
        api = self._api()
        return api._calls.run(_change(api.change(group_id, item_id, data)))

    def update(self, group_id: str, item_id: str, ops: Sequence[Mapping[str, Any]]) -> Any:
        api = self._api()
        return api._calls.run(_change(api.change_by(group_id, item_id, ops)))

    def delete(self, group_id: str, item_id: str) -> Any:
        return self._api().delete(group_id, item_id)

    def get_group(self, group_id: str) -> Any:
        return self._api().list(group_id)

    def list(self, group_id: str) -> Any:
        return self._api().list(group_id)

    def list_groups(self) -> Any:
        return self._api().list_groups()

    def send(self, channel: Mapping[str, Any], event: Mapping[str, Any]) -> Any:
        return self._api().send(channel, event)

    def __repr__(self) -> str:
        return f"Stream({self.stream_name!r})"


async def _change(pair: Any) -> StateChange:
    return StateChange.of(await pair)
