"""Trigger kinds: the :class:`TriggerKind` enum, what a kind declares (:class:`KindSpec`), and
the registry the rest of raypipe asks instead of switching on kinds.

A kind lives in one module of :mod:`raypipe.trigger_kinds`: its trigger type, its
constructor, and its :class:`KindSpec` (how it is read from both Motia dict shapes, checked,
labelled and drawn, matched against a change, and turned into a handler's input). Adding a
kind touches four files: its module, a member of :class:`TriggerKind` with the module's name in
``_MODULES`` below, its constructor among ``raypipe.__all__``, and its test.

A leaf: the kinds' modules are imported on the first look-up, not here.
"""

from __future__ import annotations

import abc
import functools
import importlib
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Protocol

from raypipe.errors import ConfigFieldError

__all__ = [
    "ChangeSource",
    "Condition",
    "KindSpec",
    "Source",
    "Trigger",
    "TriggerKind",
    "check_condition",
    "check_condition_field",
    "firing_on",
    "get",
    "kind_of",
    "kinds",
    "lookup",
    "pick",
    "read_topics",
    "trigger_types",
    "wants_ctx",
]

#: ``condition(input)`` or ``condition(input, ctx)``, sync or async; gates the handler.
Condition = Callable[..., "bool | Awaitable[bool]"]


class ChangeSource(str, Enum):
    """Where the change kinds' changes are committed: each fires its kinds' triggers."""

    STATE = "state"
    STREAM = "stream"


class TriggerKind(str, Enum):
    """What starts a step. A ``str``: ``TriggerKind.HTTP == "http"``, as Motia compares
    ``trigger.type``, and journals written as JSON read back as the same kind."""

    HTTP = "http"
    QUEUE = "queue"
    CRON = "cron"
    STATE = "state"
    STREAM = "stream"

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


#: Where each kind is declared (imported on the first look-up: the kinds import schemas and
#: models, and this module stays a leaf the engine can import).
_MODULES: dict[TriggerKind, str] = {
    TriggerKind.HTTP: "raypipe.trigger_kinds.http",
    TriggerKind.QUEUE: "raypipe.trigger_kinds.queue",
    TriggerKind.CRON: "raypipe.trigger_kinds.cron",
    TriggerKind.STATE: "raypipe.trigger_kinds.state",
    TriggerKind.STREAM: "raypipe.trigger_kinds.stream",
}


class Trigger(Protocol):
    """Any kind's trigger: a frozen dataclass with its kind as ``type`` and a condition."""

    @property
    def type(self) -> TriggerKind: ...

    @property
    def condition(self) -> Condition | None: ...


@dataclass(frozen=True)
class Source:
    """A pseudo node of the flow graph that a trigger hangs from (the state, a stream)."""

    key: str
    label: str
    #: The label of the edge from it.
    topic: str


class KindSpec(abc.ABC):
    """What a trigger kind declares. One instance per kind, ``SPEC`` in its module."""

    kind: ClassVar[TriggerKind]
    trigger_type: ClassVar[type[Any]]
    #: Other names of the kind in Motia's dicts (``"api"`` for http, ``"event"`` for queue).
    aliases: ClassVar[tuple[str, ...]] = ()
    #: The kind's name as Motia 0.x's top-level ``type`` (``None``: no 0.x shape).
    legacy_type: ClassVar[str | None] = None
    #: Where a 0.x dict keeps a field the 1.x trigger has (for naming fields in errors).
    legacy_fields: ClassVar[Mapping[str, str]] = {}
    #: The node's shape in a Mermaid flow chart: (opening, closing).
    shape: ClassVar[tuple[str, str]] = ('["', '"]')
    #: Whether the handler takes an input (cron's takes only ``ctx``).
    has_input: ClassVar[bool] = True
    #: Whether the condition is checked where the delivery runs (queue, cron); the change
    #: kinds check it where the change was committed, http in the route.
    condition_at_run: ClassVar[bool] = False
    #: The changes a change kind fires on (``matches`` picks its triggers' changes).
    fires_on: ClassVar[ChangeSource | None] = None

    @abc.abstractmethod
    def from_dict(self, d: Mapping[str, Any], where: str) -> Trigger:
        """The trigger a Motia 1.x dict (``{"type": ..., ...}``) describes."""

    def from_legacy(self, d: Mapping[str, Any]) -> list[Trigger]:
        """The triggers a Motia 0.x step config (``{"type": legacy_type, ...}``) describes."""
        return [self.from_dict(d, "")]

    def check(self, trigger: Any, where: str) -> Trigger:
        """The trigger with its fields checked and its schemas compiled; raises
        :class:`~raypipe.errors.ConfigFieldError` naming the field under ``where``."""
        return trigger  # type: ignore[no-any-return]

    @abc.abstractmethod
    def label(self, trigger: Any) -> str:
        """How the trigger is shown (``"POST /api/x"``, a topic, a cron expression)."""

    def source(self, trigger: Any) -> Source | None:
        """The pseudo node the trigger hangs from in the flow graph, if any."""
        return None

    def handler_input(self, step: Any, delivery: Any) -> tuple[Any, Trigger]:
        """What the handler of ``step`` gets for an engine delivery of this kind, and the
        trigger that fired. Kinds the engine does not deliver (http) raise."""
        raise TypeError(f"{self.kind} triggers are not delivered by the engine")

    def matches(self, trigger: Any, change: Any) -> bool:
        """Whether a committed change concerns the trigger (the change kinds)."""
        raise TypeError(f"{self.kind} triggers do not fire on changes")


