"""Atomic state updates per second from many concurrent handlers, memory and Redis backends.

``--handlers`` deliveries run at once, each making ``--updates`` increments of one shared item
in turn (every update waits for the one before it of the same handler); timed from the request
to the completion handler that sees the last one. Medians of ``--repeat``.

    python bench/state_ops.py [--handlers 8 64] [--updates 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from _local import REDIS_URL, local_apps, median, write_json

from raypipe.runtime.bridge import runtime_for
from raypipe.runtime.spec import AppSpec

APP = Path(__file__).resolve().parent / "apps" / "state"


def hammer(url: str, spec: AppSpec, handlers: int, updates: int) -> float:
    state = runtime_for(spec).state
    t0 = time.time()
    run = httpx.post(f"{url}/hammer", json={"handlers": handlers, "updates": updates},
                     timeout=600).json()["run"]
    while True:
        done = asyncio.run(state.get("hammer-finished", run))
        if done:
            final = asyncio.run(state.get("hammer", run))
            assert final["n"] == handlers * updates, final
            return float(done["at"] - t0)
        time.sleep(0.005)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--handlers", type=int, nargs="+", default=[8, 64])
    p.add_argument("--updates", type=int, default=50)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json")
    args = p.parse_args()
    rows: list[dict[str, Any]] = []
    print(f"atomic updates of one item, {args.updates} per handler, median of {args.repeat}")
    print(f"{'backend':>8} {'handlers':>9} {'updates':>8} {'seconds':>8} {'updates/s':>10}")
    for backend, overrides in (("memory", {}), ("redis", {"state": REDIS_URL})):
        spec = AppSpec.from_dir(APP, name=f"bench-state-{backend}", **overrides)
        with local_apps([spec]) as [app]:
            hammer(app.url, app.spec, 4, 5)  # warm
            for h in args.handlers:
                t = median([hammer(app.url, app.spec, h, args.updates)
                            for _ in range(args.repeat)])
                total = h * args.updates
                rows.append({"backend": backend, "handlers": h, "updates": total,
                             "seconds": t, "ops_per_s": total / t})
                print(f"{backend:>8} {h:>9} {total:>8} {t:>8.3f} {total / t:>10.0f}",
                      flush=True)
    write_json(args.json, "state", rows, updates_per_handler=args.updates)


if __name__ == "__main__":
    main()
