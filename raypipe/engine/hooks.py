"""What the engine tells its host: spans for traces, latencies, and effects to forget."""

from __future__ import annotations

from typing import Protocol

from raypipe.engine.delivery import Delivery
from raypipe.engine.outcomes import TraceOutcome
from raypipe.steps import Step

__all__ = ["Hooks", "NoHooks"]


class Hooks(Protocol):
    """What the engine tells its host: spans for traces, latencies, and effects to forget."""

    def attempt_started(self, step: Step, d: Delivery) -> None: ...
    def attempt_finished(self, step: Step, d: Delivery, outcome: str, error: str | None,
                         seconds: float) -> None: ...
    def workflow_finished(self, flow: str, outcome: TraceOutcome) -> None: ...
    def released(self, delivery_ids: list[str]) -> None: ...


class NoHooks:
    def attempt_started(self, step: Step, d: Delivery) -> None:
        pass

    def attempt_finished(self, step: Step, d: Delivery, outcome: str, error: str | None,
                         seconds: float) -> None:
        pass

    def workflow_finished(self, flow: str, outcome: TraceOutcome) -> None:
        pass

    def released(self, delivery_ids: list[str]) -> None:
        pass
