"""The edit loop of `raypipe dev`, measured as a developer lives it, in one run:

- start-up: `raypipe dev` on the seed (a copy), from the command to the first answer of its
  health route, against a bare `ray.init()` and `serve.run()` of a one-route FastAPI app (the
  limit Ray and Serve themselves set), each started as its own process;
- reload: a saved edit of an http step's response, from the write to the first answer that
  shows it, made the moment the app first answers (the probe's own requests start workflows,
  so their task workers start meanwhile) and again once the app has run; a new step file,
  from the write to its route answering; a step changed in a queue handler, from the write
  to the first workflow whose result shows it.

    python bench/reload.py [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SEED = ROOT / "examples" / "parallel-workflow"
sys.path.insert(0, str(HERE))
from _local import free_port, machine  # noqa: E402

START_STEP = Path("steps") / "start_workflow_step.py"
PLAIN = """
import os, sys, time
import ray
from fastapi import FastAPI
from ray import serve

app = FastAPI()

@app.get("/ping")
def ping():
    return {"ok": True}

@serve.deployment(ray_actor_options={"num_cpus": 0})
@serve.ingress(app)
class Plain:
    pass

ray.init(address="local", include_dashboard=True, dashboard_host="127.0.0.1",
         logging_level="ERROR")
serve.start(http_options={"host": "127.0.0.1", "port": int(sys.argv[1])})
serve.run(Plain.bind(), name="plain", route_prefix="/")
print("READY", flush=True)
time.sleep(3600)
"""


def _env() -> dict[str, str]:
    # A shell's environment: no Ray of this process's to join.
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("RAY_", "AUTOSCALER_", "DASHBOARD_", "RAYPIPE_"))}


def _until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``check()`` holds (polled every 50 ms: more often, the poller's own CPU
    slows what it measures on a 2-core machine)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if check():
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} after {timeout:.0f}s")


def _stop(proc: subprocess.Popen[Any]) -> None:
    """Ctrl-C, then wait until every process of that Ray has ended too: one still exiting
    would take CPU from the next start this run times."""
    import psutil

    try:
        tree = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        tree = []
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    _, alive = psutil.wait_procs(tree, timeout=60)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()


def start_plain() -> float:
    port = free_port()
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", PLAIN, str(port)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _until(lambda: httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code
               == 200, 180, "plain FastAPI on Serve")
        return time.monotonic() - t0
    finally:
        _stop(proc)


def dev_session(app_dir: Path) -> dict[str, float]:
    """One `raypipe dev`: its start-up, then the three edits."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "raypipe.cli", "dev", str(app_dir),
                             "--port", str(port)], env=_env(), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out: dict[str, float] = {}
    try:
        _until(lambda: httpx.get(f"{url}/_raypipe/health", timeout=2).status_code == 200,
               180, "raypipe dev to serve")
        out["start"] = time.monotonic() - t0

        step = app_dir / START_STEP

        def edit_response(old: str, new: str) -> float:
            step.write_text(step.read_text().replace(old, new))
            return _until(lambda: new in httpx.post(f"{url}/api/workflow/start",
                                                    json={"totalSteps": 1}, timeout=5).text,
                          60, f"the response {new!r}")

        out["edit_http"] = edit_response("Workflow started successfully",
                                         "Workflow started (edited)")

        (app_dir / "steps" / "added_step.py").write_text(
            "from raypipe import StepConfig, http\n"
            "config = StepConfig(name='added', triggers=[http('GET', '/added')])\n"
            "async def handler(req, ctx):\n    return {'status': 200, 'body': {'added': 1}}\n")
        out["new_route"] = _until(
            lambda: httpx.get(f"{url}/added", timeout=5).status_code == 200, 60,
            "the new route")

        process = app_dir / "steps" / "process_step_step.py"
        process.write_text(process.read_text().replace('"type": kind,',
                                                       '"type": kind + "-edited",'))

        def edited_workflow() -> bool:
            wid = httpx.post(f"{url}/api/workflow/start", json={"totalSteps": 1},
                             timeout=5).json()["workflowId"]
            for _ in range(500):
                w = httpx.get(f"{url}/api/workflow/{wid}", timeout=5).json()
                if w.get("status") == "completed":
                    return str(w["steps"]["0"]["result"]["type"]).endswith("-edited")
                time.sleep(0.01)
            return False

        out["edit_queue"] = _until(edited_workflow, 120, "a workflow on the edited step")

        # The same http edit on an app that has run (its task workers started): the first
        # one above also pays the workers the probe's own workflows start meanwhile.
        out["edit_http_running"] = edit_response("Workflow started (edited)",
                                                 "Workflow started (edited again)")
    finally:
        _stop(proc)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--json")
    args = p.parse_args()
    runs: list[dict[str, float]] = []
    plain: list[float] = []
    for i in range(args.repeat):
        # Turns about: what starts first after the other meets a machine in the same state.
        if i % 2:
            plain.append(start_plain())
        with tempfile.TemporaryDirectory() as tmp:
            app_dir = Path(tmp) / "parallel-workflow"
            shutil.copytree(SEED, app_dir, ignore=shutil.ignore_patterns("__pycache__"))
            runs.append(dev_session(app_dir))
        if not i % 2:
            plain.append(start_plain())
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    med["plain_serve_start"] = statistics.median(plain)
    print(f"raypipe dev on the seed, {args.repeat} runs (medians, seconds)")
    print(f"  start to first answer   {med['start']:.2f}  (ray.init + serve.run of one "
          f"FastAPI route: {med['plain_serve_start']:.2f}; "
          f"{med['start'] / med['plain_serve_start']:.2f}x)")
    print(f"  http step edited        {med['edit_http']:.2f}  (as it first answers), "
          f"{med['edit_http_running']:.2f} (once it has run)")
    print(f"  new step file's route   {med['new_route']:.2f}")
    print(f"  queue step edited       {med['edit_queue']:.2f}  (to a workflow's result)")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "median": med,
                                               "runs": runs, "plain": plain}, indent=1))


if __name__ == "__main__":
    main()
