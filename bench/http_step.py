"""HTTP step throughput: requests/s and p50/p99 latency of a trivial http step at 1, 8 and 32
concurrent clients (wrk), through raypipe on Serve (the path `raypipe dev` starts: Serve's
proxy with the throughput-optimised settings; the opt-in HAProxy ingress; Serve's defaults),
against the same
endpoint in a plain FastAPI app under uvicorn, and the plain app on Serve (what Serve alone
costs), all measured in this run.

Where the raypipe mode's time goes is measured too, at 8 clients: the same step straight
at the ingress replica's own port (skipping HAProxy), and a py-spy profile of the replica
(self time by layer: Serve's request path, uvicorn, FastAPI, raypipe, the event loop, Ray).
For every server, the CPU each process on the machine spends per request at 8 clients: on 2
shared cores that, not any one process, is what bounds requests/s.

    python bench/http_step.py [--clients 1 8 32] [--seconds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
APP = HERE / "apps" / "http"
#: What `raypipe dev` starts: Serve's proxy with the throughput-optimised settings that open
#: no listener of their own (raypipe.runtime.deploy.FAST_SERVE_ENV).
_PROXY = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0",
          "RAY_SERVE_ENABLE_HA_PROXY": "0"}
#: The opt-in HAProxy ingress (`ingress = "haproxy"`; not for shared hosts, docs/security.md).
_HAPROXY = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_HA_PROXY": "1"}
_DEFAULT = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "0", "RAY_SERVE_ENABLE_HA_PROXY": "0"}
#: name -> (environment, what serves): raypipe's app, or the plain FastAPI app on plain Serve
#: (what Serve alone costs, to tell it from raypipe's own share).
MODES: dict[str, tuple[dict[str, str], str]] = {
    "raypipe_default_proxy": (_DEFAULT, "raypipe"),
    "serve_plain_default_proxy": (_DEFAULT, "plain"),
    "raypipe": (_PROXY, "raypipe"),
    "serve_plain": (_PROXY, "plain"),
    "raypipe_haproxy": (_HAPROXY, "raypipe"),
    "serve_plain_haproxy": (_HAPROXY, "plain"),
}
#: The mode whose replica is measured from inside (its own port exists on the HAProxy path).
INSIDE_MODE = "raypipe_haproxy"


def wrk(url: str, clients: int, seconds: float) -> dict[str, float]:
    exe = shutil.which("wrk")
    if exe is None:
        sys.exit("bench/http_step.py needs wrk: apt-get install -y wrk")
    out = subprocess.run([exe, f"-t{min(clients, 2)}", f"-c{clients}", f"-d{seconds:g}s",
                          "--latency", url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": pct("50"), "p99_ms": pct("99"),
            "non_2xx": float(errors.group(1)) if errors else 0.0}


#: Process names -> what the report calls them (first match); the rest are summed as "other".
PROCESSES = (("ray::ServeReplica", "Serve replica (uvicorn, Serve, FastAPI, the app)"),
             ("uvicorn", "uvicorn process (uvicorn, FastAPI, the app)"),
             ("haproxy", "HAProxy"),
             ("ray::HAProxyManager", "HAProxyManager (parses a log line per request)"),
             ("ray::DashboardAgent", "dashboard agent (metrics)"),
             ("ray::TelemetryActor", "raypipe telemetry actor (spans)"),
             ("ray::ProxyActor", "Serve proxy actor"))


def cpu_per_request(url: str, seconds: float, rounds: int = 3) -> dict[str, float]:
    """Microseconds of CPU per request in each process of the machine while wrk drives
    ``url`` with 8 clients, the median of ``rounds`` runs: on 2 shared cores, every process's
    share counts. Needs psutil."""
    import psutil

    def snapshot() -> dict[int, tuple[str, float]]:
        out = {}
        for p in psutil.process_iter(["name", "cmdline"]):
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                cmd = " ".join(p.info["cmdline"] or [])
                name = "uvicorn" if "plain_fastapi" in cmd else p.info["name"] or ""
                out[p.pid] = (name, t.user + t.system)
        return out

    def children() -> float:  # wrk, once it has exited
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    runs: list[dict[str, float]] = []
    for _ in range(rounds):
        before, load = snapshot(), children()
        requests = wrk(url, 8, seconds)["rps"] * seconds
        after = snapshot()
        run = {"wrk (the load)": (children() - load) / requests * 1e6}
        for pid, (name, cpu) in after.items():
            label = next((label for key, label in PROCESSES if name.startswith(key)), "other")
            used = cpu - before.get(pid, (name, 0.0))[1]
            run[label] = run.get(label, 0.0) + used / requests * 1e6
        runs.append(run)
    labels = {label for run in runs for label in run}
    median = {label: statistics.median(run.get(label, 0.0) for run in runs) for label in labels}
    return {k: v for k, v in sorted(median.items(), key=lambda kv: -kv[1]) if v >= 1.0}


def wait_up(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    sys.exit(f"{url} did not come up")


def measure(url: str, clients: list[int], seconds: float) -> list[dict[str, Any]]:
    wait_up(url)
    wrk(url, 8, 1)  # warm
    return [{"clients": c, **wrk(url, c, seconds)} for c in clients]


def plain(clients: list[int], seconds: float) -> tuple[list[dict[str, Any]], dict[str, float]]:
    sys.path.insert(0, str(HERE))
    from _local import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "plain_fastapi:app", "--port",
                             str(port), "--log-level", "warning", "--no-access-log"], cwd=HERE)
    try:
        url = f"http://127.0.0.1:{port}/ping"
        return measure(url, clients, seconds), cpu_per_request(url, min(seconds, 3))
    finally:
        proc.terminate()
        proc.wait(30)


#: py-spy's frames, by the file they are in -> the layer the report names (first match).
LAYERS = (("ray/serve/", "Serve request path"), ("uvicorn/", "uvicorn + httptools"),
          ("httptools", "uvicorn + httptools"), ("starlette/", "FastAPI + Starlette"),
          ("fastapi/", "FastAPI + Starlette"), ("pydantic", "FastAPI + Starlette"),
          ("raypipe/", "raypipe"), ("asyncio/", "event loop"), ("selectors", "event loop"),
          ("logging/", "logging"), ("ray/", "Ray core (metrics, RPC)"))


def inside_replica(url: str, seconds: float) -> dict[str, Any]:
    """8 clients straight at the ingress replica's own port, and a profile of the replica
    under 8 clients through HAProxy. Needs psutil and py-spy (the bench extra)."""
    import psutil

    replica = next((p for p in psutil.process_iter(["name"])
                    if (p.info["name"] or "").startswith("ray::ServeReplica")), None)
    if replica is None:
        return {}
    path = "/" + url.split("/", 3)[3] if url.count("/") > 2 else ""
    ports = sorted(c.laddr.port for c in replica.net_connections("tcp")
                   if c.status == psutil.CONN_LISTEN and c.laddr.ip == "127.0.0.1")
    out: dict[str, Any] = {}
    for port in ports:  # the replica's own HTTP port (its others are Ray's gRPC)
        with contextlib.suppress(subprocess.CalledProcessError, AssertionError):
            out["direct"] = {"clients": 8, "port": port,
                             **wrk(f"http://127.0.0.1:{port}{path}/ping", 8, seconds)}
            break
    spy = shutil.which("py-spy")
    if spy:
        load = subprocess.Popen([shutil.which("wrk") or "wrk", "-t2", "-c8",
                                 f"-d{seconds + 2:g}s", f"{url}/ping"],
                                stdout=subprocess.DEVNULL)
        time.sleep(1)
        raw = Path(tempfile.mkstemp(suffix=".txt")[1])
        subprocess.run([spy, "record", "-p", str(replica.pid), "-d", str(int(seconds)), "-r",
                        "200", "-f", "raw", "-o", str(raw), "--nonblocking"],
                       capture_output=True)
        load.wait()
        out["profile"] = profile_layers(raw.read_text())
        raw.unlink()
    return out


def profile_layers(raw: str) -> dict[str, float]:
    """Self time by layer, as shares of the samples, from py-spy's raw (folded) output."""
    layers: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        leaf = stack.split(";")[-1]
        where = leaf[leaf.find("(") + 1:]
        layer = next((name for key, name in LAYERS if key in where), "other (threads, C)")
        if "Worker.main_loop" in leaf:
            continue  # the actor's main thread, parked in Ray's loop: not request work
        layers[layer] = layers.get(layer, 0) + int(count)
        total += int(count)
    return {k: v / total for k, v in sorted(layers.items(), key=lambda kv: -kv[1])} if total else {}


