"""Steps: the :class:`StepConfig` users write and the loaded :class:`Step` the runtime works
with. Reading a config from Motia's dict shapes and checking it is :mod:`raypipe.step_configs`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from raypipe.ray_options import RayOptions
from raypipe.trigger_kind import Trigger
from raypipe.trigger_kinds.queue import QueueTrigger

__all__ = ["Step", "StepConfig"]

T = TypeVar("T")


@dataclass(frozen=True)
class StepConfig:
    name: str
    triggers: Sequence[Trigger] = ()
    #: Topics the handler may enqueue.
    enqueues: Sequence[str] = ()
    flows: Sequence[str] = ()
    description: str = ""
    #: Drawn in the flow diagram only; never delivered.
    virtual_enqueues: Sequence[str] = ()
    virtual_subscribes: Sequence[str] = ()
    #: What the step's Ray tasks ask of the cluster (GPUs, memory, custom resources, ...).
    ray: RayOptions = field(default_factory=RayOptions)

    @property
    def is_noop(self) -> bool:
        return not self.triggers


@dataclass
class Step:
    """A loaded step: its config (schemas compiled) and handler, and where it came from."""

    config: StepConfig
    handler: Callable[..., Any] | None
    #: Path relative to the app directory, as users see it in errors.
    file: str
    module: str
    #: Motia's leniency: a response off its schema and an undeclared enqueue log a warning
    #: instead of failing (Motia-shaped configs unless the ``strict`` setting is on).
    lenient: bool = False
    subscribes: tuple[str, ...] = field(init=False)

    #: The first queue trigger on each topic, with its place among the step's triggers.
    _queue_triggers: dict[str, tuple[int, QueueTrigger]] = field(init=False, repr=False,
                                                                 compare=False)

    def __post_init__(self) -> None:
        self.subscribes = tuple(
            tr.topic for tr in self.config.triggers if isinstance(tr, QueueTrigger)
        )
        # Looked up for every delivery and every enqueue: the first trigger per topic.
        self._queue_triggers = {}
        for i, tr in enumerate(self.triggers_of(QueueTrigger)):
            self._queue_triggers.setdefault(tr.topic, (i, tr))

    @property
    def name(self) -> str:
        return self.config.name

    def triggers_of(self, kind: type[T]) -> list[T]:
        return [tr for tr in self.config.triggers if isinstance(tr, kind)]

    def queue_trigger(self, topic: str) -> QueueTrigger:
        """The first of the step's queue triggers on ``topic`` or on every topic (``"*"``)."""
        found = self._queue_triggers.get(topic)
        anything = self._queue_triggers.get("*")
        if found is None or (anything is not None and anything[0] < found[0]):
            found = anything
        if found is None:
            raise KeyError(f"step {self.name!r} has no queue trigger on {topic!r}")
        return found[1]
