"""What a state write returns: the item's value before and after it.

It unpacks as a pair (``old, new = await ctx.state.update(...)``), reads by attribute as
Motia 1.x code does (``change.new_value``), and by key (``change["new_value"]``). A large
item's values may be left where the write happened and fetched only when first read
(``load``), so a write to one field of a big item sends nothing big back unless asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["LARGE_ITEM", "Deferred", "StateChange", "is_large"]

#: Elements (counted two levels deep, strings by 64 characters) past which an item is large:
#: a delivery's write of it answers without its values, and its effect record keeps only
#: what the write changed.
LARGE_ITEM = 256


def _weight(value: Any, depth: int = 2) -> int:
    # Loops and exact types, not a generator of calls and isinstance: every write of a
    # delivery weighs its item (an estimate: a subclass of dict weighs as one element).
    kind = type(value)
    if kind is str:
        return 1 + len(value) // 64
    if depth == 0 or (kind is not dict and kind is not list):
        return 1
    total = len(value)
    if total > LARGE_ITEM:
        return total
    for child in (value.values() if kind is dict else value):
        child_kind = type(child)
        if child_kind is str:
            total += 1 + len(child) // 64
        elif depth > 1 and (child_kind is dict or child_kind is list):
            total += _weight(child, depth - 1)
        else:
            total += 1
    return total


def is_large(*values: Any) -> bool:
    """Whether these values together are past :data:`LARGE_ITEM` (costs their top levels)."""
    total = 0
    for value in values:
        total += _weight(value)
        if total > LARGE_ITEM:
            return True
    return False

_KEYS = ("old_value", "new_value")


class Deferred:
    """What a state actor answers a delivery's write of a large item with, instead of its
    values: they stay in the write's effect record until the delivery settles, and are
    fetched from there if the handler reads them."""

    __slots__ = ()

    def __reduce__(self) -> str:
        return "DEFERRED"


DEFERRED = Deferred()


class StateChange:
    __slots__ = ("_load", "_values")

    def __init__(self, old: Any = None, new: Any = None, *,
                 load: Callable[[], tuple[Any, Any]] | None = None) -> None:
        self._values: tuple[Any, Any] | None = None if load is not None else (old, new)
        self._load = load

    @classmethod
    def of(cls, result: Any) -> StateChange:
        """``result`` as a change: a change already, or an ``(old, new)`` pair."""
        if isinstance(result, StateChange):
            return result
        old, new = result
        return cls(old, new)

    @property
    def loaded(self) -> bool:
        return self._values is not None

    def _pair(self) -> tuple[Any, Any]:
        if self._values is None:
            assert self._load is not None
            old, new = self._load()
            self._values, self._load = (old, new), None
        return self._values

    @property
    def old_value(self) -> Any:
        return self._pair()[0]

    @property
    def new_value(self) -> Any:
        return self._pair()[1]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._pair())

    def __len__(self) -> int:
        return 2

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            if key not in _KEYS:
                raise KeyError(key)
            return self._pair()[_KEYS.index(key)]
        return self._pair()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in _KEYS else default

    def keys(self) -> tuple[str, str]:
        return _KEYS

    def to_dict(self) -> dict[str, Any]:
        old, new = self._pair()
        return {"old_value": old, "new_value": new}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StateChange):
            return self._pair() == other._pair()
        if isinstance(other, (tuple, list)):
            return self._pair() == tuple(other)
        if isinstance(other, dict):
            return self.to_dict() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._pair())

    def __repr__(self) -> str:
        if self._values is None:
            return "StateChange(<not loaded>)"
        return f"StateChange(old_value={self._values[0]!r}, new_value={self._values[1]!r})"