def child(clients: list[int], seconds: float, what: str) -> None:
    """One mode, in a Ray of its own (Serve reads its mode when it starts)."""
    sys.path.insert(0, str(HERE))
    from _local import free_port, local_app

    if what == "raypipe":
        with local_app(str(APP)) as d:
            rows = measure(f"{d.url}/ping", clients, seconds)
            cpu = cpu_per_request(f"{d.url}/ping", min(seconds, 3))
            print(json.dumps({"rows": rows, "cpu": cpu, **inside_replica(d.url, seconds)}))
        return
    import ray
    from plain_fastapi import app
    from ray import serve

    from raypipe.runtime.deploy import prepare_local_ray

    prepare_local_ray()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR",
             log_to_driver=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})

    @serve.deployment(ray_actor_options={"num_cpus": 0})
    @serve.ingress(app)
    class Plain:
        pass

    serve.run(Plain.bind(), name="plain", route_prefix="/")  # type: ignore[attr-defined]
    try:
        url = f"http://127.0.0.1:{port}/ping"
        print(json.dumps({"rows": measure(url, clients, seconds),
                          "cpu": cpu_per_request(url, min(seconds, 3))}))
    finally:
        serve.shutdown()
        ray.shutdown()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--json")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.clients, args.seconds, args.child)
        return

    results: dict[str, list[dict[str, Any]]] = {}
    results["uvicorn"], uvicorn_cpu = plain(args.clients, args.seconds)
    #: server -> process -> microseconds of CPU per request, at 8 clients
    cpu: dict[str, dict[str, float]] = {"uvicorn": uvicorn_cpu}
    inside: dict[str, Any] = {}
    for mode, (env, what) in MODES.items():
        out = subprocess.run([sys.executable, __file__, "--child", what, "--seconds",
                              str(args.seconds), "--clients", *map(str, args.clients)],
                             env={**os.environ, **env}, capture_output=True, text=True)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith(("[", "{"))]
        if out.returncode != 0 or not lines:
            print(f"{mode}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            continue
        got = json.loads(lines[-1])
        cpu[mode] = got.pop("cpu")
        if mode == INSIDE_MODE and "profile" in got:
            inside = {k: v for k, v in got.items() if k != "rows"}
        results[mode] = got["rows"]

    print(f"HTTP step throughput (wrk, {args.seconds:g} s per row; latency in ms)")
    print(f"{'clients':>7} {'server':>26} {'req/s':>9} {'p50':>7} {'p99':>7} {'vs uvicorn':>10}")
    rows = []
    for i, c in enumerate(args.clients):
        base = results["uvicorn"][i]["rps"]
        for server, rs in results.items():
            r = rs[i]
            rows.append({"server": server, **r, "ratio": r["rps"] / base})
            print(f"{c:>7} {server:>26} {r['rps']:>9.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} "
                  f"{r['rps'] / base:>9.2f}x")
    sys.path.insert(0, str(HERE))
    from _local import write_json

    if "direct" in inside:
        d = inside["direct"]
        print(f"raypipe straight at the replica's port, 8 clients: {d['rps']:.0f} req/s")
    for layer, share in inside.get("profile", {}).items():
        print(f"  replica profile: {share:6.1%} {layer}")
    for server, by_process in cpu.items():
        print(f"  CPU per request, {server}: {sum(by_process.values()):.0f} us: " + ", ".join(
            f"{name} {us:.0f}" for name, us in by_process.items()))
    write_json(args.json, "http", rows, seconds=args.seconds, cpu=cpu, **inside)


if __name__ == "__main__":
    main()