@functools.cache
def _registry() -> dict[TriggerKind, KindSpec]:
    specs: dict[TriggerKind, KindSpec] = {}
    for kind, module in _MODULES.items():
        spec = importlib.import_module(module).SPEC
        if not isinstance(spec, KindSpec) or spec.kind is not kind:
            raise TypeError(f"{module}.SPEC must be the KindSpec of {kind!r}")
        specs[kind] = spec
    return specs


@functools.cache
def _names() -> dict[str, KindSpec]:
    out: dict[str, KindSpec] = {}
    for spec in _registry().values():
        for name in (spec.kind.value, *spec.aliases):
            out[name] = spec
    return out


def kinds() -> list[KindSpec]:
    """Every kind's spec, in the enum's order."""
    return list(_registry().values())


def firing_on(source: ChangeSource) -> list[KindSpec]:
    """The kinds that fire on changes committed at ``source``."""
    return [spec for spec in kinds() if spec.fires_on == source]


def get(kind: TriggerKind | str) -> KindSpec:
    """The spec of a kind (a plain string works: journals hold them so)."""
    return _registry()[kind]  # type: ignore[index]


def lookup(name: str) -> KindSpec | None:
    """The spec a Motia dict's ``type`` names (aliases included), or ``None``."""
    return _names().get(name)


def kind_of(trigger: Trigger) -> KindSpec:
    return get(trigger.type)


@functools.cache
def trigger_types() -> tuple[type[Any], ...]:
    """Every kind's trigger type (for ``isinstance``)."""
    return tuple(spec.trigger_type for spec in kinds())


@functools.lru_cache(maxsize=4096)
def wants_ctx(fn: Callable[..., Any]) -> bool:
    """Whether a condition takes ``(input, ctx)``; asked on every evaluation, so cached."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2


async def check_condition(condition: Condition | None, value: Any, ctx: Any) -> bool:
    """Evaluate a trigger condition, passing ``ctx`` only to conditions that take it."""
    if condition is None:
        return True
    result = condition(value, ctx) if wants_ctx(condition) else condition(value)
    if inspect.isawaitable(result):
        result = await result
    return bool(result)


def pick(d: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    """The first of ``names`` that ``d`` has (Motia writes camelCase, Python users
    snake_case)."""
    for n in names:
        if n in d:
            return d[n]
    return default


def read_topics(value: Any, where: str) -> tuple[str, ...]:
    """``["a", {"topic": "b", "label": ...}]`` -> ``("a", "b")``."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigFieldError(where, "must be a list of topics")
    out = []
    for i, item in enumerate(value):
        topic = item.get("topic") if isinstance(item, Mapping) else item
        if not isinstance(topic, str) or not topic:
            raise ConfigFieldError(f"{where}[{i}]", "must be a topic name or {'topic': ...}")
        out.append(topic)
    return tuple(out)


def check_condition_field(condition: Any, where: str) -> None:
    if condition is not None and not callable(condition):
        raise ConfigFieldError(f"{where}.condition", "must be a function")
