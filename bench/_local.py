"""What every benchmark starts with: a Ray of its own with Serve, and apps deployed; and the
JSON each benchmark writes for the report (bench/report.py)."""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray
from ray import serve

from raypipe.runtime.deploy import (
    Deployment,
    deploy,
    prepare_local_ray,
    start_serve,
    teardown,
)
from raypipe.runtime.ports import free_port
from raypipe.runtime.spec import AppSpec
from raypipe.settings import IngressMode, Settings

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")

#: How often a benchmark's driver looks for the run's end. The end is the time its last step
#: recorded, so the poll only finds it; each poll is an actor call that costs the state
#: actor and this driver CPU the run needs on a 2-core machine, so it looks 20 times a
#: second, not hundreds.
POLL_SECONDS = 0.05


@contextmanager
def local_apps(specs: Sequence[AppSpec], num_cpus: int = 2) -> Iterator[list[Deployment]]:
    """A new local Ray (``address="local"``) and Serve, the apps deployed; all ended after.
    Serve's data path is its HAProxy ingress (``ingress = "haproxy"``), unless the
    environment says otherwise: the benchmarks measure raypipe's costs, not those of
    Serve's proxy (bench/http_step.py measures both)."""
    prepare_local_ray(Settings(ingress=IngressMode.HAPROXY))
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
             logging_level="ERROR", log_to_driver=False)
    start_serve("127.0.0.1", free_port())
    try:
        yield [deploy(spec) for spec in specs]
    finally:
        for spec in specs:
            teardown(spec)
        serve.shutdown()
        ray.shutdown()


@contextmanager
def local_app(app_dir: str, num_cpus: int = 2) -> Iterator[Deployment]:
    with local_apps([AppSpec.from_dir(app_dir)], num_cpus) as [deployment]:
        yield deployment


#: Process names (prefixes) and what they are, for per-process CPU shares; any other ``ray::``
#: process is a task worker.
RAY_PROCESSES = (("ray::Dispatcher", "dispatcher actor"),
                 ("ray::StateActor", "state actor"),
                 ("ray::StreamsActor", "streams actor"),
                 ("ray::TelemetryActor", "telemetry actor (spans, logs)"),
                 ("ray::ServeReplica", "Serve replica (the http step)"),
                 ("ray::ServeController", "Serve controller"),
                 ("ray::ProxyActor", "Serve proxy actor"),
                 ("ray::HAProxyManager", "HAProxyManager"),
                 ("haproxy", "HAProxy"),
                 ("ray::DashboardAgent", "dashboard agent (metrics)"),
                 ("raylet", "raylet"),
                 ("gcs_server", "GCS"))


def cpu_snapshot() -> dict[int, tuple[str, float]]:
    """Each process's name and CPU seconds so far, for :func:`cpu_shares`. Needs psutil."""
    import contextlib

    import psutil

    out: dict[int, tuple[str, float]] = {}
    for p in psutil.process_iter(["name"]):
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            out[p.pid] = (p.info["name"] or "", t.user + t.system)
    return out


def cpu_shares(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]],
               per: float, labels: Sequence[tuple[str, str]] = RAY_PROCESSES,
               workers: str = "task workers") -> dict[str, float]:
    """Microseconds of CPU each kind of process used between two snapshots, per ``per``
    units of work (deliveries, requests), largest first; a process is labelled by its name
    then (task workers rename themselves per task) by its name before."""
    used: dict[str, float] = {}
    for pid, (name, cpu) in after.items():
        old_name, old_cpu = before.get(pid, (name, 0.0))
        label = next((lb for key, lb in labels for n in (name, old_name) if n.startswith(key)),
                     workers if name.startswith("ray::") else "other")
        used[label] = used.get(label, 0.0) + (cpu - old_cpu) / per * 1e6
    return {k: v for k, v in sorted(used.items(), key=lambda kv: -kv[1]) if v >= 1.0}


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered)) - 1))]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "ray": ray.__version__,
            "processor": platform.processor() or platform.machine()}


def write_json(path: str | None, name: str, rows: list[dict[str, Any]],
               **extra: Any) -> None:
    if path:
        Path(path).write_text(json.dumps({"benchmark": name, "machine": machine(),
                                          "rows": rows, **extra}, indent=2))
