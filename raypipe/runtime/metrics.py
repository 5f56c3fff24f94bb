"""What the Ray dashboard's metrics (Prometheus/Grafana) show of an app, per step."""

from __future__ import annotations

import asyncio
from collections import Counter as Tally
from typing import Literal

from ray.util.metrics import Counter, Gauge, Histogram

__all__ = ["DeliveryMetrics"]

_LATENCY_BOUNDARIES = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

#: Counts are handed to Ray at most this often: Ray exports every few seconds anyway, so a
#: metric call per event (four or five per delivery, ~5 us each) bought nothing.
FLUSH_SECONDS = 0.5

Event = Literal["started", "succeeded", "failed", "retried", "dead"]


class DeliveryMetrics:
    """Created in the dispatcher actor: every delivery passes through it. Counts and the
    in-flight gauge are tallied here and handed to Ray every :data:`FLUSH_SECONDS`;
    latencies go to Ray as they come (a histogram takes one value at a time)."""

    def __init__(self, app: str) -> None:
        tags = ("app", "step")
        self.app = app
        self._counters: dict[Event, Counter] = {
            "started": Counter("raypipe_delivery_attempts", "Delivery attempts started",
                               tag_keys=tags),
            "succeeded": Counter("raypipe_deliveries_succeeded", "Deliveries done",
                                 tag_keys=tags),
            "failed": Counter("raypipe_delivery_attempts_failed", "Attempts that raised",
                              tag_keys=tags),
            "retried": Counter("raypipe_delivery_retries", "Retries scheduled", tag_keys=tags),
            "dead": Counter("raypipe_deliveries_dead_lettered", "Deliveries dead-lettered",
                            tag_keys=tags),
        }
        self._latency = Histogram("raypipe_step_latency_seconds", "Attempt duration",
                                  boundaries=_LATENCY_BOUNDARIES, tag_keys=tags)
        self._workflows = Counter(
            "raypipe_workflows_completed",
            "Traces (a request, cron tick or enqueue and everything downstream) with no "
            "delivery left in flight; outcome is dead_lettered if any of them was",
            tag_keys=("app", "flow", "outcome"))
        self._in_flight = Gauge("raypipe_deliveries_in_flight",
                                "Deliveries accepted and not yet done or dead-lettered",
                                tag_keys=("app",))
        self._tally: Tally[tuple[Event, str]] = Tally()
        self._in_flight_now: int | None = None
        self._flush_due = False

    def count(self, event: Event, step: str) -> None:
        self._tally[event, step] += 1
        self._schedule()

    def in_flight(self, deliveries: int) -> None:
        self._in_flight_now = deliveries
        self._schedule()

    def latency(self, step: str, seconds: float) -> None:
        self._latency.observe(seconds, tags={"app": self.app, "step": step})

    def workflow(self, flow: str, outcome: str) -> None:
        self._workflows.inc(tags={"app": self.app, "flow": flow, "outcome": outcome})

    def _schedule(self) -> None:
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        self._flush_due = False
        tally, self._tally = self._tally, Tally()
        for (event, step), n in tally.items():
            self._counters[event].inc(n, tags={"app": self.app, "step": step})
        if self._in_flight_now is not None:
            self._in_flight.set(self._in_flight_now, tags={"app": self.app})
            self._in_flight_now = None
