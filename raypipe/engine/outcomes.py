"""The one tally of what happened to deliveries: ``raypipe status``, the workbench and the
Prometheus metrics all read it. Also what is in flight now, and since when, per step.

A workflow (a trace) is counted when its last delivery in flight finishes. One dispatcher
sees every delivery of a trace and counts it here; one of several shards sees only its part,
so it keeps the trace's running counts (:class:`TraceCounts`) for
:mod:`raypipe.engine.workflow_count` to add up across the shards."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["EVENTS", "Event", "Outcomes", "TraceCounts", "TraceOutcome"]

#: What the tally counts per step.
Event = Literal[
    "accepted",         # a delivery was taken on (journaled, then started)
    "attempts",         # an attempt started
    "done",             # a delivery finished
    "failed_attempts",  # an attempt raised, crashed its worker or timed out
    "crashes",          # of those, attempts whose worker died
    "timeouts",         # of those, attempts stopped at their visibility_timeout
    "retries",          # a retry was scheduled
    "dead_lettered",    # a delivery failed its last attempt
    "replayed",         # a dead letter was run again
    "duplicates",       # a message or delivery already accepted was offered again
    "tasks",            # Ray tasks submitted for the step
]
EVENTS: tuple[Event, ...] = Event.__args__  # type: ignore[attr-defined]

TraceOutcome = Literal["completed", "dead_lettered"]


@dataclass
class _Trace:
    open: int = 0
    dead: bool = False


@dataclass
class TraceCounts:
    """One shard's part of a trace, since this shard's life began (both counts only grow)."""

    accepted: int = 0
    finished: int = 0
    dead: bool = False
    #: The flow of the step whose delivery finished last here, and when (wall clock).
    flow: str = ""
    at: float = 0.0


@dataclass
class Outcomes:
    """Counts per step (``"*"`` holds app-wide ones: ``workflows_completed``,
    ``workflows_dead_lettered``), and the deliveries in flight with when each was accepted."""

    counts: defaultdict[str, defaultdict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    #: delivery id -> (step, monotonic time accepted)
    in_flight: dict[str, tuple[str, float]] = field(default_factory=dict)
    _traces: dict[str, _Trace] = field(default_factory=dict)
    #: Whether workflows (traces) are counted here: not by one of several dispatcher shards,
    #: which keeps :attr:`parts` instead.
    traces: bool = True
    #: With ``traces`` off: this shard's part of each trace it saw, until the trace is
    #: counted (:meth:`forget_parts`).
    parts: dict[str, TraceCounts] = field(default_factory=dict)

    def count(self, step: str, event: Event | str, n: int = 1) -> None:
        self.counts[step][event] += n

    def started(self, delivery_id: str, step: str, trace_id: str, now: float) -> None:
        """A delivery accepted: in flight until :meth:`finished`."""
        self.count(step, "accepted")
        self.in_flight[delivery_id] = (step, now)
        if self.traces:
            self._traces.setdefault(trace_id, _Trace()).open += 1
        else:
            self.parts.setdefault(trace_id, TraceCounts()).accepted += 1

    def finished(self, delivery_id: str, trace_id: str, dead: bool, flow: str = "",
                 now: float = 0.0) -> TraceOutcome | None:
        """A delivery done or dead-lettered. Returns its trace's outcome when it was the
        trace's last delivery in flight. Downstream deliveries are accepted before the one
        that caused them finishes, so a trace never looks complete early."""
        self.in_flight.pop(delivery_id, None)
        if not self.traces:
            part = self.parts.get(trace_id)
            if part is not None:
                part.finished += 1
                part.dead |= dead
                part.flow, part.at = flow, now
            return None
        trace = self._traces.get(trace_id)
        if trace is None:
            return None
        trace.open -= 1
        trace.dead |= dead
        if trace.open > 0:
            return None
        del self._traces[trace_id]
        outcome: TraceOutcome = "dead_lettered" if trace.dead else "completed"
        self.workflow_finished(outcome)
        return outcome

    def workflow_finished(self, outcome: TraceOutcome) -> None:
        self.count("*", f"workflows_{outcome}")

    def forget_parts(self, trace_ids: list[str]) -> None:
        """These traces were counted: their parts go."""
        for trace_id in trace_ids:
            self.parts.pop(trace_id, None)

    def oldest(self, now: float) -> dict[str, float]:
        """Per step: the age in seconds of its oldest delivery in flight."""
        ages: dict[str, float] = {}
        for step, since in self.in_flight.values():
            age = now - since
            if age > ages.get(step, -1.0):
                ages[step] = age
        return ages

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {step: dict(c) for step, c in self.counts.items()}

    def stats(self, now: float) -> dict[str, Any]:
        stats = {"in_flight": len(self.in_flight), "oldest_in_flight": self.oldest(now),
                 "steps": self.snapshot()}
        if not self.traces:
            stats["trace_parts"] = len(self.parts)  # traces seen here and not yet counted
        return stats
