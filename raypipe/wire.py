"""The values on a delivery's path between processes, as they travel: lists of builtins.

Ray serialises an argument or a result with msgpack, in C, as long as it holds only dicts,
lists, strings, numbers and ``None``; anything else (a dataclass, a named tuple, a tuple, a
``str`` enum) goes through cloudpickle's Python hooks, object by object. A delivery, a
message and a write's origin cross a process boundary once or twice per delivery, so each is
sent as a list and made again on arrival (bench/results/report.md). Ray-free: the actors'
entry points and the tasks call these.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Sequence
from typing import Any

from raypipe.effects import Effect
from raypipe.engine.delivery import Delivery
from raypipe.messages import Message
from raypipe.runtime_protocols import Origin
from raypipe.trigger_kind import TriggerKind

__all__ = [
    "Wire",
    "call_out",
    "calls_in",
    "deliveries_in",
    "deliveries_out",
    "delivery_in",
    "delivery_out",
    "messages_in",
    "messages_out",
    "origin_in",
    "origin_out",
    "outcomes_out",
]

#: A value as it travels: a list of builtins.
Wire = list[Any]


def origin_out(origin: Origin) -> Wire:
    effect = origin.effect
    if effect is None:
        return [origin.trace_id, origin.step]
    return [origin.trace_id, origin.step, effect.owner, effect.id]


def origin_in(wire: Sequence[Any]) -> Origin:
    if len(wire) == 2:
        return Origin(wire[0], wire[1])
    return Origin(wire[0], wire[1], Effect(wire[2], wire[3]))


def call_out(method: str, args: tuple[Any, ...]) -> Wire:
    """A batched call (:class:`~raypipe.engine.loopbatch.LoopBatcher`): a write's origin, its
    last argument, as a list too."""
    if args and type(args[-1]) is Origin:
        return [method, [*args[:-1], origin_out(args[-1])], True]
    return [method, list(args)]


def calls_in(calls: Sequence[Sequence[Any]]) -> list[tuple[str, tuple[Any, ...]]]:
    """What :func:`call_out` sent, as :func:`~raypipe.engine.loopbatch.run_calls` takes it.
    A call made in this process (a tuple) is taken as it is."""
    made: list[tuple[str, tuple[Any, ...]]] = []
    for call in calls:
        if type(call) is tuple:
            made.append(call)  # type: ignore[arg-type]
            continue
        args = call[1]
        if len(call) > 2:
            args = (*args[:-1], origin_in(args[-1]))
        made.append((call[0], tuple(args)))
    return made


def outcomes_out(outcomes: Sequence[tuple[bool, Any]]) -> list[list[Any]]:
    """Batched calls' outcomes: an ``(old, new)`` pair as a list (a failure's exception still
    travels pickled)."""
    return [[ok, list(value) if type(value) is tuple else value] for ok, value in outcomes]


#: A delivery's and a message's fields in their constructors' order, read in C: the wire
#: form follows the dataclasses, so a field added to one travels without a change here.
_DELIVERY_FIELDS = tuple(f.name for f in dataclasses.fields(Delivery))
_delivery_values = operator.attrgetter(*_DELIVERY_FIELDS)
_KIND = _DELIVERY_FIELDS.index("kind")
_message_values = operator.attrgetter(*(f.name for f in dataclasses.fields(Message)))


def delivery_out(d: Delivery) -> Wire:
    values = list(_delivery_values(d))
    values[_KIND] = d.kind.value  # a str enum: Ray would pickle it
    return values


def delivery_in(wire: Sequence[Any] | Delivery) -> Delivery:
    if type(wire) is Delivery:
        return wire
    values = list(wire)  # type: ignore[arg-type]
    values[_KIND] = TriggerKind(values[_KIND])
    return Delivery(*values)


def deliveries_out(deliveries: Sequence[Delivery]) -> list[Wire]:
    return [delivery_out(d) for d in deliveries]


def deliveries_in(wires: Sequence[Sequence[Any] | Delivery]) -> list[Delivery]:
    return [delivery_in(w) for w in wires]


def messages_out(messages: Sequence[Message]) -> list[Wire]:
    return [list(_message_values(m)) for m in messages]


def messages_in(wires: Sequence[Sequence[Any] | Message]) -> list[Message]:
    """What :func:`messages_out` sent (a :class:`Message` is taken as it is)."""
    return [w if type(w) is Message else Message(*w) for w in wires]  # type: ignore[misc]
