from __future__ import annotations

import pickle

from raypipe.state.change import DEFERRED, StateChange


def test_a_change_reads_as_a_pair_by_attribute_and_by_key() -> None:
    c = StateChange({"n": 1}, {"n": 2})
    old, new = c
    assert (old, new) == ({"n": 1}, {"n": 2}) and c == ({"n": 1}, {"n": 2})
    assert c.old_value == {"n": 1} and c.new_value == {"n": 2}
    assert c["new_value"] == {"n": 2} and c[0] == {"n": 1} and len(c) == 2
    assert c.get("old_value") == {"n": 1} and c.get("nope", 5) == 5
    assert c.to_dict() == {"old_value": {"n": 1}, "new_value": {"n": 2}}
    assert StateChange.of((None, 1)) == StateChange(None, 1)


def test_a_lazy_change_loads_once_when_first_read() -> None:
    calls = []

    def load() -> tuple[int, int]:
        calls.append(1)
        return 1, 2

    c = StateChange(load=load)
    assert not c.loaded and calls == []
    assert c.new_value == 2 and c.old_value == 1 and list(c) == [1, 2]
    assert calls == [1] and c.loaded


def test_the_deferred_marker_stays_one_object_across_pickling() -> None:
    assert pickle.loads(pickle.dumps(DEFERRED)) is DEFERRED
