from __future__ import annotations

import json

from raypipe.state.backends.redis_items import (
    assemble,
    head_of,
    split_fields,
    touched_by,
    writes_for,
)


def key(f: str) -> str:
    return f"F:{f}"


def test_paths_say_what_a_write_touches() -> None:
    assert touched_by([{"type": "set", "path": "steps.5.result", "value": 1},
                       {"type": "increment", "path": "done"}]) == {("steps", "5"), ("done",)}
    assert touched_by([{"type": "merge", "path": "steps", "value": {"a": 1, "b": 2}}]) == {
        ("steps", "a"), ("steps", "b")}
    assert touched_by([{"type": "merge", "path": "", "value": {"x": 1}}]) == {("x",)}
    assert touched_by([{"type": "set", "path": "", "value": {}}]) is None


def test_a_write_to_one_entry_rewrites_only_that_entry() -> None:
    old = {"done": 1, "steps": {"0": {"i": 0}}, "meta": {"a": 1}}
    new = {"done": 2, "steps": {"0": {"i": 0}, "1": {"i": 1}}, "meta": {"a": 1}}
    cmds = writes_for(split_fields(old), new, {("done",), ("steps", "1")}, key)
    assert cmds == [("hset", "F:steps", ({"1": '{"i":1}'},))]
    assert writes_for(split_fields(old), {"done": 2}, {("steps",), ("meta",)}, key) == [
        ("delete", "F:meta", ()), ("delete", "F:steps", ())]
    gone = writes_for(split_fields(old), {**old, "steps": {}}, {("steps", "0")}, key)
    assert gone == [("hdel", "F:steps", ("0",))]


def test_head_and_fields_assemble_to_the_item() -> None:
    item = {"done": 2, "steps": {"0": {"i": 0}}, "list": [1, 2]}
    head = json.loads(head_of(item, 7))
    assert head == {"v": {"done": 2, "list": [1, 2]}, "s": ["steps"], "n": 7}
    assert assemble(head, {"steps": {"0": '{"i":0}'}}) == item
    assert assemble(json.loads(head_of([1, 2], 1)), {}) == [1, 2]
