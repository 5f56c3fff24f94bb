"""Updating a large item in place, and what such an update leaves behind instead of the item's
values: a *path record*, what each path the update wrote held before it and after it.

A copy-on-write update of ``steps.<i>`` copies the whole ``steps`` dict, so the seed's
workflow of N steps, one entry each, cost N² (a backend kept every version, too, in its
effect records). A backend that holds the only reference to a large item (:class:`Holder`)
changes it in place instead, and keeps the path record where it kept the values: the effect
record answers a repeat or a late read with the item as it is then, what the write changed
as the write left it (``new``) or found it (``old``); the value before is built only if read
(:class:`Before`). The Redis backend keeps the same record in Redis for the same reason.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from raypipe.state.ops import apply_ops, parse_path

__all__ = ["Before", "Holder", "PathRecord", "answer", "snapshot", "value_at"]

Path = tuple[str, ...]


def snapshot(value: Any) -> Any:
    """A copy of a JSON value sharing nothing with it (JSON's C codec: a deep copy of a
    100,000-entry item with ``copy.deepcopy`` is about ten times slower)."""
    return json.loads(json.dumps(value))


def value_at(value: Any, path: Sequence[str]) -> tuple[bool, Any]:
    """``(True, value)`` at ``path``, or ``(False, None)`` where nothing is."""
    for segment in path:
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return False, None
    return True, value


def _paths(value: Any, ops: Sequence[Mapping[str, Any]]) -> list[Path]:
    """The paths ``ops`` write in ``value``, each cut where it enters a list (an item removed
    from a list shifts the ones after it: the list is recorded whole) and after its first
    missing segment (a write makes the parents it needs), a merge into a dict that exists as
    one path per key it names."""
    out: dict[Path, None] = {}
    for op in ops:
        path = tuple(parse_path(op.get("path")))
        cut: Path = ()
        node = value
        for segment in path:
            if isinstance(node, list):
                break
            cut = (*cut, segment)
            if not isinstance(node, dict) or segment not in node:
                node = None  # the write makes what is missing from here on
                break
            node = node[segment]
        if (op.get("type") == "merge" and cut == path and isinstance(node, dict)
                and isinstance(op.get("value"), Mapping) and op["value"]):
            out.update(((*path, str(k)), None) for k in op["value"])
        else:
            out[cut] = None
    return list(out)


class PathRecord:
    """Taken before an update is applied in place: the paths it writes and what they hold
    (as JSON, so that nothing the update or a later one changes in place reaches it)."""

    __slots__ = ("_before", "_paths")

    def __init__(self, value: Any, ops: Sequence[Mapping[str, Any]]) -> None:
        self._paths = _paths(value, ops)
        #: Each path's value as JSON, ``None`` where there was none.
        self._before: list[str | None] = []
        for path in self._paths:
            had, at = value_at(value, path)
            self._before.append(json.dumps(at) if had else None)

    def finish(self, new: Any, at: Sequence[str]) -> dict[str, Any]:
        """The record, once the update made ``new``; ``at`` is ``[group, item]``. A path
        inside another recorded one is left out: the outer one's values hold it."""
        entries = []
        recorded = set(self._paths)
        for path, old in zip(self._paths, self._before, strict=True):
            if any(path[:n] in recorded for n in range(len(path))):
                continue
            had_new, value = value_at(new, path)
            entries.append([list(path), old is not None, None if old is None else json.loads(old),
                            had_new, snapshot(value) if had_new else None])
        return {"p": entries, "at": list(at)}


def changed(record: Mapping[str, Any]) -> bool:
    return any(had_old != had_new or old != new for _, had_old, old, had_new, new in record["p"])


def as_written(record: Mapping[str, Any], current: Any, which: int) -> Any:
    """``current`` with the record's paths as the write found them (``which`` 0) or left
    them (1); copy-on-write: it shares the rest with ``current``."""
    value = current
    for entry in record["p"]:
        path, had, at = entry[0], entry[1 + 2 * which], entry[2 + 2 * which]
        if not path:
            value = at if had else None
        else:
            op = ({"type": "set", "path": path, "value": at} if had
                  else {"type": "remove", "path": path})
            value = apply_ops(value, [op])
    return value


def answer(record: Mapping[str, Any], current: Any) -> tuple[Any, Any]:
    """A recorded write's ``(old, new)``, sharing nothing with ``current``."""
    return snapshot(as_written(record, current, 0)), snapshot(as_written(record, current, 1))


class Before:
    """What an item held before an update that changed it in place: whether it existed,
    whether the update changed anything, and the value itself, built from the value after and
    the update's record when first read. Read it before the item's next write: it is made
    from the item as it then is."""

    __slots__ = ("_new", "changed", "existed", "record")

    def __init__(self, record: dict[str, Any], new: Any, *, existed: bool = True) -> None:
        self.record = record
        self.existed = existed
        self.changed = changed(record)
        self._new = new

    def value(self) -> Any:
        return as_written(self.record, self._new, 0)


class Holder:
    """Which items a backend may change in place: the large ones it holds the only reference
    to. Handing an item out (a read) gives that up; the next update copies the item first, so
    nothing already handed out (a reader's value, an effect record's) ever changes under its
    holder."""

    __slots__ = ("_sole",)

    def __init__(self) -> None:
        self._sole: set[Hashable] = set()

    def writable(self, key: Hashable, value: Any) -> Any:
        """``value``, or a copy of it this holder alone has (then store the copy)."""
        if key in self._sole:
            return value
        self._sole.add(key)
        return snapshot(value)

    def handed_out(self, key: Hashable) -> None:
        self._sole.discard(key)

    def handed_out_group(self, group: str) -> None:
        """Every item of ``group`` (keys are ``(group, item)``) is handed out."""
        self._sole = {k for k in self._sole if not (isinstance(k, tuple) and k[0] == group)}
