"""Run every benchmark, each in a process (and a Ray) of its own, and write the report:
``bench/results/report.md`` with the machine, every table, each target met or its gap, and
PNG plots beside it. ``make bench`` runs this.

    python bench/report.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

#: name -> (script, arguments, arguments with --quick)
BENCHES: dict[str, tuple[str, list[str], list[str]]] = {
    "fanout": ("fanout.py", ["--n", "100", "1000", "10000", "--repeat", "3"],
               ["--n", "100", "1000", "--repeat", "1"]),
    "http": ("http_step.py", ["--seconds", "5"], ["--seconds", "2", "--clients", "8"]),
    "state": ("state_ops.py", ["--repeat", "3"], ["--repeat", "1"]),
    "streams": ("streams.py", ["--seconds", "5"], ["--seconds", "2"]),
    "chain": ("chain.py", ["--hops", "50", "--repeat", "5"], ["--hops", "20", "--repeat", "2"]),
    "seed_workflow": ("seed_workflow.py", ["--n", "10000", "100000", "--repeat", "2"],
                      ["--n", "1000", "10000", "--repeat", "1"]),
    "reload": ("reload.py", ["--repeat", "5"], ["--repeat", "1"]),
    "image_pipeline": ("image_pipeline.py", ["--n", "10000", "--repeat", "5"],
                       ["--n", "1000", "--repeat", "1"]),
    "ref_payloads": ("ref_payloads.py", ["--n", "10000"], ["--n", "1000"]),
    "shards": ("shards.py", ["--k", "1", "2", "4", "--repeat", "3"],
               ["--k", "1", "2", "--n", "500", "--repeat", "1"]),
    "per_delivery": ("per_delivery.py", ["--n", "10000", "--repeat", "5", "--redis"],
                     ["--n", "2000", "--repeat", "1"]),
}


def run(name: str, quick: bool) -> dict[str, Any]:
    script, full, short = BENCHES[name]
    out = RESULTS / f"{name}.json"
    print(f"== {name}", flush=True)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(HERE / script), *(short if quick else full),
                           "--json", str(out)], cwd=HERE, stderr=subprocess.DEVNULL)
    if proc.returncode != 0:
        sys.exit(f"{script} failed ({proc.returncode})")
    print(f"   ({time.monotonic() - t0:.0f} s)", flush=True)
    return dict(json.loads(out.read_text()))


def plots(res: dict[str, dict[str, Any]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    rows = res["fanout"]["rows"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("hand_batched", "hand-batched Ray (32 a task)"),
                       ("raw_ray", "Ray, one task each"), ("raypipe", "raypipe"),
                       ("raypipe_redis", "raypipe, Redis state"), ("celery", "Celery chord")):
        pts = [(r["n"], r[key]) for r in rows if r.get(key)]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=label)
    ax.set(xscale="log", yscale="log", xlabel="N steps", ylabel="seconds (median)",
           title="Fan-out/fan-in, request to completion")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(RESULTS / "fanout.png", dpi=110)
    made.append("fanout.png")

    rows = res["http"]["rows"]
    servers = list(dict.fromkeys(r["server"] for r in rows))
    clients = sorted({r["clients"] for r in rows})
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(servers)
    for i, server in enumerate(servers):
        ys = [next((r["rps"] for r in rows if r["server"] == server and r["clients"] == c), 0)
              for c in clients]
        ax.bar([j + i * width for j in range(len(clients))], ys, width, label=server)
    ax.set_xticks([j + width * (len(servers) - 1) / 2 for j in range(len(clients))],
                  [f"{c} clients" for c in clients])
    ax.set(ylabel="requests/s", title="Trivial HTTP step")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "http.png", dpi=110)
    made.append("http.png")

    rows = res["streams"]["rows"]
    fig, ax = plt.subplots(figsize=(5, 4))
    xs = [str(r["rate"]) for r in rows]
    ax.bar([i - 0.2 for i in range(len(xs))], [r["p50_ms"] for r in rows], 0.4, label="p50")
    ax.bar([i + 0.2 for i in range(len(xs))], [r["p99_ms"] for r in rows], 0.4, label="p99")
    ax.axhline(50, color="red", linestyle="--", label="p99 target (100/s)")
    ax.set_xticks(range(len(xs)), [f"{x}/s" for x in xs])
    ax.set(ylabel="ms, set() to WebSocket client", title="Stream delivery latency")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "streams.png", dpi=110)
    made.append("streams.png")
    return made


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def fanout_profile(fanout: dict[str, Any]) -> list[str]:
    """Where a fan-out's CPU goes, by process: the gap to hand-batched Ray, explained."""
    profile: dict[str, dict[str, float]] = fanout.get("profile") or {}
    if not profile:
        return []
    columns = [c for c in ("hand_batched", "raypipe", "raypipe_redis") if c in profile]
    titles = {"hand_batched": "hand-batched Ray", "raypipe": "raypipe",
              "raypipe_redis": "raypipe + Redis"}
    labels = list(dict.fromkeys(lb for c in columns for lb in
                                sorted(profile[c], key=lambda lb, c=c: -profile[c][lb])))
    out = [f"### Where the time goes (N={fanout.get('profile_n')})", "",
           "CPU per delivery by process, in microseconds (every process on the machine during "
           "one run, median of the runs; 2 cores allow 2,000,000 / N per second of wall "
           "time). Hand-batched Ray spends its CPU on submitting 32-item tasks and the "
           "arithmetic; raypipe runs, per delivery, an engine attempt in the dispatcher, a "
           "validated input and a context in a task worker, and a journaled, deduplicated "
           "state update in the state actor, so the whole pipeline, not only the dispatcher, "
           "has to shrink to reach the 3x target. Batches of 32 deliveries a task cost 875 us "
           "(memory) and 1,184 us (Redis) per delivery in all; sized by how long their tasks "
           "take (up to 256, `raypipe.engine.batching.BatchSize`) they cost about half: the "
           "dispatcher 131 -> 61 us, the task workers 324 -> 167 us, the state actor "
           "133 -> 68 us (memory, at 841b85e and after, same machine). Python's cyclic GC "
           "frozen after the imports in every raypipe process on Ray "
           "(`raypipe.runtime.gc_tuning`), and the state and streams actors running a "
           "batch's writes without a task each unless they wait "
           "(`raypipe.engine.loopbatch.run_calls`): in 5 interleaved pairs of runs (4 "
           "fan-outs of 10,000 each, the measure of bench/fanout_ab.py, 820ebdf against the "
           "change) the "
           "dispatcher 70-76 -> 54-67 us, the state actor 62-69 -> 55-63 us, the wall time "
           "2.46-2.72 -> 2.20-2.60 s; the task workers stayed at 156-170 us. The state actor "
           "alone, fed batches of 256 updates from a driver: 57-67 -> 47 us an update. Counted "
           "with a GC callback in the workers of 3 fan-outs of 10,000, collections took about "
           "0.25 s of CPU per worker (a fifth of its work; about 1 ms each), 0.1 s once frozen "
           "and 0.05 s with young collections every 20,000 allocations (10,000 is the "
           "setting); a full collection after the imports costs about 80 ms a process. "
           "Deliveries, messages and the batched state calls with their origins sent as "
           "lists of builtins (`raypipe.wire`: Ray packs those with msgpack in C, anything "
           "else through cloudpickle's Python hooks, 7.0 us a batched call with its origin "
           "against 0.46 us as lists), in 4 interleaved pairs (3 fan-outs each, ae52c5f "
           "against the change): the Serve replica 40 -> 34 us, the dispatcher 47 -> 42, "
           "the state actor 57 -> 56, the task workers 133 -> 128, the wall time 1.88 -> "
           "1.70 s. Then a context that makes `ctx.state`, `ctx.streams` and `ctx.logger` "
           "when first used, the app's spec pickled once per dispatcher instead of by Ray "
           "for every task (56 us each), the plain-JSON check of a write's ops as loops "
           "(2.6 -> 1.1 us), the state actor weighing items by exact types and looking for "
           "references only in ops' values: in 4 interleaved pairs against the change "
           "before, the task workers 127 -> 105 us, the state actor 57 -> 53, the "
           "dispatcher 45 -> 40, the wall time 1.79 -> 1.56 s. With Redis state the "
           "journal wrote each delivery through `dataclasses.asdict`, a deep copy of its "
           "payload, most of the journal's CPU: the same JSON from the fields as they are "
           "took `RedisJournal.accepted` from 44-64 to 20-28 us a delivery (in-process, "
           "10,000 in batches of 50). What is left per delivery "
           "(cProfile in the task workers, py-spy --gil in the actors): in the worker, the "
           "input's validation and its context, the ops checked, the effect id hashed, the "
           "asyncio task per delivery of a batch; in the dispatcher, a span begun and ended "
           "and a latency observed into Ray's histogram (3 us) per attempt, the engine's "
           "bookkeeping; in the state actor, the ops checked again and applied, the effect "
           "recorded, the state triggers' conditions. The http step's enqueues sent to "
           "the dispatcher in parts of 1,000, the first while the handler still makes the "
           "rest (`LoopBatcher(most=...)`), instead of all at the end of its turn: in 5 "
           "interleaved pairs (09249a8 against the change) the wall time 1.592 -> 1.397 s, "
           "the Serve replica 38 -> 35 us, the task workers 115 -> 106, the dispatcher 41 -> "
           "44. Holding every part until the one before it was answered (for order) gave that "
           "back (1.630 -> 1.851 s, within that hour's spread); only parts with FIFO "
           "messages are held now (42a3c52 against 09249a8: 2.031 -> 1.573 s, faster in 3 "
           "of 5 pairs, the rounds spread 1.46-3.26 s).", "",
           "| process | " + " | ".join(titles[c] for c in columns) + " |",
           "| --- |" + " --- |" * len(columns)]
    out += [f"| {lb} | " + " | ".join(_fmt(profile[c].get(lb), 0) if lb in profile[c] else ""
                                      for c in columns) + " |" for lb in labels]
    out += ["| **all** | " + " | ".join(f"**{sum(profile[c].values()):.0f}**"
                                        for c in columns) + " |", ""]
    return out


