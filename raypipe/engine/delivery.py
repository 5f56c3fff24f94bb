"""The engine's value type: one message (or event) for one step (Ray-free, a leaf)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from raypipe.trigger_kind import TriggerKind

__all__ = ["Delivery"]


@dataclass(frozen=True)
class Delivery:
    """One message (or event) for one step. Small and picklable: it is a Ray task argument.

    ``id`` names this delivery across all its runs: its attempts, a recovery after an outage
    and a replay from the dead letters. Its effects are deduplicated by it (they are
    :class:`~raypipe.effects.Effect` s owned by it). ``parent`` is the delivery whose effect
    caused this one (its enqueue, or its write that fired a trigger), ``None`` for work from
    outside (an HTTP request, a cron tick, the CLI). ``seq`` orders deliveries by acceptance,
    across restarts: FIFO groups resume in it."""

    id: str
    step: str
    kind: TriggerKind
    payload: Any
    trace_id: str
    topic: str | None = None
    message_id: str | None = None
    group_id: str | None = None
    attempt: int = 1
    parent: str | None = None
    seq: int = 0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Delivery:
        """A delivery from its ``dataclasses.asdict`` read back from JSON."""
        return cls(**{**d, "kind": TriggerKind(d["kind"])})
