"""Fan-out/fan-in of N trivial steps through raypipe, against raw Ray tasks + gather.

Both run in the same process on the same local Ray, one after the other, several times; the
medians are printed with their ratio. raypipe's time runs from the HTTP request to the moment
the state-trigger completion handler runs; raw Ray's from submitting N tasks to ``ray.get``.

    python bench/fanout.py [--n 100 1000] [--repeat 5] [--num-cpus 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

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

from _local import local_app  # noqa: E402

from raypipe.runtime.bridge import runtime_for  # noqa: E402
from raypipe.runtime.spec import AppSpec  # noqa: E402


def raw_ray(n: int, num_cpus: float) -> float:
    task = ray.remote(num_cpus=num_cpus)(work)
    t0 = time.perf_counter()
    total = sum(ray.get([task.options(name="raw-work").remote(i) for i in range(n)]))
    elapsed = time.perf_counter() - t0
    assert total == sum(i * i for i in range(n))
    return elapsed


def through_raypipe(url: str, spec: AppSpec, n: int) -> float:
    state = runtime_for(spec).state
    t0 = time.time()
    run = httpx.post(f"{url}/fanout", json={"n": n}, timeout=600).json()["run"]
    while True:
        done = asyncio.run(state.get("finished", run))
        if done:
            assert done["sum"] == sum(i * i for i in range(n)), done
            return float(done["at"] - t0)
        time.sleep(0.01)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--num-cpus", type=int, default=2)
    args = p.parse_args()

    with local_app(str(APP), args.num_cpus) as deployment:
        spec, url = deployment.spec, deployment.url
        cpus = spec.settings.task_num_cpus
        # Warm both paths: worker processes started, modules imported.
        raw_ray(50, cpus)
        through_raypipe(url, spec, 50)
        print(f"fan-out/fan-in, {args.num_cpus} CPUs, task num_cpus={cpus}, "
              f"median of {args.repeat} (seconds)")
        print(f"{'N':>6} {'raw Ray':>9} {'raypipe':>9} {'ratio':>7} {'steps/s':>9}")
        for n in args.n:
            raw, rp = [], []
            for _ in range(args.repeat):
                raw.append(raw_ray(n, cpus))
                rp.append(through_raypipe(url, spec, n))
            r, q = statistics.median(raw), statistics.median(rp)
            print(f"{n:>6} {r:>9.3f} {q:>9.3f} {q / r:>6.2f}x {n / q:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
