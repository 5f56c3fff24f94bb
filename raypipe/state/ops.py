"""Atomic update operations on JSON state values (Motia's ``UpdateOp`` model).

An op is a mapping such as ``{"type": "increment", "path": "stats.count", "by": 2}``.
:func:`apply_ops` applies a list of them in order and returns a new value; the input is
never mutated, so a failing op leaves the caller holding the old value. With
``in_place=True`` it changes the value's containers instead (what a backend does to a large
item only it holds: a copy-on-write update of ``steps.<i>`` copies the whole ``steps`` dict,
so a workflow of N steps cost N²), and a failing op undoes what the ops before it did.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping, Sequence
from copy import deepcopy
from typing import Any, Final, TypeAlias

# Re-exported rather than redefined: a second class of the same name would slip past
# `except raypipe.errors.UpdateOpError` in the rest of the package.
from raypipe.errors import UpdateOpError

__all__ = [
    "JSON",
    "OP_TYPES",
    "UpdateOpError",
    "apply_ops",
    "parse_path",
    "validate_ops",
]

JSON: TypeAlias = Any

OP_TYPES: Final[frozenset[str]] = frozenset(
    {"set", "merge", "increment", "decrement", "remove", "append"}
)

# Unknown keys are rejected so a typo such as "pth" cannot turn a `set` into a root replace.
_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "set": frozenset({"type", "path", "value"}),
    "merge": frozenset({"type", "path", "value"}),
    "increment": frozenset({"type", "path", "by"}),
    "decrement": frozenset({"type", "path", "by"}),
    "remove": frozenset({"type", "path"}),
    "append": frozenset({"type", "path", "value"}),
}
_NEEDS_PATH: Final = frozenset({"increment", "decrement", "remove"})
_NEEDS_VALUE: Final = frozenset({"set", "merge", "append"})

# The whole value lives under this key of a holder dict, so the root is just another slot
# and "missing root" is simply an absent key.
_ROOT: Final = ""
_MISSING: Final[Any] = object()

_short = reprlib.Repr()
_short.maxstring = 40
_short.maxother = 40
_short.maxlist = _short.maxtuple = _short.maxdict = 4
_short.maxlevel = 2


class _Failure(Exception):
    """An op-level problem; apply_ops/validate_ops add the op index and description."""


def parse_path(path: str | Sequence[str] | None) -> list[str]:
    """Split a dot path into segments; ``None`` or ``""`` is the root (``[]``).

    A list or tuple is taken as literal segments, so keys containing dots stay reachable.
    """
    if path is None:
        return []
    if isinstance(path, str):
        if path == "":
            return []
        segments = path.split(".")
        if "" in segments:
            raise ValueError(f"path {path!r} has an empty segment")
        return segments
    if isinstance(path, (list, tuple)):
        if not all(isinstance(s, str) for s in path):
            raise ValueError(f"path segments must be strings, got {_short.repr(path)}")
        return list(path)
    raise ValueError(f"path must be a string, a list of strings or None, got {type(path).__name__}")


def validate_ops(ops: Any) -> list[dict[str, Any]]:
    """Check the shape of ``ops`` (not their effect) and return them as plain dicts.

    Raises :class:`UpdateOpError`; ``index`` is -1 when ``ops`` itself is not a list.
    """
    if isinstance(ops, (str, bytes, Mapping)) or not isinstance(ops, Sequence):
        raise UpdateOpError(
            f"update ops must be a list of mappings, got {type(ops).__name__}", index=-1, op=None
        )
    checked: list[dict[str, Any]] = []
    for index, op in enumerate(ops):
        if not isinstance(op, Mapping):
            raise UpdateOpError(
                f"update op #{index}: expected a mapping, got {_short.repr(op)}",
                index=index,
                op=op,
            )
        try:
            _check_op(op)
        except _Failure as exc:
            raise _error(index, op, str(exc)) from None
        checked.append(dict(op))
    return checked


def apply_ops(value: JSON, ops: Sequence[Mapping[str, Any]], *, in_place: bool = False) -> JSON:
    """Apply ``ops`` in order to ``value`` (``None`` means missing) and return the result: a
    new value sharing what the ops left untouched, or, ``in_place``, ``value`` itself changed
    (unless an op replaced the root). Raises :class:`UpdateOpError`, the input as it was."""
    checked = validate_ops(ops)
    # The whole value sits under one key of a holder, so replacing the root is a slot write.
    holder: dict[str, Any] = {} if value is None else {_ROOT: value}
    edit = _Edit(in_place, holder)
    for index, op in enumerate(checked):
        try:
            _apply_one(holder, op, edit)
        except _Failure as exc:
            edit.rollback()
            raise _error(index, op, str(exc)) from None
    return holder.get(_ROOT, {})


class _Edit:
    """How one :func:`apply_ops` call changes containers. Copy-on-write: only the containers
    on an op's path are (shallowly) copied, once each, so an update of one field of a large
    item costs the path's length and the containers' sizes, and the input is never touched.
    In place: every container is written directly and each write is logged so that a
    failing op can undo the ones before it."""

    __slots__ = ("_in_place", "_owned", "_undo")

    def __init__(self, in_place: bool, holder: dict[str, Any]) -> None:
        self._in_place = in_place
        self._owned: set[int] = {id(holder)}
        self._undo: list[tuple[Any, ...]] = []

    def own(self, parent: Any, key: str, child: Any, where: str) -> Any:
        """``child``, writable: itself if this edit may change it, else a shallow copy put in
        its place."""
        if self._in_place or id(child) in self._owned or not isinstance(child, (dict, list)):
            return child
        child = dict(child) if isinstance(child, dict) else list(child)
        self._owned.add(id(child))
        self.put(parent, key, child, where)
        return child

    def made(self, child: Any) -> None:
        """``child`` is a container this edit made."""
        self._owned.add(id(child))

    def put(self, container: Any, key: str, item: Any, where: str) -> None:
        if isinstance(container, dict):
            if self._in_place:
                self._undo.append((container, key, container.get(key, _MISSING)))
            container[key] = item
            return
        if isinstance(container, list):
            index = _list_index(key, where)
            if index < len(container):
                if self._in_place:
                    self._undo.append((container, index, container[index]))
                container[index] = item
            elif index == len(container):
                self.append(container, item)
            else:
                raise _Failure(
                    f"index {index} is out of range for the list at {where} "
                    f"(length {len(container)})")
            return
        raise _Failure(f"value at {where} is {_short.repr(container)}, not a dict or list")

    def append(self, container: list[Any], item: Any) -> None:
        if self._in_place:
            self._undo.append((container, None, _MISSING))
        container.append(item)

    def delete(self, container: Any, key: str, where: str) -> None:
        if isinstance(container, dict):
            if key in container:
                if self._in_place:
                    self._undo.append((container, key, container[key]))
                del container[key]
        elif isinstance(container, list):
            index = _list_index(key, where)
            if index < len(container):
                if self._in_place:
                    self._undo.append((container, -1 - index, container[index]))
                del container[index]
        else:
            raise _Failure(f"value at {where} is {_short.repr(container)}, not a dict or list")

    def rollback(self) -> None:
        """Undo this edit's in-place writes, last first (copy-on-write ones need nothing)."""
        for container, key, before in reversed(self._undo):
            if isinstance(container, dict):
                if before is _MISSING:
                    del container[key]
                else:
                    container[key] = before
            elif key is None:  # an append
                container.pop()
            elif key < 0:  # a list item deleted at -1 - key
                container.insert(-1 - key, before)
            else:
                container[key] = before
        self._undo.clear()


