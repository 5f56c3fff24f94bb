"""What the Ray dashboard's Prometheus metrics show of an app: scraped from the session Ray's
metrics export, as Prometheus would."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.conftest import Deploy, wait_for
from tests.runtime.test_guarantees import Running

APP = Path(__file__).resolve().parent.parent / "apps" / "guarantees"


def scrape(app: str) -> dict[str, float]:
    """``{"name{label=...}": value}`` of the raypipe series of ``app`` (labels sorted)."""
    import ray

    port = ray._private.worker.global_worker.node.metrics_export_port
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r"(ray_raypipe_\w+)\{(.*)\} (\S+)$", line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        if labels.get("app") != app:
            continue
        keep = ",".join(f"{k}={labels[k]}" for k in sorted(labels)
                        if k in ("step", "outcome", "le", "version"))
        out[f"{m.group(1)}{{{keep}}}"] = float(m.group(3))
    return out


def test_a_dead_lettered_delivery_in_the_metrics(deploy_app: Deploy) -> None:
    g = Running(deploy_app(APP))
    name = g.spec.settings.name
    g.send("doomed", [{"id": "m"}])  # 3 attempts (max_retries 2), then the dead letters
    expected = {
        "ray_raypipe_delivery_attempts_total{step=doomed}": 3,
        "ray_raypipe_delivery_attempts_failed_total{step=doomed}": 3,
        "ray_raypipe_delivery_retries_total{step=doomed}": 2,
        "ray_raypipe_deliveries_dead_lettered_total{step=doomed}": 1,
        "ray_raypipe_workflows_completed_total{outcome=dead_lettered}": 1,
        "ray_raypipe_deliveries_in_flight{}": 0,
        "ray_raypipe_step_latency_seconds_count{step=doomed}": 3,
        f"ray_raypipe_app_version{{version={g.spec.version}}}": 1,
    }

    def seen() -> bool:
        got = scrape(name)
        return all(got.get(k) == v for k, v in expected.items())

    # Ray exports every few seconds; the dispatcher hands its counts over twice a second.
    wait_for(seen, timeout=60, interval=1,
             message=lambda: f"{expected} in the metrics; last scrape: {scrape(name)}")
