"""References to values held outside messages and state (Ray-free, a leaf).

A :class:`Ref` is what ``ctx.put(value)`` answers and ``ctx.get(ref)`` reads: a small plain
JSON value, so it travels in messages, state and streams, and through the journal, while
the value it names stays where it was put (Ray's object store on a cluster). Read back from
JSON a reference is a plain dict again; :func:`as_ref` recognises it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from typing import Any

__all__ = ["REF_MARK", "Ref", "as_ref", "describe", "ref_ids_in"]

#: The key that marks a dict as a reference, and its value.
REF_MARK = "$raypipe"
_REF_KIND = "ref"
_ID = re.compile(r"[0-9a-f]{32}")


class Ref(dict[str, Any]):
    """``{"$raypipe": "ref", "id": ..., "type": ..., "size": ...}``: ``type`` names the
    value's Python type (``numpy.ndarray``), ``size`` its bytes where the type says
    (``None`` where it does not). A dict, so it is plain JSON as it stands."""

    def __init__(self, ref_id: str, type_name: str, size: int | None) -> None:
        super().__init__({REF_MARK: _REF_KIND, "id": ref_id, "type": type_name, "size": size})

    @property
    def id(self) -> str:
        return str(self["id"])

    @property
    def type(self) -> str:
        return str(self["type"])

    @property
    def size(self) -> int | None:
        size = self.get("size")
        return size if isinstance(size, int) else None

    def __repr__(self) -> str:
        return f"Ref({self.id!r}, type={self.type!r}, size={self.size!r})"


def as_ref(value: Any) -> Ref | None:
    """``value`` as a :class:`Ref` if it is one (also read back from JSON), else ``None``."""
    if isinstance(value, Ref):
        return value
    if (isinstance(value, dict) and value.get(REF_MARK) == _REF_KIND
            and isinstance(value.get("id"), str) and _ID.fullmatch(value["id"])):
        size = value.get("size")
        return Ref(value["id"], str(value.get("type", "")),
                   size if isinstance(size, int) and not isinstance(size, bool) else None)
    return None


def _ref_ids(value: Any) -> Iterator[Any]:
    """The ``id`` of each reference anywhere in ``value`` (a JSON value), as found."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get(REF_MARK) == _REF_KIND:
                yield item.get("id")
                continue
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def ref_ids_in(value: Any, among: Collection[str] | None = None) -> set[str]:
    """The ids of the references anywhere in ``value`` (a JSON value), only those in
    ``among`` when given."""
    return {ref_id for ref_id in _ref_ids(value)
            if isinstance(ref_id, str) and (among is None or ref_id in among)}


def names_a_ref(value: Any) -> bool:
    """Whether a reference is anywhere in ``value`` (a JSON value); stops at the first. (A
    loop of its own, not :func:`_ref_ids`: every state write asks.)"""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get(REF_MARK) == _REF_KIND:
                if isinstance(item.get("id"), str):
                    return True
                continue
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def describe(value: Any) -> tuple[str, int | None]:
    """``(type name, bytes)`` of a value: the bytes of buffers and of anything that says
    (``nbytes``: numpy arrays, Arrow tables), ``None`` otherwise."""
    cls = type(value)
    name = cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return name, memoryview(value).nbytes
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int) and not isinstance(nbytes, bool):
        return name, nbytes
    return name, None
