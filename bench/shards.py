"""Deliveries per second against the number of shards (``shards = K``: K dispatcher and K state
actors), on a cluster of several raylets started here: many concurrent fan-out workflows of a
trivial step (bench/apps/fanout), memory state. Per K: the median wall time of ``--repeat``
runs, deliveries per second, each dispatcher shard's CPU per delivery and its busy share of
one core, and the CPU per delivery of every kind of process.

The raylets share this machine's cores: a head (no CPUs for tasks) and ``--nodes`` worker
nodes of ``--node-cpus`` CPUs each, each with its own raylet and object store; the shards'
actors are spread over them. (Nodes of one CPU each made the raylets end and restart task
workers during the runs with two shards, see bench/results/report.md.)

    python bench/shards.py [--k 1 2 4] [--workflows 8] [--n 2000] [--repeat 3]
                           [--nodes 1] [--node-cpus 2] [--json out]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import ray

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
APP = HERE / "apps" / "fanout"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(APP))

from _local import cpu_shares, cpu_snapshot, median, write_json  # noqa: E402

from raypipe.runtime.bridge import runtime_for  # noqa: E402
from raypipe.runtime.deploy import (  # noqa: E402
    deploy,
    shard_workers_env,
    start_serve,
    teardown,
)
from raypipe.runtime.spec import AppSpec  # noqa: E402


def _pid(handle: Any) -> int:
    return int(ray.get(handle.__ray_call__.remote(lambda _self: os.getpid())))


def _cpu(pid: int) -> float:
    import psutil

    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def _nodes_of(handles: list[Any]) -> list[str]:
    return [str(ray.get(h.__ray_call__.remote(
        lambda _self: ray.get_runtime_context().get_node_id())))[:8] for h in handles]


def _started_workers(since: float) -> int:
    """Ray worker processes started since ``since`` (a raylet replaces workers it ended)."""
    import psutil

    return sum(1 for p in psutil.process_iter(["name", "create_time"])
               if (p.info["name"] or "").startswith("ray::")
               and (p.info["create_time"] or 0) >= since)


def run_workflows(url: str, spec: AppSpec, workflows: int, n: int) -> float:
    """``workflows`` fan-outs of ``n`` started at once; seconds until the last completes."""
    import asyncio

    state = runtime_for(spec).state
    t0 = time.time()
    with ThreadPoolExecutor(workflows) as pool:
        runs = list(pool.map(lambda _: httpx.post(f"{url}/fanout", json={"n": n},
                                                  timeout=600).json()["run"],
                             range(workflows)))
    ends: dict[str, float] = {}
    while len(ends) < len(runs):
        for run in runs:
            if run not in ends:
                done = asyncio.run(state.get("finished", run))
                if done:
                    ends[run] = done["at"]
        time.sleep(0.02)
    return max(ends.values()) - t0


def measure(args: argparse.Namespace, gcs: str, serve_port: int) -> None:
    """The runs, in a driver whose environment holds the cluster's token settings (Ray reads
    them when it is imported)."""
    ray.init(address=gcs, logging_level="ERROR", log_to_driver=False)
    start_serve("127.0.0.1", serve_port)
    rows: list[dict[str, Any]] = []
    deliveries = args.workflows * (args.n + 1)
    for k in args.k:
        spec = AppSpec.from_dir(APP, name=f"bench-shards-{k}", shards=k, port=serve_port)
        d = deploy(spec)
        try:
            rt = runtime_for(spec)
            run_workflows(d.url, spec, 2, 200)  # warm: workers started, modules imported
            pids = [_pid(h) for h in rt.dispatchers]
            walls, per_shard, profiles, started = [], [], [], []
            for _ in range(args.repeat):
                before, cpu0 = cpu_snapshot(), [_cpu(pid) for pid in pids]
                since = time.time()
                wall = run_workflows(d.url, spec, args.workflows, args.n)
                started.append(_started_workers(since))
                per_shard.append([_cpu(pid) - c for pid, c in zip(pids, cpu0, strict=True)])
                walls.append(wall)
                profiles.append(cpu_shares(before, cpu_snapshot(), deliveries))
            wall = median(walls)
            shard_cpu = [median([run[i] for run in per_shard]) for i in range(k)]
            row = {
                "k": k, "wall_s": wall, "deliveries": deliveries,
                "deliveries_per_s": deliveries / wall,
                "dispatcher_us_per_delivery": sum(shard_cpu) / deliveries * 1e6,
                "shard_cpu_s": shard_cpu,
                "shard_busy": [c / wall for c in shard_cpu],
                "dispatcher_nodes": _nodes_of(rt.dispatchers),
                "state_nodes": _nodes_of(rt.state_actors),
                "cpu_us_per_delivery": {key: median([pr.get(key, 0.0) for pr in profiles])
                                        for key in profiles[-1]},
                "walls": walls,
                "workers_started": started,
            }
            rows.append(row)
            print(f"K={k}: {wall:.2f} s, {row['deliveries_per_s']:.0f} deliveries/s; "
                  f"dispatchers {row['dispatcher_us_per_delivery']:.0f} us/delivery, "
                  f"busy {', '.join(f'{b:.0%}' for b in row['shard_busy'])} of a core "
                  f"(nodes {row['dispatcher_nodes']}); all processes "
                  f"{sum(row['cpu_us_per_delivery'].values()):.0f} us/delivery; workers started "
                  f"{started}", flush=True)
            print("   " + ", ".join(f"{key} {v:.0f}" for key, v in
                                    row["cpu_us_per_delivery"].items()), flush=True)
        finally:
            teardown(spec)
    write_json(args.json, "shards", rows, workflows=args.workflows, n=args.n,
               repeat=args.repeat, nodes=args.nodes + 1, node_cpus=args.node_cpus,
               soft_limit_raised=args.raise_soft_limit)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--workflows", type=int, default=8)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--node-cpus", type=int, default=2)
    # Ray gives each detached actor's tasks workers of their own (a task spawned under one
    # detached actor never runs in a worker of another's): K dispatchers need K sets, and a
    # raylet ends idle workers past its soft limit (its CPUs) a second after they go idle.
    p.add_argument("--default-soft-limit", dest="raise_soft_limit", action="store_false",
                   help="leave the raylets' soft limit of workers at its default")
    p.add_argument("--json")
    p.add_argument("--cluster", nargs=2, help=argparse.SUPPRESS)  # GCS address, Serve port
    args = p.parse_args()
    if args.cluster:
        measure(args, args.cluster[0], int(args.cluster[1]))
        return

    from tests.runtime.raycluster import LocalCluster

    cluster = LocalCluster()
    if args.raise_soft_limit:
        # What docs/scaling.md tells a cluster of shards to set on its nodes.
        most = AppSpec.from_dir(APP, shards=max(args.k)).settings
        for env in (cluster.base_env, cluster.env):
            env.update(shard_workers_env(most, args.node_cpus))
    try:
        cluster.start_head(num_cpus=0)
        for _ in range(args.nodes):
            cluster.add_node(args.node_cpus, {})
        subprocess.run([sys.executable, __file__, *sys.argv[1:], "--cluster",
                        f"127.0.0.1:{cluster.gcs}", str(cluster.serve_port)],
                       env=cluster.env, check=True)
    finally:
        cluster.stop()
        cluster.close()


if __name__ == "__main__":
    main()
