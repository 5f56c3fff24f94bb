"""What the Ray dashboard's metrics (Prometheus/Grafana) show of an app, per step."""

from __future__ import annotations

from ray.util.metrics import Counter, Gauge, Histogram

__all__ = ["DeliveryMetrics"]

_LATENCY_BOUNDARIES = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]


class DeliveryMetrics:
    """Created in the dispatcher actor: every delivery passes through it."""

    def __init__(self, app: str) -> None:
        tags = ("app", "step")
        self.app = app
        self.started = Counter("raypipe_delivery_attempts", "Delivery attempts started",
                               tag_keys=tags)
        self.succeeded = Counter("raypipe_deliveries_succeeded", "Deliveries done",
                                 tag_keys=tags)
        self.failed = Counter("raypipe_delivery_attempts_failed", "Attempts that raised",
                              tag_keys=tags)
        self.retried = Counter("raypipe_delivery_retries", "Retries scheduled", tag_keys=tags)
        self.dead = Counter("raypipe_deliveries_dead_lettered", "Deliveries dead-lettered",
                            tag_keys=tags)
        self.latency = Histogram("raypipe_step_latency_seconds", "Attempt duration",
                                 boundaries=_LATENCY_BOUNDARIES, tag_keys=tags)
        self.workflows = Counter(
            "raypipe_workflows_completed",
            "Traces (a request, cron tick or enqueue and everything downstream) with no "
            "delivery left in flight; outcome is dead_lettered if any of them was",
            tag_keys=("app", "flow", "outcome"))
        self.in_flight = Gauge("raypipe_deliveries_in_flight",
                               "Deliveries accepted and not yet done or dead-lettered",
                               tag_keys=("app",))

    def tags(self, step: str) -> dict[str, str]:
        return {"app": self.app, "step": step}