def _check_op(op: Mapping[str, Any]) -> None:
    if "type" not in op:
        raise _Failure("missing 'type'")
    kind = op["type"]
    if not isinstance(kind, str) or kind not in OP_TYPES:
        raise _Failure(f"unknown type {kind!r}; expected one of {', '.join(sorted(OP_TYPES))}")
    if not op.keys() <= _FIELDS[kind]:
        unknown = [k for k in op if k not in _FIELDS[kind]]
        raise _Failure(f"unexpected field(s) {', '.join(map(repr, unknown))} for {kind!r}")
    try:
        segments = parse_path(op.get("path"))
    except ValueError as exc:
        raise _Failure(str(exc)) from None
    if kind in _NEEDS_PATH and not segments:
        raise _Failure(f"{kind!r} needs a non-empty 'path'")
    if kind in _NEEDS_VALUE and "value" not in op:
        raise _Failure(f"{kind!r} needs a 'value'")
    if kind == "merge" and not isinstance(op["value"], Mapping):
        raise _Failure(f"'merge' needs a dict 'value', got {_short.repr(op['value'])}")
    by = op.get("by")
    if by is not None and not _is_finite_number(by):
        raise _Failure(f"'by' must be a finite number, got {_short.repr(by)}")


def _apply_one(holder: dict[str, Any], op: Mapping[str, Any], edit: _Edit) -> None:
    kind: str = op["type"]
    path = parse_path(op.get("path"))
    where, parent_where = _where(path), _where(path[:-1])

    slot = _walk(holder, path, create=kind != "remove", edit=edit)
    if slot is None:  # only `remove` walks without creating, and a missing parent is a no-op
        return
    parent, key = slot
    if kind == "remove":
        edit.delete(parent, key, parent_where)
        return
    current = _get(parent, key, parent_where)

    if kind == "set":
        edit.put(parent, key, deepcopy(op["value"]), parent_where)
    elif kind == "merge":
        if current is not _MISSING and not isinstance(current, dict):
            raise _Failure(f"value at {where} is {_short.repr(current)}, not a dict")
        if current is _MISSING:
            current = {}
            edit.made(current)
            edit.put(parent, key, current, parent_where)
        else:
            current = edit.own(parent, key, current, parent_where)
        for k, v in deepcopy(dict(op["value"])).items():
            edit.put(current, k, v, where)
    elif kind in ("increment", "decrement"):
        if current is _MISSING:
            current = 0
        elif not _is_number(current):
            raise _Failure(f"value at {where} is {_short.repr(current)}, not a number")
        by = op.get("by")
        step = 1 if by is None else by
        result = current + step if kind == "increment" else current - step
        edit.put(parent, key, result, parent_where)
    elif kind == "append":
        item = op["value"]
        if current is _MISSING:
            edit.put(parent, key, [deepcopy(item)], parent_where)
        elif isinstance(current, list):
            edit.append(edit.own(parent, key, current, parent_where), deepcopy(item))
        elif isinstance(current, str) and isinstance(item, str):
            edit.put(parent, key, current + item, parent_where)
        elif isinstance(current, str):
            raise _Failure(f"cannot append {_short.repr(item)} to the string at {where}")
        else:
            raise _Failure(f"value at {where} is {_short.repr(current)}, not a list or string")