def per_delivery(res: dict[str, Any] | None, fanout: dict[str, Any]) -> list[str]:
    """raypipe's own Python per delivery, stage by stage, beside each process's CPU in the
    fan-out: what is raypipe's code and what is Ray's machinery around it."""
    if not res:
        return []
    profile: dict[str, dict[str, float]] = fanout.get("profile") or {}
    #: stage prefix -> (the fan-out's column, its process)
    process = {"replica: ctx.enqueue": ("raypipe", "Serve replica (the http step)"),
               "dispatcher": ("raypipe", "dispatcher actor"),
               "task worker": ("raypipe", "task workers"),
               "state actor (memory)": ("raypipe", "state actor"),
               "state actor (Redis)": ("raypipe_redis", "state actor")}
    rows: list[dict[str, Any]] = res["rows"]
    own = sum(r["us"] for r in rows if r["stage"].startswith(
        ("replica: ctx", "dispatcher", "task worker", "state actor (memory)")))
    whole = sum(profile.get("raypipe", {}).values())
    out = ["### raypipe's own code per delivery (bench/per_delivery.py)", "",
           "Each stage of the fan-out run in one process with Ray out of the way (the actor "
           "on the other side answers at once; Python's cyclic GC off, as the processes on "
           "Ray collect rarely), CPU per delivery in microseconds, median of "
           f"{res.get('repeat')} runs of {res.get('n')}; beside it, the same process's CPU "
           "per delivery in the fan-out above. The difference is what Ray costs around "
           "raypipe's code in that process: receiving and answering actor calls and tasks, "
           "packing and unpacking their arguments, the core worker's threads, and in the "
           "dispatcher the task submissions, the metrics and the telemetry. raypipe's code "
           f"alone comes to {own:.0f} us a delivery with memory state (replica, engine, "
           f"worker, state service), against {whole:.0f} us for every process in the "
           "fan-out and the 120 us target for all of them: raypipe's code alone is over the "
           f"target, and with Ray's share as measured ({whole - own:.0f} us) the target "
           f"would leave raypipe's code {max(0.0, 120 - (whole - own)):.0f} us. The "
           "replica's bare `gather` is the user's code (one asyncio task per enqueue), "
           "shown for scale.", "",
           "| stage | raypipe's code alone | the process in the fan-out |", "| --- | --- | --- |"]
    for row in rows:
        key = next((k for k in process if row["stage"].startswith(k)), None)
        column, name = process[key] if key else ("", "")
        in_run = profile.get(column, {}).get(name)
        out.append(f"| {row['stage']} | {row['us']:.1f} | "
                   f"{_fmt(in_run, 0) if in_run is not None else ''} |")
    return [*out, ""]


