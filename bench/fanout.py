"""Fan-out/fan-in of N trivial steps: raypipe (memory and Redis state) against hand-batched
Ray tasks (the limit: the same work, 32 items a task, ``ray.get`` and a sum), one Ray task per
item, and a Celery chord, all measured in this run on this machine.

raypipe is timed from the HTTP request to the moment its state-trigger completion handler
runs; Ray from submitting the tasks to ``ray.get``; Celery from applying the chord to its
callback's result (a worker with 2 processes on the local Redis). Medians of ``--repeat``.
The dispatcher actor's CPU time per delivery is measured from its process.

    python bench/fanout.py [--n 100 1000 10000] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import ray

HERE = Path(__file__).resolve().parent
APP = HERE / "apps" / "fanout"
sys.path.insert(0, str(APP))

import shared  # noqa: E402
from ray import cloudpickle  # noqa: E402
from shared import work  # noqa: E402

# Workers cannot import the app's `shared` module by name: ship the function itself.
cloudpickle.register_pickle_by_value(shared)

from _local import (  # noqa: E402
    POLL_SECONDS,
    REDIS_URL,
    cpu_shares,
    cpu_snapshot,
    local_apps,
    median,
    write_json,
)

from raypipe.runtime.bridge import runtime_for  # noqa: E402
from raypipe.runtime.spec import AppSpec  # noqa: E402

#: Items per task in the hand-batched baseline (raypipe's own batch size).
HAND_BATCH = 32



def _work_batch(items: list[int]) -> int:
    return sum(work(i) for i in items)


def hand_batched_ray(n: int, num_cpus: float) -> float:
    task = ray.remote(num_cpus=num_cpus)(_work_batch)
    t0 = time.perf_counter()
    refs = [task.options(name="raw-work-batch").remote(list(range(i, min(n, i + HAND_BATCH))))
            for i in range(0, n, HAND_BATCH)]
    total = sum(ray.get(refs))
    elapsed = time.perf_counter() - t0
    assert total == sum(i * i for i in range(n))
    return elapsed


def dispatcher_cpu(spec: AppSpec) -> float:
    """CPU seconds the app's dispatcher process has used so far."""
    import psutil

    from raypipe import constants

    handle = ray.get_actor(constants.DISPATCHER_ACTOR, namespace=spec.namespace)
    pid = ray.get(handle.__ray_call__.remote(lambda _self: os.getpid()))
    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def raw_ray(n: int, num_cpus: float) -> float:
    task = ray.remote(num_cpus=num_cpus)(work)
    t0 = time.perf_counter()
    total = sum(ray.get([task.options(name="raw-work").remote(i) for i in range(n)]))
    elapsed = time.perf_counter() - t0
    assert total == sum(i * i for i in range(n))
    return elapsed


#: Worker processes the raylet started during each raypipe run, per variant and N: the raylet
#: ends idle workers past its limit (as many as CPUs, actors counted) a second after they go
#: idle, so a fan-out after a pause starts its workers again, at about 0.6 s of CPU each.
STARTED: dict[str, dict[int, list[int]]] = {}


def started_workers(since: float) -> int:
    import psutil

    return sum(1 for p in psutil.process_iter(["name", "create_time"])
               if (p.info["name"] or "").startswith("ray::")
               and (p.info["create_time"] or 0) >= since)


def through_raypipe(url: str, spec: AppSpec, n: int, variant: str = "") -> float:
    state = runtime_for(spec).state
    t0 = time.time()
    answer = httpx.post(f"{url}/fanout", json={"n": n}, timeout=600)
    assert answer.status_code == 200, answer.text
    run = answer.json()["run"]
    while True:
        done = asyncio.run(state.get("finished", run))
        if done:
            assert done["sum"] == sum(i * i for i in range(n)), done
            if variant:
                STARTED.setdefault(variant, {}).setdefault(n, []).append(
                    started_workers(t0))
            return float(done["at"] - t0)
        time.sleep(POLL_SECONDS)


