"""Run the parallel-workflow example to completion on the cluster, with a progress bar.

    ray job submit --working-dir . -- python jobs/run_workflow.py --total-steps 100

Deploys the app if it is not running, starts a workflow through its HTTP endpoint, follows the
workflow's state until the completion handler marks it completed, and exits 0; exits 1 if a
step is dead-lettered or the timeout passes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import httpx
import ray
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from raypipe.errors import RuntimeNotRunningError
from raypipe.runtime.bridge import runtime_for
from raypipe.runtime.deploy import connect, deploy
from raypipe.runtime.spec import AppSpec


def main() -> int:
    p = argparse.ArgumentParser(description="Run a parallel workflow to completion.")
    p.add_argument("--app", default="examples/parallel-workflow")
    p.add_argument("--total-steps", type=int, default=20)
    p.add_argument("--wait-time", action="store_true", help="steps sleep 0.5-2 s, as the seed")
    p.add_argument("--state", help="memory (default) or a redis:// URL")
    p.add_argument("--port", type=int)
    p.add_argument("--timeout", type=float, default=600)
    args = p.parse_args()

    spec = AppSpec.from_dir(args.app, state=args.state, port=args.port)
    connect(namespace=spec.namespace)
    try:
        rt = runtime_for(spec)
        ray.get(rt.dispatcher.stats.remote())
        url = f"http://127.0.0.1:{spec.settings.port}"
        print(f"using the running app {spec.settings.name!r}")
    except RuntimeNotRunningError:
        url = deploy(spec).url
        rt = runtime_for(spec)
        print(f"deployed {spec.settings.name!r} at {url}")

    body = {"totalSteps": args.total_steps, "waitTime": args.wait_time,
            "waitTimeMin": 500, "waitTimeMax": 2000}
    wid = httpx.post(f"{url}/api/workflow/start", json=body, timeout=60).json()["workflowId"]
    print(f"workflow {wid} started with {args.total_steps} steps")

    deadline = time.monotonic() + args.timeout
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn()) as progress:
        bar = progress.add_task("steps", total=args.total_steps)
        while time.monotonic() < deadline:
            workflow = asyncio.run(rt.state.get("workflows", wid)) or {}
            progress.update(bar, completed=workflow.get("completedSteps", 0))
            if workflow.get("status") == "completed":
                progress.stop()
                print(f"completed: {workflow['results']}")
                return 0
            dead = [e for e in asyncio.run(rt.dead_letters.list())
                    if isinstance(e.get("payload"), dict)
                    and e["payload"].get("workflowId") == wid]
            if dead:
                progress.stop()
                print(f"failed: {len(dead)} step(s) dead-lettered, e.g. "
                      f"{dead[0]['errors'][-1]['error']}", file=sys.stderr)
                return 1
            time.sleep(0.5)
    print(f"timed out after {args.timeout}s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
