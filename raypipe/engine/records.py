"""What the engine keeps about deliveries besides the deliveries: attempts running now, failed
attempts, dead letters. Dataclasses, a leaf of the engine."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from raypipe.engine.delivery import Delivery

__all__ = ["DeadLetter", "FailedAttempt", "RunningAttempt"]


@dataclass
class RunningAttempt:
    """An attempt running now (for the stuck watch and the oldest-in-flight ages)."""

    step: str
    #: The engine clock's monotonic time when it started.
    started: float
    attempt: int
    #: Whether the stuck watch has warned of it.
    warned: bool = False


@dataclass(frozen=True)
class FailedAttempt:
    attempt: int
    #: ``"KeyError: 'x'"``.
    error: str
    #: ``"error"``, ``"crash"`` (the process died or exited) or ``"timeout"``.
    cause: str
    traceback: str | None
    #: Epoch seconds.
    at: float


@dataclass
class DeadLetter:
    """A delivery that failed every attempt: kept, with each failure, until it is replayed."""

    id: str
    step: str
    delivery: Delivery
    errors: list[FailedAttempt] = field(default_factory=list)
    trace_id: str = ""
    #: Epoch seconds.
    dead_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """As journaled: JSON-able."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeadLetter:
        return cls(d["id"], d["step"], Delivery.from_dict(d["delivery"]),
                   [FailedAttempt(**e) for e in d.get("errors", ())], d.get("trace_id", ""),
                   d.get("dead_at", 0.0))

    def public(self) -> dict[str, Any]:
        """As the CLI, the admin API and the workbench show it."""
        d = self.delivery
        return {"id": self.id, "step": self.step,
                "errors": [dataclasses.asdict(e) for e in self.errors],
                "trace_id": self.trace_id, "dead_at": self.dead_at,
                "kind": str(d.kind), "topic": d.topic, "message_id": d.message_id,
                "group_id": d.group_id, "payload": d.payload}
