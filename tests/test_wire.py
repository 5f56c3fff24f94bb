"""The delivery path's values as they travel between processes (raypipe.wire): msgpack's own
types only, so Ray serialises them in C, and made again equal on arrival."""

from typing import Any

import msgpack
import pytest

from raypipe import wire
from raypipe.effects import Effect
from raypipe.engine.delivery import Delivery
from raypipe.messages import Message
from raypipe.runtime_protocols import Origin
from raypipe.trigger_kind import TriggerKind


def _native(value: Any) -> Any:
    """``value`` after a trip through msgpack as Ray packs it (strict: a tuple, an enum or an
    object of ours is refused, where Ray would pickle it)."""
    packed = msgpack.packb(value, use_bin_type=True, strict_types=True)
    return msgpack.unpackb(packed, raw=False, strict_map_key=False)


@pytest.mark.parametrize("origin", [Origin("t1"), Origin("t1", "step-a"),
                                    Origin("t1", "step-a", Effect("d1", "e1"))])
def test_an_origin_travels(origin: Origin) -> None:
    assert wire.origin_in(_native(wire.origin_out(origin))) == origin


@pytest.mark.parametrize("kind", list(TriggerKind))
def test_a_delivery_travels(kind: TriggerKind) -> None:
    d = Delivery("d1", "step-a", kind, {"x": [1, 2.5, None, "s"]}, "t1", topic="a.b",
                 message_id="m1", group_id="g", attempt=3, parent="p1", seq=42)
    back = wire.deliveries_in(_native(wire.deliveries_out([d])))
    assert back == [d] and type(back[0].kind) is TriggerKind
    assert wire.delivery_in(d) is d  # one made in this process is taken as it is


def test_a_message_travels() -> None:
    m = Message("a.b", {"n": 1}, "t1", group_id="g", source="s", parent="p", id="m1",
                enqueued_at=1.5)
    assert wire.messages_in(_native(wire.messages_out([m, Message("c", None, "t2")])))[0] == m
    assert wire.messages_in([m])[0] is m


def test_batched_calls_and_their_outcomes_travel() -> None:
    origin = Origin("t1", "step-a", Effect("d1", "e1"))
    calls = [wire.call_out("get", ("g", "k")),
             wire.call_out("update", ("g", "k", [{"type": "increment", "path": "n"}], origin)),
             wire.call_out("set", ("g", "k", {"a": 1}, Origin("t2")))]
    assert wire.calls_in(_native(calls)) == [
        ("get", ("g", "k")),
        ("update", ("g", "k", [{"type": "increment", "path": "n"}], origin)),
        ("set", ("g", "k", {"a": 1}, Origin("t2")))]
    # A call made in-process (a tuple) passes as it is.
    assert wire.calls_in([("get", ("g", "k"))]) == [("get", ("g", "k"))]
    # An (old, new) pair goes as a list; a JSON list value is left alone.
    assert _native(wire.outcomes_out([(True, (None, {"n": 1})), (True, [1, 2]),
                                      (True, None)])) == [[True, [None, {"n": 1}]],
                                                          [True, [1, 2]], [True, None]]


def test_an_app_spec_travels_pickled_once() -> None:
    from raypipe.runtime.spec import AppSpec, spec_arg, spec_of
    from raypipe.settings import Settings

    spec = AppSpec("/srv/app", Settings(name="a", shards=2), "v1", digest="d" * 64)
    arg = spec_arg(spec)
    assert type(arg) is bytes and _native(arg) == arg
    assert spec_of(_native(arg)) == spec
    assert spec_of(_native(arg)) is spec_of(_native(arg))  # made once per process
    assert spec_of(spec) is spec
