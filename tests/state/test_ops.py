"""Tests for raypipe.state.ops: the atomic update-op model."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from copy import deepcopy
from typing import Any

import pytest

from raypipe.state.ops import OP_TYPES, UpdateOpError, apply_ops, parse_path, validate_ops

try:
    from hypothesis import given
    from hypothesis import strategies as st
except ImportError:  # optional: the property tests below only run where hypothesis exists
    HAS_HYPOTHESIS = False
else:
    HAS_HYPOTHESIS = True


def apply_checked(value: Any, ops: list[dict[str, Any]]) -> Any:
    """apply_ops, asserting the input value and the ops were left untouched."""
    value_before, ops_before = deepcopy(value), deepcopy(ops)
    result = apply_ops(value, ops)
    assert value == value_before
    assert ops == ops_before
    return result


def op_error(value: Any, ops: list[dict[str, Any]]) -> UpdateOpError:
    with pytest.raises(UpdateOpError) as info:
        apply_checked(value, ops)
    return info.value


# --- parse_path ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (None, []),
        ("", []),
        ("a", ["a"]),
        ("a.b.c", ["a", "b", "c"]),
        ("steps.3", ["steps", "3"]),
        (["a.b", "c"], ["a.b", "c"]),
        (("x",), ["x"]),
        ([], []),
    ],
)
def test_parse_path(path: Any, expected: list[str]) -> None:
    assert parse_path(path) == expected


@pytest.mark.parametrize("path", ["a..b", ".a", "a.", ".", ["a", 1], 5, {"a": 1}])
def test_parse_path_rejects(path: Any) -> None:
    with pytest.raises(ValueError):
        parse_path(path)


def test_op_types() -> None:
    assert frozenset({"set", "merge", "increment", "decrement", "remove", "append"}) == OP_TYPES


# --- set ----------------------------------------------------------------------------------


def test_set_top_level_and_nested() -> None:
    value = {"a": {"b": 1, "keep": True}, "z": 0}
    result = apply_checked(value, [{"type": "set", "path": "a.b", "value": 2}])
    assert result == {"a": {"b": 2, "keep": True}, "z": 0}
    result = apply_checked(value, [{"type": "set", "path": "new", "value": [1]}])
    assert result == {"a": {"b": 1, "keep": True}, "z": 0, "new": [1]}


def test_set_creates_missing_parents() -> None:
    result = apply_checked({}, [{"type": "set", "path": "steps.3", "value": {"ok": True}}])
    assert result == {"steps": {"3": {"ok": True}}}
    result = apply_checked(None, [{"type": "set", "path": "a.b.c", "value": 1}])
    assert result == {"a": {"b": {"c": 1}}}


def test_set_root_replaces_whole_value() -> None:
    assert apply_checked({"a": 1}, [{"type": "set", "value": [1, 2]}]) == [1, 2]
    assert apply_checked({"a": 1}, [{"type": "set", "path": "", "value": "x"}]) == "x"
    assert apply_checked({"a": 1}, [{"type": "set", "path": None, "value": None}]) is None


def test_set_literal_segments_keep_dots() -> None:
    result = apply_checked({}, [{"type": "set", "path": ["a.b", "c"], "value": 1}])
    assert result == {"a.b": {"c": 1}}


def test_set_list_index_paths() -> None:
    value = {"items": [{"n": 0}, {"n": 1}]}
    assert apply_checked(value, [{"type": "set", "path": "items.1.n", "value": 9}]) == {
        "items": [{"n": 0}, {"n": 9}]
    }
    assert apply_checked(value, [{"type": "set", "path": "items.0", "value": "x"}]) == {
        "items": ["x", {"n": 1}]
    }
    # index == len appends
    assert apply_checked(value, [{"type": "set", "path": "items.2", "value": "y"}]) == {
        "items": [{"n": 0}, {"n": 1}, "y"]
    }


def test_set_list_index_out_of_range() -> None:
    err = op_error({"items": [1]}, [{"type": "set", "path": "items.5", "value": 0}])
    assert "update op #0 (set at 'items.5')" in str(err)
    assert "index 5 is out of range for the list at 'items' (length 1)" in str(err)


@pytest.mark.parametrize("segment", ["x", "-1", "1e2"])
def test_set_list_non_index_segment(segment: str) -> None:
    err = op_error({"items": [1]}, [{"type": "set", "path": f"items.{segment}", "value": 0}])
    assert f"{segment!r} is not a list index" in str(err)


def test_set_through_scalar_parent_is_error() -> None:
    err = op_error({"a": "text"}, [{"type": "set", "path": "a.b", "value": 1}])
    assert str(err) == ("update op #0 (set at 'a.b'): value at 'a' is 'text', not a dict or list")
    err = op_error({"a": None}, [{"type": "set", "path": "a.b.c", "value": 1}])
    assert "value at 'a' is None" in str(err)


def test_set_value_is_copied_not_aliased() -> None:
    payload = {"inner": [1]}
    result = apply_ops({}, [{"type": "set", "path": "p", "value": payload}])
    result["p"]["inner"].append(2)
    assert payload == {"inner": [1]}


def test_copy_on_write_copies_only_the_path() -> None:
    value = {"a": {"b": [1]}, "untouched": {"deep": [1]}}
    result = apply_ops(value, [{"type": "set", "path": "a.c", "value": 1},
                               {"type": "append", "path": "a.b", "value": 2}])
    assert value == {"a": {"b": [1]}, "untouched": {"deep": [1]}}
    assert result == {"a": {"b": [1, 2], "c": 1}, "untouched": {"deep": [1]}}
    # What no op touched is shared, not copied: an update costs its path, not the item's size.
    assert result["untouched"] is value["untouched"]
    assert result["a"] is not value["a"] and result["a"]["b"] is not value["a"]["b"]


# --- merge --------------------------------------------------------------------------------


def test_merge_at_root() -> None:
    value = {"a": 1, "b": {"x": 1}}
    result = apply_checked(value, [{"type": "merge", "value": {"b": {"y": 2}, "c": 3}}])
    # shallow: "b" is replaced, not merged recursively
    assert result == {"a": 1, "b": {"y": 2}, "c": 3}


def test_merge_at_root_of_missing_value() -> None:
    assert apply_checked(None, [{"type": "merge", "value": {"a": 1}}]) == {"a": 1}


def test_merge_at_path() -> None:
    value = {"user": {"name": "ada", "age": 36}}
    result = apply_checked(value, [{"type": "merge", "path": "user", "value": {"age": 37}}])
    assert result == {"user": {"name": "ada", "age": 37}}
    result = apply_checked(value, [{"type": "merge", "path": "meta.tags", "value": {"k": "v"}}])
    assert result == {"user": {"name": "ada", "age": 36}, "meta": {"tags": {"k": "v"}}}


def test_merge_into_non_dict_is_error() -> None:
    err = op_error({"a": [1]}, [{"type": "merge", "path": "a", "value": {"k": 1}}])
    assert str(err) == "update op #0 (merge at 'a'): value at 'a' is [1], not a dict"
    err = op_error([1], [{"type": "merge", "value": {"k": 1}}])
    assert str(err) == "update op #0 (merge at root): value at root is [1], not a dict"


def test_merge_non_dict_value_is_error() -> None:
    err = op_error({}, [{"type": "merge", "value": [1]}])
    assert "'merge' needs a dict 'value'" in str(err)


# --- increment / decrement ----------------------------------------------------------------


def test_increment_existing_and_default_by() -> None:
    assert apply_checked({"n": 1}, [{"type": "increment", "path": "n"}]) == {"n": 2}
    assert apply_checked({"n": 1}, [{"type": "increment", "path": "n", "by": 5}]) == {"n": 6}
    assert apply_checked({"n": 1}, [{"type": "increment", "path": "n", "by": None}]) == {"n": 2}


def test_increment_missing_counts_as_zero() -> None:
    assert apply_checked({}, [{"type": "increment", "path": "stats.count"}]) == {
        "stats": {"count": 1}
    }
    assert apply_checked(None, [{"type": "increment", "path": "n", "by": 3}]) == {"n": 3}


def test_increment_keeps_ints_as_ints() -> None:
    result = apply_checked({"n": 1}, [{"type": "increment", "path": "n", "by": 2}])
    assert type(result["n"]) is int
    result = apply_checked({"n": 1}, [{"type": "increment", "path": "n", "by": 0.5}])
    assert result == {"n": 1.5}


def test_decrement() -> None:
    assert apply_checked({"n": 5}, [{"type": "decrement", "path": "n"}]) == {"n": 4}
    assert apply_checked({"n": 5}, [{"type": "decrement", "path": "n", "by": 7}]) == {"n": -2}
    assert apply_checked({}, [{"type": "decrement", "path": "n"}]) == {"n": -1}


def test_increment_list_element() -> None:
    assert apply_checked({"xs": [1, 2]}, [{"type": "increment", "path": "xs.1"}]) == {"xs": [1, 3]}


@pytest.mark.parametrize("current", ["x", True, None, [1], {"a": 1}])
def test_increment_non_number_is_error(current: Any) -> None:
    err = op_error({"a": {"b": current}}, [{"type": "increment", "path": "a.b"}])
    assert str(err).startswith("update op #0 (increment at 'a.b'): value at 'a.b' is ")
    assert str(err).endswith(", not a number")


def test_error_message_example() -> None:
    ops = [
        {"type": "set", "path": "a.b", "value": "x"},
        {"type": "increment", "path": "a.b"},
    ]
    err = op_error({}, ops)
    assert str(err) == "update op #1 (increment at 'a.b'): value at 'a.b' is 'x', not a number"
    assert err.index == 1
    assert err.op == ops[1]
    assert isinstance(err, ValueError)


@pytest.mark.parametrize("by", [True, "1", float("nan"), float("inf"), [1]])
def test_bad_by_is_error(by: Any) -> None:
    err = op_error({"n": 1}, [{"type": "increment", "path": "n", "by": by}])
    assert "'by' must be a finite number" in str(err)


# --- remove -------------------------------------------------------------------------------


def test_remove_key() -> None:
    value = {"a": {"b": 1, "c": 2}}
    assert apply_checked(value, [{"type": "remove", "path": "a.b"}]) == {"a": {"c": 2}}
    assert apply_checked(value, [{"type": "remove", "path": "a"}]) == {}


def test_remove_list_index() -> None:
    assert apply_checked({"xs": [1, 2, 3]}, [{"type": "remove", "path": "xs.1"}]) == {"xs": [1, 3]}


@pytest.mark.parametrize("path", ["missing", "a.missing", "a.b.c.d", "xs.9"])
def test_remove_missing_is_noop(path: str) -> None:
    value = {"a": {"b": {}}, "xs": [1]}
    assert apply_checked(value, [{"type": "remove", "path": path}]) == value


def test_remove_on_missing_value_is_noop() -> None:
    assert apply_checked(None, [{"type": "remove", "path": "a"}]) == {}


def test_remove_through_scalar_is_error() -> None:
    err = op_error({"a": 5}, [{"type": "remove", "path": "a.b"}])
    assert "update op #0 (remove at 'a.b'): value at 'a' is 5" in str(err)


# --- append -------------------------------------------------------------------------------


def test_append_to_list() -> None:
    result = apply_checked({"log": [1]}, [{"type": "append", "path": "log", "value": [2]}])
    assert result == {"log": [1, [2]]}  # one element, not extend


def test_append_to_missing_creates_list() -> None:
    assert apply_checked({}, [{"type": "append", "path": "a.log", "value": "x"}]) == {
        "a": {"log": ["x"]}
    }
    # a missing item with no path: the root itself is the missing target
    assert apply_checked(None, [{"type": "append", "value": 1}]) == [1]


def test_append_at_root_list() -> None:
    assert apply_checked([1], [{"type": "append", "value": 2}]) == [1, 2]


def test_append_to_string() -> None:
    assert apply_checked({"s": "ab"}, [{"type": "append", "path": "s", "value": "cd"}]) == {
        "s": "abcd"
    }
    assert apply_checked("ab", [{"type": "append", "value": "c"}]) == "abc"


def test_append_non_string_to_string_is_error() -> None:
    err = op_error({"s": "ab"}, [{"type": "append", "path": "s", "value": 1}])
    assert str(err) == "update op #0 (append at 's'): cannot append 1 to the string at 's'"


@pytest.mark.parametrize("current", [1, {"a": 1}, None, True])
def test_append_to_other_is_error(current: Any) -> None:
    err = op_error({"t": current}, [{"type": "append", "path": "t", "value": 1}])
    assert "update op #0 (append at 't')" in str(err)
    assert str(err).endswith("not a list or string")


def test_append_at_root_of_dict_is_error() -> None:
    err = op_error({"a": 1}, [{"type": "append", "value": 1}])
    assert "(append at root): value at root is {'a': 1}, not a list or string" in str(err)


# --- sequences and atomicity --------------------------------------------------------------


def test_ops_apply_in_order() -> None:
    ops: list[dict[str, Any]] = [
        {"type": "set", "path": "status", "value": "running"},
        {"type": "increment", "path": "attempts"},
        {"type": "append", "path": "log", "value": "started"},
        {"type": "merge", "path": "meta", "value": {"by": "me"}},
        {"type": "increment", "path": "attempts", "by": 2},
        {"type": "remove", "path": "status"},
        {"type": "decrement", "path": "attempts"},
    ]
    assert apply_checked(None, ops) == {"attempts": 2, "log": ["started"], "meta": {"by": "me"}}


def test_later_failure_leaves_original_untouched() -> None:
    value = {"count": 1, "log": ["a"], "nested": {"x": 1}}
    snapshot = deepcopy(value)
    ops: list[dict[str, Any]] = [
        {"type": "increment", "path": "count"},
        {"type": "append", "path": "log", "value": "b"},
        {"type": "set", "path": "nested.x", "value": 2},
        {"type": "remove", "path": "nested"},
        {"type": "increment", "path": "log"},  # fails: a list is not a number
    ]
    with pytest.raises(UpdateOpError) as info:
        apply_ops(value, ops)
    assert info.value.index == 4
    assert value == snapshot


def test_empty_ops() -> None:
    assert apply_checked(None, []) == {}
    assert apply_checked({"a": 1}, []) == {"a": 1}


def test_accepts_read_only_mappings() -> None:
    from types import MappingProxyType

    op: Mapping[str, Any] = MappingProxyType({"type": "set", "path": "a", "value": 1})
    assert apply_ops({}, [op]) == {"a": 1}


def test_error_pickles() -> None:
    # ops errors cross process boundaries (Ray), so they must survive pickling
    err = op_error({"s": "x"}, [{"type": "increment", "path": "s"}])
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is UpdateOpError
    assert str(clone) == str(err)
    assert clone.index == 0
    assert clone.op == {"type": "increment", "path": "s"}


# --- validate_ops -------------------------------------------------------------------------


def test_validate_ops_returns_plain_dicts() -> None:
    ops = ({"type": "remove", "path": "a"}, {"type": "set", "value": 1})
    checked = validate_ops(ops)
    assert checked == [{"type": "remove", "path": "a"}, {"type": "set", "value": 1}]
    assert all(type(op) is dict for op in checked)


@pytest.mark.parametrize("ops", [None, "set", b"x", {"type": "set", "value": 1}, 5])
def test_validate_ops_rejects_non_list(ops: Any) -> None:
    with pytest.raises(UpdateOpError, match="must be a list of mappings") as info:
        validate_ops(ops)
    assert info.value.index == -1


@pytest.mark.parametrize(
    ("op", "message"),
    [
        (5, "update op #1: expected a mapping, got 5"),
        ({"path": "a"}, "update op #1 (type None at 'a'): missing 'type'"),
        ({"type": "frob", "path": "a"}, "update op #1 (type 'frob' at 'a'): unknown type 'frob'"),
        ({"type": 3}, "update op #1 (type 3 at root): unknown type 3"),
        ({"type": "increment"}, "update op #1 (increment at root): 'increment' needs a non-empty"),
        ({"type": "decrement", "path": ""}, "(decrement at root): 'decrement' needs a non-empty"),
        ({"type": "remove", "path": None}, "(remove at root): 'remove' needs a non-empty 'path'"),
        ({"type": "set", "path": "a"}, "update op #1 (set at 'a'): 'set' needs a 'value'"),
        ({"type": "merge"}, "update op #1 (merge at root): 'merge' needs a 'value'"),
        ({"type": "append", "path": "l"}, "(append at 'l'): 'append' needs a 'value'"),
        ({"type": "set", "pth": "a", "value": 1}, "unexpected field(s) 'pth' for 'set'"),
        ({"type": "remove", "path": "a", "value": 1}, "unexpected field(s) 'value'"),
        ({"type": "set", "path": "a..b", "value": 1}, "(set at 'a..b'): path 'a..b' has an empty"),
        ({"type": "set", "path": 7, "value": 1}, "(set at 7): path must be a string"),
        ({"type": "increment", "path": "n", "by": "2"}, "'by' must be a finite number, got '2'"),
    ],
)
def test_validate_ops_shape_errors(op: Any, message: str) -> None:
    ops = [{"type": "set", "path": "ok", "value": 1}, op]
    with pytest.raises(UpdateOpError) as info:
        validate_ops(ops)
    assert message in str(info.value)
    assert info.value.index == 1
    assert info.value.op is op
    # apply_ops checks the same shape before touching anything
    with pytest.raises(UpdateOpError, match="update op #1"):
        apply_ops({}, ops)


# --- properties ---------------------------------------------------------------------------

if HAS_HYPOTHESIS:
    keys = st.sampled_from(["a", "b", "c", "0", "1"])
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3)
        ),
        max_leaves=10,
    )
    paths = st.lists(keys, max_size=3).map(".".join)
    any_op = st.one_of(
        st.fixed_dictionaries({"type": st.just("set"), "path": paths, "value": json_values}),
        st.fixed_dictionaries(
            {
                "type": st.just("merge"),
                "path": paths,
                "value": st.dictionaries(keys, json_values, max_size=2),
            }
        ),
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["increment", "decrement"]),
                "path": paths.filter(bool),
                "by": st.integers(-5, 5),
            }
        ),
        st.fixed_dictionaries({"type": st.just("remove"), "path": paths.filter(bool)}),
        st.fixed_dictionaries({"type": st.just("append"), "path": paths, "value": json_values}),
    )

    @given(value=json_values, ops=st.lists(any_op, max_size=5))
    def test_property_never_mutates_and_only_raises_update_op_error(
        value: Any, ops: list[dict[str, Any]]
    ) -> None:
        value_before = deepcopy(value)
        try:
            apply_ops(value, ops)
        except UpdateOpError as err:
            assert 0 <= err.index < len(ops)
            assert str(err).startswith(f"update op #{err.index} (")
        assert value == value_before

    @given(value=json_values, path=paths, new=json_values)
    def test_property_set_then_read_back(value: Any, path: str, new: Any) -> None:
        try:
            result = apply_ops(value, [{"type": "set", "path": path, "value": new}])
        except UpdateOpError:
            return
        node = result
        for segment in parse_path(path):
            node = node[int(segment)] if isinstance(node, list) else node[segment]
        assert node == new

    @given(value=json_values, ops=st.lists(any_op, max_size=5))
    def test_property_in_place_matches_copy_on_write(
        value: Any, ops: list[dict[str, Any]]
    ) -> None:
        # A large item is updated in place (raypipe.state.in_place): same result, same error,
        # and a failing op leaves the value exactly as it was.
        expected: Any = None
        error: UpdateOpError | None = None
        try:
            expected = apply_ops(value, ops)
        except UpdateOpError as err:
            error = err
        before = deepcopy(value)
        mutable = deepcopy(value)
        try:
            result = apply_ops(mutable, ops, in_place=True)
        except UpdateOpError as err:
            assert error is not None and str(err) == str(error)
            assert mutable == before
            return
        assert error is None
        assert result == expected
        if isinstance(before, (dict, list)) and all(
                parse_path(op.get("path")) for op in ops):
            assert result is mutable  # changed in place, not rebuilt

    @given(value=json_values.filter(lambda v: isinstance(v, dict)),
           ops=st.lists(any_op, max_size=5))
    def test_property_path_record_rebuilds_both_values(
        value: Any, ops: list[dict[str, Any]]
    ) -> None:
        from raypipe.state.in_place import PathRecord, as_written, changed

        old = deepcopy(value)
        record = PathRecord(value, ops)
        try:
            new = apply_ops(value, ops, in_place=True)
        except UpdateOpError:
            return
        written = record.finish(new, ("g", "k"))
        assert as_written(written, new, 0) == old
        assert as_written(written, new, 1) == new
        assert changed(written) == (old != new)
