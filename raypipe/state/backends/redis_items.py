"""How the Redis backend lays an item out, so that a write costs what it changes.

An item is a *head* in its group's hash (field: the item id) holding the item without its
top-level dict fields, the names of those fields and a version; each top-level dict field is a
hash of its own (``constants.state_field_key``) with an entry per key. A write to
``steps.<i>`` then rewrites the head and one entry, not the item, however large ``steps`` has
grown. The version, bumped by every write, lets a backend trust the copy it keeps of an item it
wrote last instead of reading the item again.

Pure functions over plain values; the backend does the I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from raypipe.state.ops import parse_path

__all__ = ["Touched", "assemble", "head_of", "read_item", "split_fields", "touched_by",
           "writes_for"]

#: What a write touched: ``None`` for all of the item, else ``(field,)`` for a whole
#: top-level field and ``(field, key)`` for one key of a top-level dict field.
Touched = set[tuple[str, ...]] | None


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def split_fields(value: Any) -> set[str]:
    """The top-level fields of ``value`` stored as hashes of their own: its dict ones."""
    if not isinstance(value, dict):
        return set()
    return {k for k, v in value.items() if isinstance(v, dict)}


def head_of(value: Any, version: int) -> str:
    split = split_fields(value)
    base = {k: v for k, v in value.items() if k not in split} if split else value
    return dumps({"v": base, "s": sorted(split), "n": version})


def assemble(head: Mapping[str, Any], fields: Mapping[str, Mapping[str, str]]) -> Any:
    """The item from its head and its field hashes (raw JSON entries)."""
    value = head["v"]
    if not head["s"]:
        return value
    out = dict(value)
    for name in head["s"]:
        out[name] = {k: json.loads(v) for k, v in fields.get(name, {}).items()}
    return out


def touched_by(ops: Sequence[Mapping[str, Any]]) -> Touched:
    """What a list of update ops can change (from their paths alone: no value is read)."""
    out: set[tuple[str, ...]] = set()
    for op in ops:
        path = parse_path(op.get("path"))
        if op.get("type") == "merge" and isinstance(op.get("value"), Mapping) and len(path) < 2:
            # A shallow merge changes the keys it names, one level below its path.
            out.update((*path, str(k)) for k in op["value"])
        elif not path:
            return None
        else:
            out.add(tuple(path[:2]))
    return out


#: Redis commands for one item's write, as ``(command, key, args)``.
Command = tuple[str, str, tuple[Any, ...]]


def writes_for(old_split: set[str], new: Any, touched: Touched,
               field_key: Any) -> list[Command]:
    """The field-hash commands that take the stored item to ``new`` from the value whose
    :func:`split_fields` were ``old_split`` (the head is written by the caller);
    ``field_key(name)`` is a field's hash key."""
    new_split = split_fields(new)
    commands: list[Command] = [("delete", field_key(f), ())
                               for f in sorted(old_split - new_split)]
    whole = None if touched is None else {t[0] for t in touched if len(t) == 1}
    keys: dict[str, set[str]] = {}
    if touched is not None:
        for t in touched:
            if len(t) == 2:
                keys.setdefault(t[0], set()).add(t[1])
    for f in sorted(new_split):
        value = new[f]
        if whole is None or f in whole or f not in old_split:
            # Rewritten whole: it is new, replaced, or the write's extent is unknown.
            commands.append(("delete", field_key(f), ()))
            if value:
                commands.append(("hset", field_key(f),
                                 ({k: dumps(v) for k, v in value.items()},)))
            continue
        for k in sorted(keys.get(f, ())):
            if k in value:
                commands.append(("hset", field_key(f), ({k: dumps(value[k])},)))
            else:
                commands.append(("hdel", field_key(f), (k,)))
    return commands


def read_item(client: Any, app: str, group: str, key: str, space: str = "state",
              shards: int = 1) -> Any:
    """One item read with a synchronous redis-py client (``decode_responses=True``) from an
    app of ``shards`` state shards: what tools and tests that look at Redis directly use."""
    from raypipe import constants
    from raypipe.shards import stored_item_shard

    shard = stored_item_shard(space, group, key, shards)
    raw = client.hget(constants.state_group_key(app, group, space, shard), key)
    if raw is None:
        return None
    head = json.loads(raw)
    return assemble(head, {
        f: client.hgetall(constants.state_field_key(app, group, key, f, space, shard))
        for f in head["s"]})