class CeleryChord:
    """A Celery worker (2 processes, prefork) on Redis, started here and ended by pid."""

    def __init__(self, processes: int) -> None:
        self.url = os.environ.get("BENCH_CELERY_URL", REDIS_URL.rsplit("/", 1)[0] + "/14")
        os.environ["BENCH_CELERY_URL"] = self.url
        self.queue = f"bench-{uuid.uuid4().hex[:8]}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "-c",
             str(processes), "-P", "prefork", "-Q", self.queue, "-l", "WARNING",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=HERE, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import celery_app

        self.app = celery_app

    def run(self, n: int) -> float:
        from celery import chord

        t0 = time.perf_counter()
        result = chord(self.app.work.s(i).set(queue=self.queue) for i in range(n))(
            self.app.total.s().set(queue=self.queue))
        total = result.get(timeout=900)
        elapsed = time.perf_counter() - t0
        assert total == sum(i * i for i in range(n))
        return elapsed

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[100, 1000, 10_000])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--num-cpus", type=int, default=2)
    p.add_argument("--no-celery", action="store_true")
    p.add_argument("--variants", nargs="+", default=["raypipe", "raypipe_redis"],
                   choices=["raypipe", "raypipe_redis"])
    # A 10,000-task chord spent over 4 minutes in the client (one core at 95%, the worker
    # idle) before we stopped it: Celery's chord is not built for that size.
    p.add_argument("--celery-max-n", type=int, default=1000)
    p.add_argument("--json")
    args = p.parse_args()

    # Each raypipe variant in a Ray of its own, with its own raw-Ray baseline: two apps that
    # fan out in turn on one 2-CPU Ray slow each other down (see bench/results/report.md).
    variants = {"raypipe": AppSpec.from_dir(APP),
                "raypipe_redis": AppSpec.from_dir(APP, name="bench-fanout-redis",
                                                  state=REDIS_URL)}
    variants = {k: v for k, v in variants.items() if k in args.variants}
    celery = None if args.no_celery else CeleryChord(args.num_cpus)
    times: dict[int, dict[str, list[float]]] = {n: {} for n in args.n}
    #: Per variant, at the largest N: each run's CPU per delivery by process (microseconds).
    profiles: dict[str, list[dict[str, float]]] = {}
    try:
        if celery:
            celery.run(50)
            for n in args.n:
                if n > args.celery_max_n:
                    continue
                times[n]["celery"] = [celery.run(n) for _ in range(args.repeat)]
                print(f"celery chord      N={n:<6} {median(times[n]['celery']):.3f} s",
                      flush=True)
    finally:
        if celery:
            celery.close()
    for name, spec in variants.items():
        with local_apps([spec], args.num_cpus) as [app]:
            cpus = app.spec.settings.task_num_cpus
            raw_ray(50, cpus)  # warm: worker processes started, modules imported
            through_raypipe(app.url, app.spec, 50)
            hand_batched_ray(50, cpus)
            for n in args.n:
                raw, batched, rp, cpu = [], [], [], []
                for _ in range(args.repeat):
                    raw.append(raw_ray(n, cpus))
                    batched.append(hand_batched_ray(n, cpus))
                    before, processes = dispatcher_cpu(app.spec), cpu_snapshot()
                    rp.append(through_raypipe(app.url, app.spec, n, name))
                    # n work deliveries and one completion
                    cpu.append((dispatcher_cpu(app.spec) - before) / (n + 1) * 1e6)
                    if n == max(args.n):
                        profiles.setdefault(name, []).append(
                            cpu_shares(processes, cpu_snapshot(), n + 1))
                    if n == max(args.n) and name == "raypipe":
                        processes = cpu_snapshot()
                        hand_batched_ray(n, cpus)
                        profiles.setdefault("hand_batched", []).append(
                            cpu_shares(processes, cpu_snapshot(), n))
                times[n].setdefault("raw_ray", []).extend(raw)
                times[n].setdefault("hand_batched", []).extend(batched)
                times[n][f"raw_ray_{name}"] = raw
                times[n][f"hand_batched_{name}"] = batched
                times[n][name] = rp
                times[n][f"dispatcher_us_{name}"] = cpu
                print(f"{name:<17} N={n:<6} {median(rp):.3f} s, hand-batched Ray "
                      f"{median(batched):.3f} s ({median(rp) / median(batched):.1f}x), one task "
                      f"each {median(raw):.3f} s; dispatcher {median(cpu):.0f} us/delivery",
                      flush=True)

    rows: list[dict[str, Any]] = []
    print(f"\nfan-out/fan-in, {args.num_cpus} CPUs, median of {args.repeat} (seconds; ratios "
          "to hand-batched Ray measured in the same Ray)")
    print(f"{'N':>6} {'batched':>9} {'1 each':>9} {'raypipe':>9} {'ratio':>7} {'+Redis':>9} "
          f"{'ratio':>7} {'Celery':>9} {'steps/s':>9} {'us/deliv':>9}")
    nan = float("nan")
    for n, t in times.items():
        raw = median(t["raw_ray"])
        mem, red, cel = (median(t[k]) if k in t else None
                         for k in ("raypipe", "raypipe_redis", "celery"))
        batched = median(t["hand_batched"])

        def ratio(variant: str, value: float | None, t: dict[str, list[float]] = t
                  ) -> float | None:
            key = f"hand_batched_{variant}"
            return value / median(t[key]) if value and key in t else None

        def cpu(variant: str, t: dict[str, list[float]] = t) -> float | None:
            key = f"dispatcher_us_{variant}"
            return median(t[key]) if key in t else None

        rows.append({"n": n, "raw_ray": raw, "hand_batched": batched, "raypipe": mem,
                     "raypipe_redis": red, "celery": cel,
                     "ratio": ratio("raypipe", mem),
                     "ratio_redis": ratio("raypipe_redis", red),
                     "ratio_raw": mem and mem / median(t["raw_ray_raypipe"]),
                     "ratio_celery": cel and cel / raw,
                     "dispatcher_us": cpu("raypipe"),
                     "dispatcher_us_redis": cpu("raypipe_redis"), "samples": t,
                     "workers_started": median(STARTED.get("raypipe", {}).get(n, [0]))})
        r = rows[-1]
        print(f"{n:>6} {batched:>9.3f} {raw:>9.3f} {mem or nan:>9.3f} {r['ratio'] or nan:>6.2f}x "
              f"{red or nan:>9.3f} {r['ratio_redis'] or nan:>6.2f}x {cel or nan:>9.3f} "
              f"{n / (mem or nan):>9.0f} {r['dispatcher_us'] or nan:>9.0f}")
    profile = {variant: {label: median([run.get(label, 0.0) for run in runs])
                         for label in dict.fromkeys(lb for run in runs for lb in run)}
               for variant, runs in profiles.items()}
    for variant, by_process in profile.items():
        print(f"\nCPU per delivery at N={max(args.n)}, {variant} (us, median):")
        for label, us in sorted(by_process.items(), key=lambda kv: -kv[1]):
            print(f"  {label:<40} {us:>8.0f}")
    write_json(args.json, "fanout", rows, num_cpus=args.num_cpus, repeat=args.repeat,
               profile=profile, profile_n=max(args.n))


if __name__ == "__main__":
    main()