def http_inside(http: dict[str, Any]) -> list[str]:
    """Where raypipe's HTTP time goes: its replica's own port against HAProxy's, and the
    replica's profile under 8 clients."""
    base = next((r["rps"] for r in http["rows"]
                 if r["server"] == "uvicorn" and r["clients"] == 8), None)
    via = next((r["rps"] for r in http["rows"]
                if r["server"] == "raypipe_haproxy" and r["clients"] == 8), None)
    out: list[str] = []
    if "direct" in http and base and via:
        d = http["direct"]["rps"]
        out += ["### Where the time goes (raypipe on the HAProxy path, 8 clients)", "",
                f"Through HAProxy {via:.0f} requests/s; straight at the ingress replica's own "
                f"port {d:.0f} ({d / base:.2f}x uvicorn): "
                + (f"HAProxy's hop costs {1 - via / d:.0%}. " if via < 0.95 * d else
                   "the same within 5%, so HAProxy's hop is not what limits it. ")
                + "The replica itself is the limit: one Python process "
                "whose request path Serve wraps in its own ASGI layers (request ids, proxy "
                "headers, metrics, request context) around the FastAPI app, sharing 2 cores "
                "with wrk, HAProxy and Ray's own processes. Its profile, as self time:", ""]
    if http.get("profile"):
        out += ["| layer | share of the replica's samples |", "| --- | --- |"]
        out += [f"| {layer} | {share:.0%} |" for layer, share in http["profile"].items()]
        out += [""]
    cpu = {k: v for k, v in http.get("cpu", {}).items()
           if k in ("uvicorn", "serve_plain", "raypipe", "serve_plain_haproxy",
                    "raypipe_haproxy")}
    if cpu:
        names = list(dict.fromkeys(n for by in cpu.values() for n in by))
        out += ["CPU per request at 8 clients, by process (microseconds; every process on the "
                "machine while wrk ran, so the 2 cores' whole budget shows):", "",
                "| process | " + " | ".join(cpu) + " |",
                "| --- |" + " --- |" * len(cpu)]
        out += [f"| {n} | " + " | ".join(f"{by[n]:.0f}" if n in by else "" for by in
                                         cpu.values()) + " |" for n in names]
        out += ["| **all** | " + " | ".join(f"**{sum(by.values()):.0f}**"
                                            for by in cpu.values()) + " |", ""]
        cores = http["machine"]["cpus"]
        if base and "serve_plain" in cpu:
            budget = cores * 1e6 / (0.5 * base)
            out += [f"At half of uvicorn's {base:.0f} requests/s, {cores} cores allow "
                    f"{budget:.0f} us of CPU per request, all processes counted; the plain "
                    f"FastAPI app on the same Serve path takes "
                    f"{sum(cpu['serve_plain'].values()):.0f}, so with Serve's defaults the "
                    "target is out of reach on this path whatever raypipe does. HAProxy, its "
                    "manager and Serve's replica are Serve's; the manager parses a log line "
                    "per request for Serve's ingress metrics (`RAY_SERVE_HAPROXY_METRICS_"
                    "ENABLED=0` turns them off; in two runs without them the plain app made "
                    "3,300 and 4,000 requests/s, raypipe 2,700 and 2,900 before this "
                    "report's endpoint changes). raypipe's own share is the difference "
                    "between its column and `serve_plain`'s.", ""]
    return out


