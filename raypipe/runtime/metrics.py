"""What the Ray dashboard's metrics (Prometheus/Grafana) show of an app, per step: the
engine's one tally of outcomes (:class:`~raypipe.engine.outcomes.Outcomes`), handed to Ray
every :data:`FLUSH_SECONDS`, and attempt latencies as they come."""

from __future__ import annotations

from typing import Any

from ray.util.metrics import Counter, Gauge, Histogram

from raypipe.engine.outcomes import Outcomes

__all__ = ["DeliveryMetrics"]

_LATENCY_BOUNDARIES = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

#: Counts are handed to Ray at most this often: Ray exports every few seconds anyway, so a
#: metric call per event (four or five per delivery, ~5 us each) bought nothing.
FLUSH_SECONDS = 0.5

#: Prometheus counter per tally event: (name, description).
_COUNTERS = {
    "attempts": ("raypipe_delivery_attempts", "Delivery attempts started"),
    "done": ("raypipe_deliveries_succeeded", "Deliveries done"),
    "failed_attempts": ("raypipe_delivery_attempts_failed",
                        "Attempts that raised, crashed their worker or timed out"),
    "crashes": ("raypipe_delivery_attempts_crashed", "Attempts whose worker died"),
    "retries": ("raypipe_delivery_retries", "Retries scheduled"),
    "dead_lettered": ("raypipe_deliveries_dead_lettered", "Deliveries dead-lettered"),
}


class DeliveryMetrics:
    """Created in the dispatcher actor, reading the engine's tally."""

    def __init__(self, app: str, outcomes: Outcomes, clock: Any) -> None:
        tags = ("app", "step")
        self.app = app
        self._outcomes = outcomes
        self._clock = clock
        self._counters = {event: Counter(name, doc, tag_keys=tags)
                          for event, (name, doc) in _COUNTERS.items()}
        self._exported: dict[tuple[str, str], int] = {}
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
        self._oldest = Gauge("raypipe_oldest_in_flight_seconds",
                             "Age of the step's oldest delivery in flight", tag_keys=tags)
        self._aged: set[str] = set()
        self._info = Gauge("raypipe_app_version", "1 for the version the app runs (its "
                           "`version` tag), 0 for the one before", tag_keys=("app", "version"))
        self._version = ""
        self._pool = {key: Gauge(f"raypipe_pool_{key}", doc, tag_keys=tags) for key, doc in (
            ("actors", "Actors of the step's pool that have started"),
            ("busy", "Actors of the step's pool running a batch"),
            ("backlog", "Deliveries waiting for an actor of the step's pool"))}

    def running(self, version: str) -> None:
        """The version the dispatcher runs now (a deploy or redeploy)."""
        if self._version and self._version != version:
            self._info.set(0, tags={"app": self.app, "version": self._version})
        self._version = version
        self._info.set(1, tags={"app": self.app, "version": version})

    def latency(self, step: str, seconds: float) -> None:
        self._latency.observe(seconds, tags={"app": self.app, "step": step})

    def workflow(self, flow: str, outcome: str) -> None:
        self._workflows.inc(tags={"app": self.app, "flow": flow, "outcome": outcome})

    def flush(self, pools: dict[str, dict[str, int]] | None = None) -> None:
        """Hand Ray what the tally gained since the last flush, and the gauges (``pools``:
        each actor pool's stats, by step)."""
        for step, stats in (pools or {}).items():
            for key, gauge in self._pool.items():
                gauge.set(stats.get(key, 0), tags={"app": self.app, "step": step})
        for step, counts in self._outcomes.counts.items():
            for event, counter in self._counters.items():
                n = counts.get(event, 0)
                seen = self._exported.get((event, step), 0)
                if n > seen:
                    counter.inc(n - seen, tags={"app": self.app, "step": step})
                    self._exported[event, step] = n
        self._in_flight.set(len(self._outcomes.in_flight), tags={"app": self.app})
        ages = self._outcomes.oldest(self._clock.monotonic())
        for step in self._aged - set(ages):
            self._oldest.set(0, tags={"app": self.app, "step": step})
        for step, age in ages.items():
            self._oldest.set(age, tags={"app": self.app, "step": step})
        self._aged = set(ages)