def _walk(
    holder: dict[str, Any], path: list[str], *, create: bool, edit: _Edit
) -> tuple[Any, str] | None:
    """Return ``(container, key)`` of the path's last slot, or None if a parent is missing.
    Every container on the way is made writable (:meth:`_Edit.own`)."""
    segments = [_ROOT, *path]
    container: Any = holder
    for depth, segment in enumerate(segments[:-1]):
        # At depth 0 the container is the holder, which never fails, so its label is moot.
        container_where = _where(path[: depth - 1]) if depth else "root"
        child = _get(container, segment, container_where)
        if child is _MISSING:
            if not create:
                return None
            child = {}
            edit.made(child)
            edit.put(container, segment, child, container_where)
        else:
            child = edit.own(container, segment, child, container_where)
        container = child
    return container, segments[-1]


def _get(container: Any, key: str, where: str) -> Any:
    if isinstance(container, dict):
        return container.get(key, _MISSING)
    if isinstance(container, list):
        index = _list_index(key, where)
        return container[index] if index < len(container) else _MISSING
    raise _Failure(f"value at {where} is {_short.repr(container)}, not a dict or list")


def _list_index(key: str, where: str) -> int:
    # Only plain non-negative decimals: "-1" or "1e3" on a list is far more likely a bug.
    if not (key.isascii() and key.isdigit()):
        raise _Failure(f"value at {where} is a list, and {key!r} is not a list index")
    return int(key)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite_number(value: Any) -> bool:
    # NaN/inf cannot round-trip through JSON; ints skip isfinite, which overflows on huge ones.
    return _is_number(value) and (isinstance(value, int) or math.isfinite(value))


def _where(path: list[str]) -> str:
    return f"'{'.'.join(path)}'" if path else "root"


def _describe(op: Mapping[str, Any]) -> str:
    kind = op.get("type")
    name = kind if isinstance(kind, str) and kind in OP_TYPES else f"type {kind!r}"
    try:
        return f"{name} at {_where(parse_path(op.get('path')))}"
    except ValueError:
        return f"{name} at {_short.repr(op.get('path'))}"


def _error(index: int, op: Mapping[str, Any], reason: str) -> UpdateOpError:
    return UpdateOpError(f"update op #{index} ({_describe(op)}): {reason}", index=index, op=op)
