"""A loaded app: its steps and streams, indexed the ways the runtime looks them up."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from raypipe import triggers as t
from raypipe.settings import Settings
from raypipe.steps import Step

if TYPE_CHECKING:
    from raypipe.streams.config import StreamConfig

__all__ = ["App"]


@dataclass
class App:
    root: Path
    settings: Settings
    steps: dict[str, Step]
    streams: dict[str, StreamConfig] = field(default_factory=dict)
    #: A hash of the app's files as deployed (``""`` when loaded without one).
    version: str = ""
    #: Step files in other languages (a Motia app's TypeScript), relative to ``root``: not
    #: run, and said so by ``raypipe flows`` and ``raypipe dev``.
    skipped: tuple[str, ...] = ()
    _by_topic: dict[str, list[Step]] = field(init=False, repr=False)
    _subscribers: dict[str, list[Step]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_topic: dict[str, list[Step]] = defaultdict(list)
        for step in self.steps.values():
            for topic in dict.fromkeys(step.subscribes):
                by_topic[topic].append(step)
        self._by_topic = dict(by_topic)
        self._subscribers = {}

    @property
    def name(self) -> str:
        return self.settings.name

    def subscribers(self, topic: str) -> list[Step]:
        """Steps a message on ``topic`` is delivered to; ``"*"`` subscribes to every topic.
        The list is the app's own: not to be changed."""
        found = self._subscribers.get(topic)
        if found is None:
            exact = self._by_topic.get(topic, [])
            found = exact + [s for s in self._by_topic.get("*", []) if s not in exact]
            if found:  # kept for topics steps subscribe to, not for every name asked
                self._subscribers[topic] = found
        return found

    def drawn_subscribers(self, topic: str) -> list[Step]:
        """Steps that subscribe to ``topic`` in the diagram only (``virtual_subscribes``)."""
        return [s for s in self.steps.values() if topic in s.config.virtual_subscribes]

    def with_trigger(self, kind: type[t.Trigger]) -> list[Step]:
        return [s for s in self.steps.values() if s.triggers_of(kind)]

    @property
    def flows(self) -> list[str]:
        return sorted({f for s in self.steps.values() for f in s.config.flows})
