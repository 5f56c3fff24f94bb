"""A chain of queue steps, each enqueuing the next, against a chain of raw Ray tasks that each
submit the next (the driver follows the returned references), measured in this run. Reports
the time per hop; medians of ``--repeat``.

    python bench/chain.py [--hops 50] [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import ray
from _local import POLL_SECONDS, REDIS_URL, local_apps, median, write_json

from raypipe.enqueue import publish
from raypipe.loader import load_app_cached
from raypipe.runtime.bridge import runtime_for
from raypipe.runtime.spec import AppSpec

APP = Path(__file__).resolve().parent / "apps" / "chain"


@ray.remote(num_cpus=0.25)
def hop(left: int) -> Any:
    return hop.remote(left - 1) if left > 0 else time.time()


def raw_chain(hops: int) -> float:
    t0 = time.time()
    value: Any = hop.remote(hops - 1)
    while isinstance(value, ray.ObjectRef):
        value = ray.get(value)
    return float(value - t0)


def raypipe_chain(spec: AppSpec, hops: int) -> float:
    rt = runtime_for(spec)
    app = load_app_cached(spec.root, spec.settings)
    run = uuid.uuid4().hex
    t0 = time.time()
    asyncio.run(publish(app, rt, "chain.hop", {"run": run, "left": hops - 1}, trace_id=run))
    while True:
        done = asyncio.run(rt.state.get("chains", run))
        if done:
            return float(done["at"] - t0)
        time.sleep(POLL_SECONDS)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hops", type=int, default=50)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--json")
    args = p.parse_args()
    rows: list[dict[str, Any]] = []
    for variant, state in (("raypipe", "memory"), ("raypipe_redis", REDIS_URL)):
        spec = AppSpec.from_dir(APP, name=f"bench-chain-{variant}", state=state)
        with local_apps([spec]) as [d]:
            raw_chain(5)
            raypipe_chain(d.spec, 5)
            raw = [raw_chain(args.hops) / args.hops * 1000 for _ in range(args.repeat)]
            rp = [raypipe_chain(d.spec, args.hops) / args.hops * 1000
                  for _ in range(args.repeat)]
        rows.append({"variant": variant, "hops": args.hops, "raw_ms_per_hop": median(raw),
                     "raypipe_ms_per_hop": median(rp), "ratio": median(rp) / median(raw),
                     "samples": {"raw": raw, "raypipe": rp}})
        print(f"{variant:<14} {args.hops} hops: raypipe {median(rp):.2f} ms/hop, raw Ray chain "
              f"{median(raw):.2f} ms/hop ({median(rp) / median(raw):.2f}x)", flush=True)
    write_json(args.json, "chain", rows, repeat=args.repeat)


if __name__ == "__main__":
    main()
