"""``ctx.streams.<name>``: a handler's view of one stream."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from raypipe.calls import Calls, scheduled
from raypipe.jsonvalues import plain_json
from raypipe.shared_types import Groups, Ops, StreamItems
from raypipe.state.ids import check_ids
from raypipe.state.ops import validate_ops

if TYPE_CHECKING:
    from raypipe.runtime_protocols import Origin

__all__ = ["ItemChange", "StreamAPI", "StreamStore", "Streams"]

Items = StreamItems  # a stream group's items (``list`` is also a method name below)


class StreamStore(Protocol):
    async def get(self, stream: str, group: str, item_id: str) -> Any: ...
    async def set(self, stream: str, group: str, item_id: str, data: Any,
                  origin: Origin) -> tuple[Any, Any]: ...
    async def update(self, stream: str, group: str, item_id: str, ops: Ops,
                     origin: Origin) -> tuple[Any, Any]: ...
    async def delete(self, stream: str, group: str, item_id: str, origin: Origin) -> Any: ...
    async def list(self, stream: str, group: str) -> Items: ...
    async def list_groups(self, stream: str) -> Groups: ...
    async def send(self, stream: str, channel: dict[str, Any], event: dict[str, Any],
                   origin: Origin) -> None: ...


class ItemChange(dict[str, Any]):
    """A stream item as a write stored it, as Motia 0.x's ``streams.x.set`` returned it. It
    also answers as Motia 1.x's result of the same call (``result["new_value"]``,
    ``result.old_value``), without those keys being part of the item."""

    _CHANGE = ("old_value", "new_value")

    def __init__(self, new: Any, old: Any) -> None:
        super().__init__(new if isinstance(new, dict) else {})
        self.new_value = new
        self.old_value = old

    @classmethod
    def of(cls, pair: tuple[Any, Any]) -> Any:
        old, new = pair
        return cls(new, old) if isinstance(new, dict) else new

    def __missing__(self, key: str) -> Any:
        if key in self._CHANGE:
            return getattr(self, key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if key in self or key not in self._CHANGE:
            return super().get(key, default)
        return getattr(self, key)


class StreamAPI:
    """Items of one stream, in groups; every change reaches the stream's subscribers. Every
    method may be awaited, left un-awaited or called from a plain ``def`` handler
    (:mod:`raypipe.calls`)."""

    def __init__(self, store: StreamStore, name: str,
                 origin: Callable[[str], Origin], calls: Calls) -> None:
        self._store = store
        self.name = name
        self._origin = origin
        self._calls = calls

    @scheduled
    async def get(self, group: str, item_id: str) -> Any:
        check_ids(group=group, item=item_id)
        return await self._store.get(self.name, group, item_id)

    @scheduled
    async def set(self, group: str, item_id: str, data: Any) -> Any:
        """Store an item (validated by the stream's schema, ``id`` added); returns the item
        as stored, as Motia 0.x does (an :class:`ItemChange`)."""
        return ItemChange.of(await self.change(group, item_id, data))

    async def change(self, group: str, item_id: str, data: Any) -> tuple[Any, Any]:
        """:meth:`set`, returning ``(old, new)``."""
        check_ids(group=group, item=item_id)
        data = plain_json(data, f"the item {item_id!r} of stream {self.name!r}")
        return await self._store.set(self.name, group, item_id, data,
                                     self._origin(f"stream-set|{self.name}|{group}|{item_id}"))

    @scheduled
    async def update(self, group: str, item_id: str, ops: Sequence[Mapping[str, Any]]) -> Any:
        """The state ops, applied atomically to the item (the result must fit the schema);
        returns the item as stored (an :class:`ItemChange`)."""
        return ItemChange.of(await self.change_by(group, item_id, ops))

    async def change_by(self, group: str, item_id: str,
                        ops: Sequence[Mapping[str, Any]]) -> tuple[Any, Any]:
        """:meth:`update`, returning ``(old, new)``."""
        check_ids(group=group, item=item_id)
        checked = validate_ops(plain_json(list(ops), f"the update of {self.name}/{item_id}"))
        return await self._store.update(
            self.name, group, item_id, checked,
            self._origin(f"stream-update|{self.name}|{group}|{item_id}"))

    @scheduled
    async def delete(self, group: str, item_id: str) -> Any:
        check_ids(group=group, item=item_id)
        return await self._store.delete(
            self.name, group, item_id, self._origin(f"stream-delete|{self.name}|{group}|{item_id}"))

    @scheduled
    async def list(self, group: str) -> Items:
        """The group's items (each carries its ``id``)."""
        check_ids(group=group)
        return await self._store.list(self.name, group)

    #: Motia 0.x's name for ``list``.
    get_group = list

    @scheduled
    async def list_groups(self) -> Groups:
        return await self._store.list_groups(self.name)

    @scheduled
    async def send(self, channel: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        """An ephemeral event (``{"type", "data"}``) for the subscribers of ``channel``
        (``{"groupId", "id"?}``); never stored."""
        target = f"stream-send|{self.name}|{channel.get('groupId')}|{channel.get('id')}"
        checked = plain_json(dict(event), f"the event sent on stream {self.name!r}")
        await self._store.send(self.name, dict(channel), checked, self._origin(target))


class Streams:
    """``ctx.streams``: one attribute per declared stream."""

    def __init__(self, store: StreamStore, names: Sequence[str],
                 origin: Callable[[str], Origin], calls: Calls) -> None:
        # A context is made for every delivery and most handlers use no stream: the per-stream
        # objects are made on first use.
        self._store = store
        self._names = frozenset(names)
        self._origin = origin
        self._calls = calls
        self._apis: dict[str, StreamAPI] = {}

    def __getattr__(self, name: str) -> StreamAPI:
        if name.startswith("_") or name not in self._names:
            raise AttributeError(f"no stream {name!r}; the app declares "
                                 f"{sorted(self._names) or 'none'} (in *_stream.py files, or as "
                                 "Stream(name) in a step file)")
        api = self._apis.get(name)
        if api is None:
            api = self._apis[name] = StreamAPI(self._store, name, self._origin, self._calls)
        return api

    def __getitem__(self, name: str) -> StreamAPI:
        return self.__getattr__(name)

    # Motia 1.x's ctx.streams is a dict of streams.
    def get(self, name: str, default: Any = None) -> Any:
        return self.__getattr__(name) if name in self._names else default

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __dir__(self) -> list[str]:
        return sorted(self._names)
