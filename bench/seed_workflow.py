"""The seed's own parallel workflow (examples/parallel-workflow): one item that grows by one
entry per step (``steps.<i>``), on memory and Redis state. Reports the time per step at each
N, its growth from the smallest N, and the state actor's memory (RSS) after each workflow, so
that a cost that grows with the item, or memory kept after a workflow, shows.

    python bench/seed_workflow.py [--n 2000 10000] [--repeat 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import httpx
import ray
from _local import REDIS_URL, local_apps, median, write_json

from raypipe import constants
from raypipe.runtime.spec import AppSpec

APP = Path(__file__).resolve().parent.parent / "examples" / "parallel-workflow"


def forget(app: str) -> None:
    """Delete an app's keys in the bench's Redis: a state actor that finds an earlier run's
    100,000-step item reads it at start (its first sweep for references), and its RSS would
    count it."""
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    keys = [k for pattern in constants.app_key_patterns(app) for k in r.scan_iter(pattern)]
    if keys:
        r.delete(*keys)


def state_rss_mb(spec: AppSpec) -> float:
    import psutil

    handle = ray.get_actor(constants.STATE_ACTOR, namespace=spec.namespace)
    pid = ray.get(handle.__ray_call__.remote(lambda _self: os.getpid()))
    return float(psutil.Process(pid).memory_info().rss / 2**20)


def workflow(url: str, n: int, timeout: float) -> tuple[float, float]:
    """``(seconds the app recorded, seconds the client saw)`` for one workflow of ``n`` steps.

    The app's own record (``results.duration``: from the start handler to the completion
    handler) is the time; the client polls only to learn that it is done, at a quarter of
    the time spent so far: every poll reads the whole item (one entry per step, and the
    backend copies an item it handed out before it updates it in place again), and polling
    a 30,000-step item 20 times a second cost more CPU than the steps themselves."""
    t0 = time.perf_counter()
    r = httpx.post(f"{url}/api/workflow/start", json={"totalSteps": n, "waitTime": False},
                   timeout=300)
    wid = r.json()["workflowId"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(max(0.05, (time.perf_counter() - t0) / 4))
        got = httpx.get(f"{url}/api/workflow/{wid}", timeout=300).json()
        if got.get("status") == "completed":
            return got["results"]["duration"] / 1000, time.perf_counter() - t0
    raise TimeoutError(f"workflow of {n} steps not done in {timeout}s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[2000, 10_000])
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--variants", nargs="+", default=["memory", "redis"])
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--json")
    args = p.parse_args()
    rows: list[dict[str, Any]] = []
    for variant in args.variants:
        state = "memory" if variant == "memory" else REDIS_URL
        spec = AppSpec.from_dir(APP, name=f"bench-seed-{variant}", state=state)
        if variant != "memory":
            forget(spec.settings.name)
        with local_apps([spec]) as [d]:
            workflow(d.url, 50, args.timeout)
            rss = [state_rss_mb(d.spec)]
            for n in args.n:
                times, seen = [], []
                for _ in range(args.repeat):
                    took, waited = workflow(d.url, n, args.timeout)
                    times.append(took)
                    seen.append(waited)
                    rss.append(state_rss_mb(d.spec))
                rows.append({"variant": variant, "n": n, "seconds": median(times),
                             "us_per_step": median(times) / n * 1e6, "samples": times,
                             "client_seconds": seen})
                print(f"{variant:<7} N={n:<6} {median(times):.2f} s "
                      f"({median(times) / n * 1e6:.0f} us/step); state actor RSS "
                      f"{rss[-1]:.0f} MB", flush=True)
            for r in rows:
                if r["variant"] == variant:
                    r["rss_mb_after_each"] = rss
    for variant in args.variants:
        mine = [r for r in rows if r["variant"] == variant]
        for r in mine:
            r["growth"] = r["us_per_step"] / mine[0]["us_per_step"]
    write_json(args.json, "seed_workflow", rows, repeat=args.repeat)


if __name__ == "__main__":
    main()