def report(res: dict[str, dict[str, Any]], images: list[str]) -> str:
    m = res["fanout"]["machine"]
    out = ["# raypipe benchmarks", "",
           f"Machine: {m['cpus']} CPUs ({m['processor']}), {m['platform']}, Python "
           f"{m['python']}, Ray {m['ray']}. Every baseline was measured in the same run, on "
           "the same machine; these machines are noisy, so each number is a median.", ""]

    rows = {r["n"]: r for r in res["fanout"]["rows"]}
    out += ["## Fan-out/fan-in", "",
            "N trivial steps and a state-trigger completion, timed from the HTTP request to the "
            "completion handler. The limit is hand-batched Ray: the same work, 32 items a task, "
            "`ray.get` and a sum, on the same Ray; Ray with one task per item and a Celery chord "
            "(the local Redis, a 2-process worker) are the other baselines. Ratios are to "
            "hand-batched Ray; *dispatcher* is the dispatcher actor's CPU time per delivery.", "",
            "| N | hand-batched Ray | Ray, one task each | raypipe | ratio | raypipe + Redis "
            "| ratio | Celery chord | dispatcher us/delivery (memory, Redis) "
            "| workers started |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n, r in rows.items():
        out.append(f"| {n} | {_fmt(r.get('hand_batched'))} | {_fmt(r['raw_ray'])} | "
                   f"{_fmt(r['raypipe'])} | {_ratio(r['ratio'])} | "
                   f"{_fmt(r['raypipe_redis'])} | {_ratio(r['ratio_redis'])} | "
                   f"{_fmt(r['celery'])} | {_fmt(r.get('dispatcher_us'), 0)}, "
                   f"{_fmt(r.get('dispatcher_us_redis'), 0)} | "
                   f"{r.get('workers_started', 0):.0f} |")
    out += ["", "*workers started*: worker processes the raylet started during a raypipe run "
            "(median). By default the raylet ends an idle worker a second after it goes idle "
            "once the node has more workers than CPUs (actor processes counted), so a fan-out "
            "after a pause, or after the raw-Ray run before it, starts its task workers "
            "again, at about 0.6 s of CPU each on these cores: with raw Ray and raypipe "
            "run in turn, N=10,000 took 4.2-5.5 s when the raylet started 4-6 workers, and "
            "2.2-3.2 s with none started. A Ray that raypipe starts keeps idle workers "
            "for a minute (`RAY_idle_worker_killing_time_threshold_ms=60000`, "
            "`WARM_WORKERS_ENV` in `raypipe/runtime/deploy.py`); the raw-Ray baseline runs "
            "on the same Ray and measured the same with and without it. Raising the limit "
            "instead (`RAY_num_workers_soft_limit`) made the raylet prestart workers for raw "
            "Ray's long queue, 2-3x slower.", "", "![fan-out](fanout.png)", ""]
    out += fanout_profile(res["fanout"])
    out += per_delivery(res.get("per_delivery"), res["fanout"])

    out += ["## HTTP step", "", "wrk against a trivial http step; `serve_plain` is the same "
            "endpoint as a plain FastAPI app on Serve (what Serve itself costs); "
            "`raypipe` and `serve_plain` run the path `raypipe dev` starts (Serve's proxy with "
            "the throughput-optimised settings that open no listener of their own); "
            "`*_haproxy` rows Serve's HAProxy ingress (opt-in: `ingress = \"haproxy\"`, not "
            "for a shared host, docs/security.md); `*_default_proxy` rows Serve's defaults.", "",
            "| clients | server | requests/s | p50 ms | p99 ms | vs uvicorn |",
            "| --- | --- | --- | --- | --- | --- |"]
    for r in res["http"]["rows"]:
        out.append(f"| {r['clients']} | {r['server']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
                   f"{r['p99_ms']:.2f} | {r['ratio']:.2f}x |")
    out += ["", "![http](http.png)", ""]
    out += http_inside(res["http"])

    out += ["## State", "", "Atomic increments of one item from concurrent handlers, each "
            "making its updates one after another.", "",
            "| backend | handlers | updates | seconds | updates/s |",
            "| --- | --- | --- | --- | --- |"]
    for r in res["state"]["rows"]:
        out.append(f"| {r['backend']} | {r['handlers']} | {r['updates']} | {r['seconds']:.3f} | "
                   f"{r['ops_per_s']:.0f} |")
    out += ["", "## Streams", "", f"{res['streams']['subscribers']} WebSocket subscribers of "
            "one group; latency from `set` to each client.", "",
            "| events/s | p50 ms | p99 ms | max ms | subscribers that missed an event |",
            "| --- | --- | --- | --- | --- |"]
    for r in res["streams"]["rows"]:
        out.append(f"| {r['rate']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                   f"{r['max_ms']:.1f} | {r['missed']} |")
    out += ["", "![streams](streams.png)", ""]

    chain = res.get("chain", {}).get("rows", [])
    if chain:
        out += ["## Chain", "", f"{chain[0]['hops']} queue steps, each enqueuing the next, "
                "against a chain of raw Ray tasks that each submit the next (the driver "
                "following the references); time per hop.", "",
                "| state | raypipe ms/hop | raw Ray ms/hop | ratio |", "| --- | --- | --- | --- |"]
        out += [f"| {r['variant']} | {r['raypipe_ms_per_hop']:.2f} | {r['raw_ms_per_hop']:.2f} "
                f"| {r['ratio']:.2f}x |" for r in chain]
        out.append("")
    seed = res.get("seed_workflow", {}).get("rows", [])
    if seed:
        out += ["## The seed's workflow (a growing item)", "",
                "`examples/parallel-workflow` with `totalSteps` N: one item gains an entry per "
                "step (`steps.<i>`). Time from the start handler to the completion handler "
                "(the app's own record), cost per step, its growth from the smallest N, and "
                "the state actor's RSS after each workflow (MB). Until the backends updated a "
                "large item in place, each write copied the `steps` dict: N=100,000 on memory "
                "state took 376.7 s (3,767 us/step, x4.3 from N=10,000) with the state actor "
                "at 987 MB (at f6482f2, same machine).", "",
                "| state | N | seconds | us/step | growth | RSS after each |",
                "| --- | --- | --- | --- | --- | --- |"]
        out += [f"| {r['variant']} | {r['n']} | {r['seconds']:.2f} | {r['us_per_step']:.0f} | "
                f"x{r['growth']:.2f} | {', '.join(f'{x:.0f}' for x in r['rss_mb_after_each'])} |"
                for r in seed]
        out.append("")

    shards = res.get("shards", {})
    if shards.get("rows"):
        out += ["## Shards", "",
                f"{shards['workflows']} concurrent fan-outs of {shards['n']} trivial steps "
                f"(memory state) on a cluster of {shards['nodes']} raylets on this machine (a "
                "head for the control actors, a worker node of 2 CPUs), with K dispatcher, "
                "state and streams actors; median of the runs. Dispatcher busy: each shard's "
                "CPU time over the wall time, in cores. All processes: CPU per delivery.", "",
                "| K | seconds | deliveries/s | dispatcher us/delivery (all shards) | "
                "each dispatcher busy | all processes us/delivery | workers started |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        out += [f"| {r['k']} | {r['wall_s']:.2f} | {r['deliveries_per_s']:.0f} | "
                f"{r['dispatcher_us_per_delivery']:.0f} | "
                f"{', '.join(f'{b:.2f}' for b in r['shard_busy'])} | "
                f"{sum(r['cpu_us_per_delivery'].values()):.0f} | "
                f"{', '.join(map(str, r.get('workers_started', [])))} |"
                for r in shards["rows"]]
        out += ["", "CPU per delivery by process (us):", ""]
        out += [f"- K={r['k']}: " + ", ".join(f"{key} {v:.0f}" for key, v in
                                             r["cpu_us_per_delivery"].items())
                for r in shards["rows"]]
        out += ["", "Ray runs the tasks a detached actor spawns in workers of their own, so each "
                "dispatcher shard has its own set, and a raylet ends idle workers past its soft "
                "limit (its CPU count) a second after they go idle. With that default, on "
                "nodes of one CPU each, two shards took 21.9-25.1 s for this run (6-7 workers "
                "started during each) and four 11.95 s (8, 1 and 6 started), against 4.1 s "
                "for one. The runs above raise the limit on the nodes "
                "(`raypipe.runtime.deploy.shard_workers_env`, which a Ray that raypipe starts "
                "sets itself). Past that, each shard adds CPU per delivery on this machine: a "
                "shard's batches hold only its deliveries, a batch's state writes go to as "
                "many state actors as its items' shards, and the shards' per-interval work "
                "(releases, the lease, metrics) is repeated; with the cores already spent at "
                "K=1 (one dispatcher at 0.30 of a core), that is all it shows here.", ""]

    # --- targets ---
    t1000 = rows.get(1000)
    http8 = {r["server"]: r for r in res["http"]["rows"] if r["clients"] == 8}
    s100 = next((r for r in res["streams"]["rows"] if r["rate"] == 100), None)
    checks = []
    if t1000:
        vs_raw = t1000.get("ratio_raw", t1000["ratio"])  # older reports: ratio was to raw Ray
        checks.append(("Fan-out N=1000 at most 1.3x Ray with one task each", vs_raw <= 1.3,
                       f"{vs_raw:.2f}x"))
        if t1000["celery"]:
            speedup = t1000["celery"] / t1000["raypipe"]
            checks.append(("Fan-out N=1000 at least 3x faster than the Celery chord",
                           speedup >= 3, f"{speedup:.1f}x faster"))
    if 10_000 in rows and 1000 in rows:
        growth = (rows[10_000]["raypipe"] / 10_000) / (rows[1000]["raypipe"] / 1000)
        checks.append(("N=10,000 completes, cost growing linearly", growth <= 1.5,
                       f"per-step cost x{growth:.2f} from N=1,000 to 10,000"))
    big = rows.get(10_000, {}) if rows.get(10_000, {}).get("hand_batched") else {}
    if big.get("ratio") is not None:
        checks.append(("Fan-out N=10,000 within 3x of hand-batched Ray (memory state)",
                       big["ratio"] <= 3, f"{big['ratio']:.1f}x"))
    if big.get("ratio_redis") is not None:
        checks.append(("Fan-out N=10,000 within 4x of hand-batched Ray (Redis state)",
                       big["ratio_redis"] <= 4, f"{big['ratio_redis']:.1f}x"))
    if big.get("dispatcher_us") is not None:
        checks.append(("Dispatcher CPU at most 25 us per delivery (N=10,000)",
                       big["dispatcher_us"] <= 25, f"{big['dispatcher_us']:.0f} us"))
    for r in chain:
        checks.append((f"Chain of {r['hops']} queue steps within 1.5x of a raw Ray chain per hop "
                       f"({r['variant']})", r["ratio"] <= 1.5, f"{r['ratio']:.2f}x"))
    by_k = {r["k"]: r for r in shards.get("rows", [])}
    if 1 in by_k and len(by_k) > 1:
        top = max(by_k)
        gain = by_k[top]["deliveries_per_s"] / by_k[1]["deliveries_per_s"]
        checks.append((f"Throughput grows with shards (K={top} against K=1)", gain > 1.1,
                       f"x{gain:.2f}; K=1's dispatcher busy "
                       f"{by_k[1]['shard_busy'][0]:.2f} of a core"))
    for variant in dict.fromkeys(r["variant"] for r in seed):
        mine = [r for r in seed if r["variant"] == variant]
        if len(mine) > 1:
            checks.append((f"Seed workflow per-step cost at N={mine[-1]['n']} within 1.3x of "
                           f"N={mine[0]['n']} ({variant})", mine[-1]["growth"] <= 1.3,
                           f"x{mine[-1]['growth']:.2f}"))
    if "raypipe" in http8:
        checks.append(("HTTP step at least 0.5x uvicorn at 8 clients",
                       http8["raypipe"]["ratio"] >= 0.5, f"{http8['raypipe']['ratio']:.2f}x"))
    if s100:
        checks.append(("Streams p99 under 50 ms at 100 events/s", s100["p99_ms"] < 50,
                       f"{s100['p99_ms']:.1f} ms"))
    loop = res.get("reload", {}).get("median")
    if loop:
        running = loop.get("edit_http_running", float("nan"))
        runs = res["reload"]["runs"]

        def slowest(key: str) -> str:
            return f"{max(r[key] for r in runs):.2f}" if all(key in r for r in runs) else "-"

        plain_runs = res["reload"].get("plain") or [loop["plain_serve_start"]]
        out += ["## The edit loop (`raypipe dev`)", "",
                f"{len(runs)} runs of bench/reload.py: a copy of "
                "the seed under `raypipe dev`, each edit timed from the file's write to the "
                "first answer that shows it; the bare Ray start in turns with it (each start "
                "after every process of the last one ended).", "",
                "| | median s | slowest s |", "| --- | --- | --- |",
                f"| start to the first answer | {loop['start']:.2f} | {slowest('start')} |",
                f"| bare `ray.init()` + `serve.run()` of one FastAPI route | "
                f"{loop['plain_serve_start']:.2f} | {max(plain_runs):.2f} |",
                f"| an http step's response edited, as the app first answers | "
                f"{loop['edit_http']:.2f} | {slowest('edit_http')} |",
                f"| the same, once the app has run | {running:.2f} | "
                f"{slowest('edit_http_running')} |",
                f"| a new step file's route | {loop['new_route']:.2f} | {slowest('new_route')} |",
                f"| a queue step edited, to a workflow's result | {loop['edit_queue']:.2f} | "
                f"{slowest('edit_queue')} |",
                ""]
        checks.append(("An edit live within 2 s (http step, as the app first answers)",
                       loop["edit_http"] <= 2, f"{loop['edit_http']:.2f} s"))
        if loop.get("edit_http_running") is not None:
            checks.append(("An edit live within 2 s (http step, once the app has run)",
                           running <= 2, f"{running:.2f} s"))
        ratio = loop["start"] / loop["plain_serve_start"]
        checks.append(("raypipe dev start-up within 1.2x of ray.init + serve.run",
                       ratio <= 1.2, f"{ratio:.2f}x"))
    images_rows = res.get("image_pipeline", {}).get("rows") or []
    if images_rows:
        row = images_rows[0]
        out += ["## An image pipeline: actor pools and batches against Ray Data", "",
                f"bench/image_pipeline.py: examples/image-pipeline with {row['n']} images of "
                f"{row['image_bytes']} bytes, loaded in chunks of 64 by task steps that put "
                "their pixels into the object store (`ctx.put`), a pool of 2 actors each "
                "holding a 100 MB weight matrix reading them by reference, batches of 32; the "
                "same work as Ray Data's `map_batches` (a task stage that loads the chunks, "
                "then an actor pool of 2), in the same run.", "",
                "| | seconds |", "| --- | --- |",
                f"| raypipe, `POST /jobs` to the job's completion | {row['raypipe_s']:.2f} |",
                f"| Ray Data, `map_batches` to `materialize` | {row['ray_data_s']:.2f} |",
                "", "Each run (seconds, raypipe then Ray Data, one after the other; the ratio "
                "of each pair): " + ", ".join(
                    f"{a:.1f} / {b:.1f} ({a / b:.2f}x)"
                    for a, b in zip(row["raypipe_runs"], row["ray_data_runs"], strict=True)),
                "", "CPU per image (us), by process:", "",
                "| process | raypipe | Ray Data |", "| --- | --- | --- |"]
        kinds = sorted(set(row["raypipe_cpu_us_per_image"]) | set(row["ray_data_cpu_us_per_image"]))
        out += [f"| {k} | {row['raypipe_cpu_us_per_image'].get(k, 0):.0f} | "
                f"{row['ray_data_cpu_us_per_image'].get(k, 0):.0f} |" for k in kinds]
        out += [""]
        checks.append(("Image pipeline within 1.5x of Ray Data", row["ratio"] <= 1.5,
                       f"{row['ratio']:.2f}x"))
    payload_rows = res.get("ref_payloads", {}).get("rows") or []
    if payload_rows:
        mb = 1 << 20
        out += ["## Payloads by reference: memory against payload size", "",
                "bench/ref_payloads.py: N workflows, each `ctx.put` of a payload and a second "
                "step's `ctx.get`, Redis state (each value also written to the blob store), in "
                "waves of 200. Growth in MB over the level before the run: at its peak, and "
                "after the values were freed.", "",
                "| payload | N | seconds | Redis used_memory | dispatcher RSS | object store "
                "| blob store |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in payload_rows:
            cells = [f"+{(r['peak'][k] - r['before'][k]) / mb:.1f} / "
                     f"+{(r['after'][k] - r['before'][k]) / mb:.1f}"
                     for k in ("redis_used_memory", "dispatcher_rss", "object_store",
                               "blob_store")]
            out += [f"| {r['payload_bytes'] >> 10} KB | {r['n']} | {r['seconds']:.1f} | "
                    + " | ".join(cells) + " |"]
        out += [""]
        small, big = payload_rows[0], payload_rows[-1]

        def grew(r: dict[str, Any], k: str) -> float:
            return float(r["peak"][k] - r["before"][k]) / mb

        flat = all(grew(big, k) - grew(small, k) < 16
                   for k in ("redis_used_memory", "dispatcher_rss"))
        checks.append(("Redis and the dispatcher flat in the payload size", flat,
                       f"Redis +{grew(big, 'redis_used_memory'):.1f} MB, dispatcher "
                       f"+{grew(big, 'dispatcher_rss'):.1f} MB at "
                       f"{big['payload_bytes'] >> 10} KB against "
                       f"+{grew(small, 'redis_used_memory'):.1f} / "
                       f"+{grew(small, 'dispatcher_rss'):.1f} MB at "
                       f"{small['payload_bytes'] >> 10} KB"))
    out += ["## Targets", "", "| target | met | measured |", "| --- | --- | --- |"]
    out += [f"| {name} | {'yes' if ok else '**no**'} | {value} |" for name, ok, value in checks]
    out += ["", f"Plots: {', '.join(images)}. Raw numbers: the JSON files beside this report.",
            ""]
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer sizes and shorter runs")
    p.add_argument("--only", nargs="*", choices=list(BENCHES),
                   help="run only these; the others are read from their last JSON (none: "
                        "write the report again from the JSON)")
    args = p.parse_args()
    RESULTS.mkdir(exist_ok=True)
    res = {}
    for name in BENCHES:
        if args.only is not None and name not in args.only:
            saved = RESULTS / f"{name}.json"
            if saved.exists():
                res[name] = json.loads(saved.read_text())
        else:
            res[name] = run(name, args.quick)
    images = plots(res)
    text = report(res, images)
    (RESULTS / "report.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
