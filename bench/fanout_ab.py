"""Two checkouts of raypipe, side by side on the same machine: fan-outs of N trivial steps
(bench/apps/fanout; memory state, or ``--state`` a Redis URL), each checkout in a Ray of its
own, in turns (base, this, base, this...), so that what the machine's neighbours do falls on
both alike. Per round and checkout: the median wall time of ``--runs`` fan-outs and the CPU
per delivery of the processes that do the work (task workers, dispatcher, state, telemetry,
the Serve replica).

    git worktree add /tmp/base <commit>
    python bench/fanout_ab.py --base /tmp/base [--rounds 5] [--runs 4] [--n 10000] \
        [--state redis://127.0.0.1:6379/15]

A change's per-process CPU moves by less than these machines' noise between two runs minutes
apart; taking turns is what makes a few percent visible.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

#: Process name prefixes (``ray::<class or task>``) and what they are.
ROLES = {"ray::IDLE": "task workers", "ray::fanout": "task workers",
         "ray::run_batch": "task workers", "ray::Dispatcher": "dispatcher",
         "ray::StateActor": "state actor", "ray::TelemetryActor": "telemetry actor",
         "ray::ServeReplica": "Serve replica"}


def _cpu_by_role() -> dict[str, float]:
    import psutil

    out: dict[str, float] = {}
    for p in psutil.process_iter(["name"]):
        name = p.info["name"] or ""
        role = next((r for prefix, r in ROLES.items() if name.startswith(prefix)), None)
        if role is None:
            continue
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        out[role] = out.get(role, 0.0) + t.user + t.system
    return out


def one_round(n: int, runs: int, state: str) -> dict[str, Any]:
    """In this process (whichever raypipe its path imports): a Ray, the app (``state``: its
    state backend; with Redis, under a name of its own, its keys deleted after), ``runs``
    fan-outs after a warm one."""
    sys.path.insert(0, str(HERE))
    import fanout

    name = f"fanout-ab-{os.getpid()}"
    try:
        return _measure(fanout, fanout.AppSpec.from_dir(fanout.APP, name=name, state=state),
                        n, runs)
    finally:
        if state != "memory":
            import redis

            client = redis.Redis.from_url(state)
            for pattern in (f"raypipe:{name}:*", f"raypipe:{{{len(name)}:{name}:*"):
                for key in client.scan_iter(match=pattern, count=1000):
                    client.delete(key)


def _measure(fanout: Any, spec: Any, n: int, runs: int) -> dict[str, Any]:
    with fanout.local_apps([spec], 2) as [app]:
        fanout.raw_ray(50, 1)
        fanout.through_raypipe(app.url, app.spec, 50)
        fanout.through_raypipe(app.url, app.spec, n)
        walls, cpus = [], []
        for _ in range(runs):
            before = _cpu_by_role()
            walls.append(fanout.through_raypipe(app.url, app.spec, n))
            time.sleep(1.0)  # the last settles and spans
            after = _cpu_by_role()
            cpus.append({k: (after.get(k, 0) - before.get(k, 0)) / n * 1e6 for k in after})
    roles = sorted({k for c in cpus for k in c})
    return {"wall": statistics.median(walls),
            "us": {k: statistics.median(c.get(k, 0.0) for c in cpus) for k in roles}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="a checkout (git worktree) to compare with")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--state", default="memory", help="memory, or a redis:// URL")
    p.add_argument("--json")
    p.add_argument("--one-round", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one_round:
        print(json.dumps(one_round(args.n, args.runs, args.state)))
        return
    checkouts = {"base": str(Path(args.base).resolve()), "this": str(HERE.parent)}
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in checkouts}
    for r in range(args.rounds):
        for name, root in checkouts.items():
            # Ray's workers put the driver's working directory first on their path too.
            env = {**os.environ, "PYTHONPATH": root}
            out = subprocess.run([sys.executable, __file__, "--base", args.base, "--one-round",
                                  "--n", str(args.n), "--runs", str(args.runs),
                                  "--state", args.state],
                                 env=env, cwd=root, capture_output=True, text=True)
            if out.returncode != 0:
                # Said, with why, and the round left out: one failed start of a Ray in a
                # long series must not throw away the rounds before it.
                print(f"round {r + 1} {name:<4} failed ({out.returncode}):\n"
                      + "\n".join(out.stderr.strip().splitlines()[-25:]), flush=True)
                continue
            res = json.loads(out.stdout.strip().splitlines()[-1])
            results[name].append(res)
            shown = ", ".join(f"{k} {v:.0f}" for k, v in sorted(res["us"].items()))
            print(f"round {r + 1} {name:<4} {res['wall']:.3f} s; us/delivery: {shown}",
                  flush=True)
    print("\nmedians over rounds (base -> this)")
    for key in sorted({k for rs in results.values() for r in rs for k in r["us"]}):
        b = statistics.median(r["us"].get(key, 0.0) for r in results["base"])
        t = statistics.median(r["us"].get(key, 0.0) for r in results["this"])
        print(f"  {key:<16} {b:6.0f} -> {t:6.0f} us")
    b = statistics.median(r["wall"] for r in results["base"])
    t = statistics.median(r["wall"] for r in results["this"])
    print(f"  {'wall':<16} {b:6.3f} -> {t:6.3f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"base": args.base, "results": results},
                                              indent=1))


if __name__ == "__main__":
    main()
